/**
 * A room arriving at once: 50 concurrent starts from 10 learners (5 each)
 * against a machine that holds 3 sandboxes. Boots in progress count against
 * the limit, and one learner gets one session of a lab however many requests
 * they send; everyone else is told their place in line. Everything is
 * removed afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../protocol/api';
import { startTestServer, type TestServer } from '../support/lab-server';
import { Learner } from '../support/terminal-client';

const MAX = 3;
const LEARNERS = Number(process.env.VETHLAB_BURST_LEARNERS ?? 10);
const EACH = Number(process.env.VETHLAB_BURST_EACH ?? 5);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_MAX_SANDBOXES: String(MAX) });
});

afterAll(async () => {
  await server?.close();
});

describe('a burst of starts', () => {
  it(`admits at most ${MAX} sandboxes and one session per learner and lab for ${LEARNERS * EACH} concurrent starts`, async () => {
    const learners = Array.from({ length: LEARNERS }, () => new Learner(server.url));
    // Each learner has its cookie first, as a page does after loading.
    await Promise.all(learners.map((l) => l.request('GET', '/api/sessions/none')));
    const answers = await Promise.all(
      learners.flatMap((l, i) => Array.from({ length: EACH }, async () => ({ i, ...(await l.request('POST', '/api/sessions', { lab: 'network-stack' })) }))),
    );
    const started = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    for (const r of refused) expect(r, JSON.stringify(r.json)).toMatchObject({ status: 503, json: { code: 'full' } });

    const sessionsOf = new Map<number, Set<string>>();
    for (const a of started) sessionsOf.set(a.i, (sessionsOf.get(a.i) ?? new Set()).add((a.json as SessionInfo).sessionId));
    // One session per learner and lab, however many of their requests were admitted.
    for (const [i, ids] of sessionsOf) expect(ids.size, `learner ${i}`).toBe(1);
    // The machine's limit held: no more sessions were ever made (the store keeps ended ones too) nor sandboxes run.
    const made = (server.store.db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n;
    expect(made).toBeLessThanOrEqual(MAX);
    expect(sessionsOf.size).toBe(made);
    expect((await server.engine.list()).length).toBeLessThanOrEqual(MAX);
    expect(made).toBeGreaterThan(0);
  });
});
