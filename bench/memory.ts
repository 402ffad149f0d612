/**
 * Memory per idle sandbox: start SESSIONS sessions through the HTTP API (no
 * terminal open), leave them idle for IDLE_MS, then read each sandbox
 * container's memory from the engine (as `docker stats --no-stream` does),
 * and that of the checker container beside it; then what the idle sandboxes
 * cost in CPU over CPU_WINDOW_MS (their inner engines' wakeups, mostly).
 */
import type Docker from 'dockerode';
import { checkerName } from '../lab-server/sandbox/sandbox-engine';
import { Learner } from '../test/support/terminal-client';
import { sleep, withServer, withTimeout, type Section, type SectionResult, type Variant } from './harness';
import { figure, mean } from './stats';

const SESSIONS = 3;
const IDLE_MS = 5000;
const CPU_WINDOW_MS = 30_000;
const MiB = 1024 ** 2;

interface MemoryStats {
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
}

/** One reading of a container's stats, as `docker stats --no-stream` takes it. */
async function statsOf(docker: Docker, idOrName: string): Promise<MemoryStats> {
  return (await withTimeout(docker.getContainer(idOrName).stats({ stream: false }), 15_000, `stats of ${idOrName}`)) as MemoryStats;
}

/** CPU time a container has used so far, in nanoseconds (its cgroup's total). */
async function cpuNanosOf(docker: Docker, idOrName: string): Promise<number> {
  return (await statsOf(docker, idOrName)).cpu_stats?.cpu_usage?.total_usage ?? NaN;
}

interface Memory {
  /** usage minus page cache. */
  noCacheMiB: number;
  /** What `docker stats` shows: usage minus inactive file pages. */
  dockerStatsMiB: number;
  rssMiB: number;
}

async function memoryOf(docker: Docker, idOrName: string): Promise<Memory> {
  const s = await statsOf(docker, idOrName);
  const usage = s.memory_stats?.usage ?? NaN;
  const st = s.memory_stats?.stats ?? {};
  // cgroup v1 names the page cache `cache` (`total_*` for the hierarchy); v2 calls it `file`.
  const cache = st.total_cache ?? st.cache ?? st.file ?? 0;
  const inactive = st.total_inactive_file ?? st.inactive_file ?? 0;
  return {
    noCacheMiB: (usage - cache) / MiB,
    dockerStatsMiB: (inactive < usage ? usage - inactive : usage) / MiB,
    rssMiB: (st.total_rss ?? st.rss ?? st.anon ?? NaN) / MiB,
  };
}

export const memoryIn = (v?: Variant): Section => ({
  name: `memory${v?.suffix ?? ''}`,
  title: `Memory per idle sandbox (n=${SESSIONS}, idle ${IDLE_MS / 1000} s)${v ? `, ${v.title}` : ''}`,
  run: async () =>
    withServer({ ...(await v?.env()), VETHLAB_POOL_SIZE: '0' }, async (server): Promise<SectionResult> => {
      const started: { learner: Learner; sessionId: string }[] = [];
      try {
        for (let i = 0; i < SESSIONS; i++) {
          const learner = new Learner(server.url);
          const { sessionId } = await withTimeout(learner.startSession(), 90_000, 'POST /api/sessions');
          started.push({ learner, sessionId });
        }
        await sleep(IDLE_MS);
        const sandboxes: Memory[] = [];
        const checkers: Memory[] = [];
        for (const { sessionId } of started) {
          const sandbox = server.sessions.find(sessionId)!.hosts.get('sandbox')!;
          sandboxes.push(await memoryOf(server.engine.docker, sandbox.containerId));
          checkers.push(await memoryOf(server.engine.docker, checkerName(sandbox.name)));
        }
        const noCache = sandboxes.map((m) => m.noCacheMiB);
        const ids = started.map(({ sessionId }) => server.sessions.find(sessionId)!.hosts.get('sandbox')!.containerId);
        const cpu0 = await Promise.all(ids.map((id) => cpuNanosOf(server.engine.docker, id)));
        const t0 = performance.now();
        await sleep(CPU_WINDOW_MS);
        const cpu1 = await Promise.all(ids.map((id) => cpuNanosOf(server.engine.docker, id)));
        const window = (performance.now() - t0) * 1e6;
        const idleCpuPct = cpu1.map((c, i) => (100 * (c - cpu0[i]!)) / window);
        return {
          figures: [
            figure('idle sandbox, usage - cache, mean', mean(noCache), 'MiB'),
            figure('idle sandbox, usage - cache, max', Math.max(...noCache), 'MiB'),
            figure('idle sandbox, as docker stats shows it, mean', mean(sandboxes.map((m) => m.dockerStatsMiB)), 'MiB'),
            figure('idle sandbox, RSS, mean', mean(sandboxes.map((m) => m.rssMiB)), 'MiB'),
            figure('its checker container, usage - cache, mean', mean(checkers.map((m) => m.noCacheMiB)), 'MiB'),
            figure(`idle sandbox CPU over ${CPU_WINDOW_MS / 1000} s, mean`, mean(idleCpuPct), '% of a core'),
          ],
          details: { sandboxes, checkers, idleCpuPct },
        };
      } finally {
        for (const s of started) await withTimeout(s.learner.endSession(s.sessionId), 60_000, 'DELETE /api/sessions').catch(() => {});
      }
    }),
});
export const memory = memoryIn();
