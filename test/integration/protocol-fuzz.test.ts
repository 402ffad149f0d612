/**
 * Bad input against a real server: thousands of generated frames that are
 * not valid protocol messages (fast-check), absurd resizes, oversized
 * frames, binary frames, unknown or foreign sessions, and bad HTTP bodies.
 * Each is answered with an error; the server keeps serving terminals and
 * starts no sandbox because of them.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientMessage, MAX_CLIENT_FRAME_BYTES, TERMINAL_PROTOCOL_VERSION } from '../../protocol/terminal';
import { Learner, type TerminalConnection } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;
let learner: Learner;
let sessionId: string;

beforeAll(async () => {
  server = await startTestServer();
  learner = new Learner(server.url);
  sessionId = (await learner.startSession()).sessionId;
});

afterAll(async () => {
  await server?.close();
});

type Frame = { kind: 'text'; data: string } | { kind: 'binary'; data: Buffer };

const notAMessage = (v: unknown) => !ClientMessage.safeParse(v).success && !(typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'hello');
const frames: fc.Arbitrary<Frame> = fc.oneof(
  fc.string({ maxLength: 200 }).filter((s) => {
    try {
      return notAMessage(JSON.parse(s));
    } catch {
      return true;
    }
  }).map((data) => ({ kind: 'text' as const, data })),
  fc.jsonValue({ maxDepth: 3 }).filter(notAMessage).map((v) => ({ kind: 'text' as const, data: JSON.stringify(v) })),
  fc
    .record({ type: fc.constantFrom('input', 'resize', 'ack', 'ping', 'bogus', 'Hello', ''), cols: fc.anything(), rows: fc.anything(), data: fc.anything(), seq: fc.anything(), t: fc.anything() }, { requiredKeys: ['type'] })
    .filter(notAMessage)
    .map((v) => ({ kind: 'text' as const, data: JSON.stringify(v) })),
  fc
    .record({ cols: fc.oneof(fc.integer(), fc.double(), fc.constant(1e9), fc.constant(-1)), rows: fc.oneof(fc.integer(), fc.double(), fc.constant(0)) })
    .map((r) => ({ type: 'resize', ...r }))
    .filter(notAMessage)
    .map((v) => ({ kind: 'text' as const, data: JSON.stringify(v) })),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => ({ kind: 'binary' as const, data: Buffer.from(a) })),
  fc.integer({ min: 1, max: 4 }).map((n) => ({ kind: 'text' as const, data: JSON.stringify({ type: 'input', data: 'x'.repeat(MAX_CLIENT_FRAME_BYTES * n) }) })),
);

async function attached(): Promise<TerminalConnection> {
  const t = await learner.openTerminal(sessionId);
  await t.waitForReady();
  return t;
}

describe('terminal protocol fuzz', () => {
  it('answers 2000 generated bad frames with errors and keeps the terminal usable', async () => {
    const all = fc.sample(frames, { numRuns: 2000, seed: 42 });
    const allowed = new Set(['bad-frame', 'unknown-type', 'too-large', 'bad-resize']);
    // Batches stay under the server's per-socket error budget.
    for (let i = 0; i < all.length; i += 40) {
      const batch = all.slice(i, i + 40);
      const t = await attached();
      for (const f of batch) t.sendRaw(f.data, f.kind === 'binary');
      await t.waitFor(() => t.messages.filter((m) => m.type === 'error').length >= batch.length || undefined, 20_000, `${batch.length} errors`);
      const errors = t.messages.filter((m) => m.type === 'error');
      expect(errors).toHaveLength(batch.length);
      for (const e of errors) {
        expect(e.type === 'error' && allowed.has(e.code), JSON.stringify(e)).toBe(true);
        expect(e.type === 'error' && e.fatal).toBe(false);
      }
      expect(t.closeCode).toBeUndefined();
      if (i % 400 === 0) expect((await t.run('echo alive')).trim()).toBe('alive');
      t.close();
      await t.waitForClose();
    }
    const t = await attached();
    expect((await t.run('echo still-serving')).trim()).toBe('still-serving');
    t.close();
  });

  it('rejects unknown and foreign sessions, late hellos and frames before hello', async () => {
    const unknown = await learner.openTerminal('AAAAAAAAAAAAAAAAAAAAAA');
    expect(await unknown.waitForMessage('error')).toMatchObject({ code: 'unknown-session', fatal: true });
    expect(await unknown.waitForClose()).toBe(4404);

    const stranger = new Learner(server.url);
    await stranger.request('GET', '/api/sessions/nothing'); // gets a cookie
    const foreign = await stranger.openTerminal(sessionId);
    expect(await foreign.waitForMessage('error')).toMatchObject({ code: 'forbidden', fatal: true });
    expect(await foreign.waitForClose()).toBe(4403);

    const noCookie = await new Learner(server.url).openTerminal(sessionId);
    expect(await noCookie.waitForMessage('error')).toMatchObject({ code: 'forbidden' });

    const badTerminal = await learner.openTerminal(sessionId, { terminalId: 'nope' });
    expect(await badTerminal.waitForMessage('error')).toMatchObject({ code: 'unknown-terminal', fatal: true });

    const t = await attached();
    t.send({ type: 'hello', v: TERMINAL_PROTOCOL_VERSION, sessionId, terminalId: 'main', cols: 80, rows: 24 });
    expect(await t.waitForMessage('error')).toMatchObject({ code: 'bad-frame', fatal: false });
    t.close();
  });

  it('refuses a WebSocket from a foreign origin', async () => {
    await expect(learner.openTerminal(sessionId, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
  });
});

describe('HTTP API bad input', () => {
  it('answers generated bad bodies with a 4xx and a message, starting no sandbox', async () => {
    const before = (await server.engine.list()).length;
    const bodies = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 100 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.record({ lab: fc.oneof(fc.string(), fc.integer(), fc.constant(null)) }).map((v) => JSON.stringify(v)),
        fc.record({ lab: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/) }).filter((v) => v.lab !== 'network-stack').map((v) => JSON.stringify(v)),
      ),
      { numRuns: 300, seed: 7 },
    );
    for (const body of bodies) {
      const r = await learner.request('POST', '/api/sessions', body === '' ? undefined : body);
      if (r.status === 201) throw new Error(`bad body started a session: ${body}`);
      expect(r.status, body).toBeGreaterThanOrEqual(400);
      expect(r.status, body).toBeLessThan(500);
      expect(r.json).toMatchObject({ error: expect.any(String), code: expect.any(String) });
    }
    const huge = await learner.request('POST', '/api/sessions', JSON.stringify({ lab: 'x'.repeat(100_000) }));
    expect(huge.status).toBe(413);
    expect((await learner.request('GET', '/api/sessions/%00%ff')).status).toBe(404);
    expect((await learner.request('PUT', '/api/sessions')).status).toBe(405);
    expect((await learner.request('GET', '/api/nowhere')).status).toBe(404);
    expect((await server.engine.list()).length).toBe(before);
  });
});
