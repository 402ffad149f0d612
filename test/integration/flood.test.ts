/**
 * A page that sends keystrokes as fast as its socket allows and never
 * acknowledges output: the server reads its input only as fast as the shell
 * takes it and the per-terminal rate allows, so the sender waits in its own
 * buffers and the server's memory stays bounded. The server runs in its own
 * process (lab-server/main.ts) so its RSS is its own; one real sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnLabServer, type ServerProcess } from '../support/lab-server';
import { Learner } from '../support/terminal-client';

/** How long the flood lasts. The issue asks for 60 s; 20 s already moves >1 GB at loopback speed, unbounded. */
const FLOOD_MS = Number(process.env.VETHLAB_FLOOD_MS ?? 20_000);
/** The server's RSS may grow by at most this during the flood. */
const RSS_GROWTH_BOUND = 96 * 1024 ** 2;
/** The sender keeps this much queued in its own socket: always more than the server wants. */
const SENDER_QUEUE = 8 * 1024 * 1024;

let server: ServerProcess;

beforeAll(async () => {
  server = await spawnLabServer({ VETHLAB_LOG_LEVEL: 'warn' });
});

afterAll(async () => {
  await server?.dispose();
});

describe('a page that floods input and never acknowledges', () => {
  it(`keeps the server's memory bounded for ${FLOOD_MS / 1000} s and the server serving`, async () => {
    const learner = new Learner(server.url);
    const { sessionId } = await learner.startSession();
    const t = await learner.openTerminal(sessionId, { ack: 'never' });
    await t.waitForReady();
    const before = server.rss();
    let peak = before;
    let sent = 0;
    // Frames under the protocol's limit; a shell line that never runs (no Enter).
    const frame = JSON.stringify({ type: 'input', data: 'x'.repeat(60 * 1024) });
    const end = Date.now() + FLOOD_MS;
    while (Date.now() < end && t.closeCode === undefined) {
      while (t.ws.bufferedAmount < SENDER_QUEUE && t.closeCode === undefined) {
        t.ws.send(frame);
        sent += frame.length;
      }
      await new Promise((r) => setTimeout(r, 50));
      peak = Math.max(peak, server.rss());
    }
    const growth = peak - before;
    console.log(`flood: offered ${(sent / 1024 ** 2).toFixed(0)} MiB in ${FLOOD_MS / 1000} s; server RSS ${(before / 1024 ** 2).toFixed(0)} -> peak ${(peak / 1024 ** 2).toFixed(0)} MiB`);
    expect(growth, `RSS grew by ${(growth / 1024 ** 2).toFixed(0)} MiB`).toBeLessThan(RSS_GROWTH_BOUND);
    t.ws.terminate();
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    await learner.endSession(sessionId);
  });
});
