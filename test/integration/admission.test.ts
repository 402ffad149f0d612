/**
 * A full machine queues new learners with a visible place in line instead of
 * handing out broken sandboxes; one learner cannot create sandboxes without
 * limit; sessions belong to the learner who started them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_MAX_SANDBOXES: '1', VETHLAB_STARTS_PER_LEARNER: '2' });
});

afterAll(async () => {
  await server?.close();
});

describe('admission', () => {
  it('queues learners in arrival order when the machine is full, then admits them', async () => {
    const a = new Learner(server.url);
    const b = new Learner(server.url);
    const c = new Learner(server.url);
    const sa = await a.startSession();
    const rb = await b.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(rb.status).toBe(503);
    expect(rb.json).toMatchObject({ code: 'full', position: 1 });
    const rc = await c.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(rc.json).toMatchObject({ code: 'full', position: 2 });
    expect((rc.json as { error: string }).error).toMatch(/number 2 in line/);
    await a.endSession(sa.sessionId);
    // c asked again first, but b is ahead in line.
    expect((await c.request('POST', '/api/sessions', { lab: 'network-stack' })).json).toMatchObject({ code: 'full', position: 2 });
    const sb = await b.startSession();
    expect(sb.state).toBe('ready');
    // Another learner cannot read, attach to or end b's session.
    expect((await c.request('GET', `/api/sessions/${sb.sessionId}`)).status).toBe(403);
    expect((await c.request('DELETE', `/api/sessions/${sb.sessionId}`)).status).toBe(403);
    expect((await c.request('POST', `/api/sessions/${sb.sessionId}/reset`)).status).toBe(403);
    await b.endSession(sb.sessionId);
    const sc = await c.startSession();
    await c.endSession(sc.sessionId);
  });

  it('limits how many sandboxes one learner creates in a short time', async () => {
    const d = new Learner(server.url);
    for (let i = 0; i < 2; i++) await d.endSession((await d.startSession()).sessionId);
    const third = await d.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(third.status).toBe(429);
    expect(third.json).toMatchObject({ code: 'rate-limited' });
  });
});

describe('sandboxes per learner', () => {
  it('hands back the least recently used lab’s sandbox when a learner opens one too many', async () => {
    const own = await startTestServer({ VETHLAB_SESSIONS_PER_LEARNER: '2', VETHLAB_MAX_SANDBOXES: '2' });
    try {
      const learner = new Learner(own.url);
      const first = await learner.startSession('network-stack');
      const term = await learner.openTerminal(first.sessionId);
      await term.waitForReady();
      const second = await learner.startSession('veth-pair');
      // The machine holds two sandboxes: the third lab starts only because the first hands its sandbox back.
      const third = await learner.startSession('docker0');
      expect(third.state).toBe('ready');
      expect((await learner.request('GET', `/api/sessions/${first.sessionId}`)).status).toBe(404);
      expect(own.store.getSession(first.sessionId)?.endReason).toBe('replaced');
      await term.waitForClose();
      expect((await learner.request('GET', `/api/sessions/${second.sessionId}`)).status).toBe(200);
      // Going back to the first lab is a fresh start, not an error.
      expect((await learner.request('POST', '/api/sessions', { lab: 'network-stack' })).status).toBe(201);
      expect((await learner.request('GET', `/api/sessions/${second.sessionId}`)).status).toBe(404);
    } finally {
      await own.close();
    }
  });
});
