/**
 * Sandbox ready time: POST /api/sessions through the real HTTP API until the
 * shell prompt arrives over the terminal WebSocket, one run at a time.
 *
 *   ready-cold  pool size 0: every session boots a sandbox (and its inner
 *               Docker engine). Also the engine alone: SandboxEngine.create
 *               until ready (sandbox + checker), without HTTP or a shell.
 *   ready-warm  pool size 1: each run waits until the pool holds a ready
 *               sandbox, then starts a session from it.
 */
import { randomBytes } from 'node:crypto';
import type { Sandbox } from '../lab-server/sandbox/sandbox-engine';
import type { TestServer } from '../test/support/lab-server';
import { finish, startToPrompt, waitUntil, withServer, withTimeout, type Section, type SectionResult, type Variant } from './harness';
import { figure, summarize, type Target } from './stats';

const RUNS = 5;

async function promptRuns(server: TestServer, beforeEach: () => Promise<void>) {
  const total: number[] = [];
  const post: number[] = [];
  const attach: number[] = [];
  const wsOpen: number[] = [];
  const shellStart: number[] = [];
  const login: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await beforeEach();
    const p = await startToPrompt(server);
    total.push(p.totalMs);
    post.push(p.postMs);
    attach.push(p.attachMs);
    wsOpen.push(p.wsOpenMs);
    shellStart.push(p.shellStartMs);
    login.push(p.loginMs);
    await finish(p);
  }
  return { total, post, attach, wsOpen, shellStart, login };
}

type Runs = Awaited<ReturnType<typeof promptRuns>>;

function promptFigures(r: Runs, p50Target?: Target) {
  const t = summarize(r.total);
  return [
    figure('POST /api/sessions -> prompt, p50', t.p50, 'ms', p50Target),
    figure('POST /api/sessions -> prompt, p95', t.p95, 'ms'),
    figure('POST /api/sessions -> prompt, max', t.max, 'ms'),
    figure('  of which POST (until its 201), p50', summarize(r.post).p50, 'ms'),
    figure('  of which WebSocket attach -> prompt, p50', summarize(r.attach).p50, 'ms'),
    figure('    WebSocket open, p50', summarize(r.wsOpen).p50, 'ms'),
    figure('    hello -> ready (shell exec started), p50', summarize(r.shellStart).p50, 'ms'),
    figure('    ready -> prompt (bash login), p50', summarize(r.login).p50, 'ms'),
  ];
}

function samplesOf(r: Runs): Record<string, number[]> {
  return { totalMs: r.total, postMs: r.post, attachMs: r.attach, wsOpenMs: r.wsOpen, shellStartMs: r.shellStart, loginMs: r.login };
}

export const readyColdIn = (v?: Variant): Section => ({
  name: `ready-cold${v?.suffix ?? ''}`,
  title: `Sandbox ready time, cold (pool 0, n=${RUNS})${v ? `, ${v.title}` : ''}`,
  run: async () =>
    withServer({ ...(await v?.env()), VETHLAB_POOL_SIZE: '0' }, async (server): Promise<SectionResult> => {
      const r = await promptRuns(server, async () => {});
      // The engine alone: create (container, inner dockerd, checker) until ready.
      const engineMs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        let sandbox: Sandbox | undefined;
        try {
          const t0 = performance.now();
          sandbox = await withTimeout(
            server.engine.create({
              sessionId: `bench${randomBytes(6).toString('hex')}`,
              host: 'sandbox',
              lab: '',
              learner: 'bench',
              pool: false,
              expiresAt: new Date(Date.now() + 10 * 60_000),
            }),
            90_000,
            'SandboxEngine.create',
          );
          engineMs.push(performance.now() - t0);
        } finally {
          if (sandbox) await server.engine.remove(sandbox);
        }
      }
      const e = summarize(engineMs);
      return {
        figures: [...promptFigures(r), figure('SandboxEngine.create -> ready, p50', e.p50, 'ms'), figure('SandboxEngine.create -> ready, max', e.max, 'ms')],
        samples: { ...samplesOf(r), engineCreateMs: engineMs },
        notes: ['SandboxEngine.create includes the checker container started beside the sandbox.'],
      };
    }),
});
export const readyCold = readyColdIn();

export const readyWarmIn = (v?: Variant): Section => ({
  name: `ready-warm${v?.suffix ?? ''}`,
  title: `Sandbox ready time from the warm pool (pool 1, n=${RUNS})${v ? `, ${v.title}` : ''}`,
  run: async () =>
    withServer({ ...(await v?.env()), VETHLAB_POOL_SIZE: '1' }, async (server): Promise<SectionResult> => {
      const waits: number[] = [];
      const r = await promptRuns(server, async () => {
        const t0 = performance.now();
        await waitUntil(() => server.pool.size === 1, 120_000, 'a ready sandbox in the pool');
        waits.push(performance.now() - t0);
      });
      return {
        figures: promptFigures(r, { op: '<', value: 150 }),
        samples: { ...samplesOf(r), poolRefillWaitMs: waits },
        notes: ['Taking the pooled sandbox starts the refill at once: the next sandbox boots while the measured shell opens (as in real use).'],
      };
    }),
});
export const readyWarm = readyWarmIn();
