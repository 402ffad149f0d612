/**
 * /api/health is asked often (monitors, load balancers): it reads counters
 * and writes nothing, so a flood of health checks cannot wear the progress
 * store or contend with learners' writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

describe('health', () => {
  it('answers without writing to the store', async () => {
    const changes = () => (server.store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    const before = changes();
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/api/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ ok: true, sessions: 0, storeWritable: true });
    }
    expect(changes()).toBe(before);
  });
});
