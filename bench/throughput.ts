/**
 * Output throughput through the terminal path: a command in the learner's
 * shell writes 100 MB, which travels pty -> dtach -> pty of the docker exec ->
 * containerd shim -> dockerd -> lab-server (TerminalSlot, flow control) ->
 * WebSocket -> a lean client that acknowledges as the page does. Figures:
 * MB/s, and the lab-server process's memory sampled every 100 ms (start,
 * peak, end) to show it stays bounded.
 *
 * To tell where the time goes: the CPU of each hop during those runs (this
 * process = lab-server + client, the machine's dockerd, the sandbox's
 * containerd shim, the sandbox container against its CPU limit); the same
 * run with the client on its own event loop (a worker thread); and the same
 * output on shorter paths in the same sandbox. Each of ROUNDS rounds runs
 * every path once, interleaved, so a busy moment on a shared machine does not
 * land on one path only; rates are medians over the rounds.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { TestServer } from '../test/support/lab-server';
import { LEAN_TERMINAL, Learner, plain, PROMPT, TerminalConnection } from '../test/support/terminal-client';
import { finish, sleep, startToPrompt, withServer, withTimeout, type Section, type SectionResult, type Variant } from './harness';
import { containerCpu, hostDockerdPids, shimPids, sumCpu, type ContainerCpu } from './proc';
import { figure, percentile, type Figure } from './stats';
import type { WorkerInput, WorkerOutput } from './throughput-worker';

const TOTAL_BYTES = 100_000_000;
const RUN_TIMEOUT_MS = 180_000;
const SAMPLE_MS = 100;
const ROUNDS = 3;
const MiB = 1024 ** 2;
const SOURCE = `head -c ${TOTAL_BYTES} /dev/zero | tr '\\0' 'x'`;

/**
 * The command for one run, and the marker it prints when the output is
 * complete: unique per run (a reattach replays the previous run's tail), and
 * typed as two quoted halves so the echo of the command line does not match.
 */
function command(): { line: string; done: string } {
  const id = Math.random().toString(36).slice(2, 8);
  return { line: `${SOURCE}; echo; echo "<<tp-${id}""-done>>"\r`, done: `<<tp-${id}-done>>` };
}

interface Hops {
  nodeCpu: number;
  dockerd: number;
  shim: number;
  container: ContainerCpu | null;
}

async function readHops(server: TestServer, containerId: string, dockerd: number[], shim: number[]): Promise<Hops> {
  const container = await withTimeout(containerCpu(server.engine.docker, containerId), 10_000, 'container stats').catch(() => null);
  const u = process.cpuUsage();
  return { nodeCpu: (u.user + u.system) / 1e6, dockerd: sumCpu(dockerd), shim: sumCpu(shim), container };
}

/** Attaches a lean client to the session's terminal and waits for the prompt (a reattach gets the replay first). */
async function attach(server: TestServer, learner: Learner, sessionId: string): Promise<TerminalConnection> {
  const term = await TerminalConnection.open(server.url, learner.cookie, sessionId, { ...LEAN_TERMINAL, cols: 200, rows: 50 });
  try {
    await term.waitForPrompt(30_000);
  } catch (err) {
    await term.close();
    throw err;
  }
  return term;
}

interface WsRun {
  mbPerSec: number;
  seconds: number;
  received: number;
  frames: number;
  acks: number;
  rss: number[];
  heap: number[];
  arrayBuffers: number[];
  peakUnacked: number;
  pausedSamples: number;
  activeSeconds: number;
  cpuSeconds: Record<Hop, number>;
  throttledPeriods: number;
  periods: number;
}

type Hop = 'node' | 'dockerd' | 'shim' | 'sandbox';

/** The full path: learner's shell -> WebSocket, with a lean acknowledging client in this process. */
export async function throughWebSocket(server: TestServer, learner: Learner, sessionId: string): Promise<WsRun> {
  const session = server.sessions.find(sessionId)!;
  const containerId = session.hosts.get('sandbox')!.containerId;
  const slot = server.registry.slot(session, 'main')!;
  const term = await attach(server, learner, sessionId);
  try {
    await sleep(300);
    const dockerd = hostDockerdPids();
    const shim = shimPids(containerId);
    const before = await readHops(server, containerId, dockerd, shim);

    const rss: number[] = [];
    const heap: number[] = [];
    const arrayBuffers: number[] = [];
    const unacked: number[] = [];
    let pausedSamples = 0;
    const sample = () => {
      const m = process.memoryUsage();
      rss.push(m.rss);
      heap.push(m.heapUsed);
      arrayBuffers.push(m.arrayBuffers);
      unacked.push(slot.unacknowledged);
      if (slot.isPaused) pausedSamples++;
    };
    let frames = 0;
    term.onOutput = () => void frames++;
    const cmd = command();
    const doneMark = Buffer.from(cmd.done);

    sample();
    const sampler = setInterval(sample, SAMPLE_MS);
    const elu0 = performance.eventLoopUtilization();
    const bytes0 = term.bytes;
    const acks0 = term.acksSent;
    const t0 = performance.now();
    let ms: number;
    try {
      term.type(cmd.line);
      await term.waitFor(() => term.tail.includes(doneMark) || undefined, RUN_TIMEOUT_MS, `${TOTAL_BYTES} bytes of output`);
      ms = performance.now() - t0;
    } catch (err) {
      term.type('\x03'); // stop the command before the sandbox is removed
      throw err;
    } finally {
      clearInterval(sampler);
      term.onOutput = null;
    }
    const elu = performance.eventLoopUtilization(elu0);
    sample();
    const after = await readHops(server, containerId, dockerd, shim);
    await term.waitFor(() => term.tailText().endsWith(PROMPT) || undefined, 10_000, 'the prompt after the output');

    const received = term.bytes - bytes0;
    const b = before.container;
    const a = after.container;
    return {
      mbPerSec: received / 1e6 / (ms / 1000),
      seconds: ms / 1000,
      received,
      frames,
      acks: term.acksSent - acks0,
      rss,
      heap,
      arrayBuffers,
      peakUnacked: Math.max(...unacked),
      pausedSamples,
      activeSeconds: elu.active / 1000,
      cpuSeconds: {
        node: after.nodeCpu - before.nodeCpu,
        dockerd: after.dockerd - before.dockerd,
        shim: after.shim - before.shim,
        sandbox: a && b ? a.seconds - b.seconds : NaN,
      },
      throttledPeriods: a && b ? a.throttledPeriods - b.throttledPeriods : NaN,
      periods: a && b ? a.periods - b.periods : NaN,
    };
  } finally {
    await term.close();
  }
}

/** The same run with the client in a worker thread (its own event loop, as a browser has). */
export async function throughWorker(server: TestServer, learner: Learner, sessionId: string): Promise<number> {
  const cmd = command();
  const input: WorkerInput = { baseUrl: server.url, cookie: learner.cookie, sessionId, command: cmd.line, done: cmd.done, timeoutMs: RUN_TIMEOUT_MS };
  // Workers do not inherit tsx's loader: the worker registers it, then imports the TypeScript module.
  const tsx = import.meta.resolve('tsx/esm/api');
  const file = new URL('./throughput-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(file)}, ${JSON.stringify(import.meta.url)}))`;
  const worker = new Worker(boot, { eval: true, workerData: input });
  try {
    const out = await withTimeout(
      new Promise<WorkerOutput>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`throughput worker exited (${code}) without a result`)));
      }),
      RUN_TIMEOUT_MS + 30_000,
      'throughput worker',
    );
    if (out.error) throw new Error(`throughput worker: ${out.error}`);
    return out.bytes / 1e6 / (out.ms / 1000);
  } finally {
    await worker.terminate();
  }
}

/** The source alone, inside the sandbox, to /dev/null (no TTY): its speed under the sandbox's CPU limit. */
export async function sourceOnly(server: TestServer, containerId: string): Promise<number> {
  const t0 = performance.now();
  const r = await server.engine.exec(containerId, ['sh', '-c', `${SOURCE} > /dev/null`], { timeoutMs: RUN_TIMEOUT_MS });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`source-only run failed (${r.exitCode}): ${r.stderr}`);
  return TOTAL_BYTES / 1e6 / (ms / 1000);
}

/** `docker exec` of the source, read in this process; with a TTY (as the shell has) or without (multiplexed stream). */
export async function dockerExec(server: TestServer, containerId: string, tty: boolean): Promise<number> {
  const exec = await server.engine.docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', SOURCE], AttachStdout: true, AttachStderr: true, Tty: tty });
  const t0 = performance.now();
  const stream = (await exec.start({ hijack: true, stdin: false, Tty: tty })) as Duplex;
  let bytes = 0;
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      stream.on('data', (b: Buffer) => (bytes += b.length));
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    }),
    RUN_TIMEOUT_MS,
    'docker exec run',
  ).finally(() => stream.destroy());
  const ms = performance.now() - t0;
  if (bytes < TOTAL_BYTES) throw new Error(`docker exec run ended after ${bytes} bytes`);
  return bytes / 1e6 / (ms / 1000);
}

/** The learner's shell as the lab-server opens it (dtach + docker exec TTY), read straight from its stream: no slot, no WebSocket. */
export async function shellStream(server: TestServer, containerId: string): Promise<number> {
  const shell = await server.engine.openShell(containerId, 'bench-raw', { cols: 200, rows: 50 });
  const stream = shell.stream;
  try {
    let tail = Buffer.alloc(0);
    let bytes = 0;
    const waiters = new Set<() => void>();
    stream.on('data', (b: Buffer) => {
      bytes += b.length;
      tail = Buffer.concat([tail.subarray(Math.max(0, tail.length - 4096)), b.length > 4096 ? b.subarray(b.length - 4096) : b]);
      for (const w of waiters) w();
    });
    const until = (pred: () => boolean, ms: number, what: string) => {
      let w = () => {};
      return withTimeout(
        new Promise<void>((resolve) => {
          w = () => {
            if (pred()) resolve();
          };
          waiters.add(w);
          w();
        }),
        ms,
        what,
      ).finally(() => waiters.delete(w));
    };
    await until(() => plain(tail.toString('utf8')).endsWith(PROMPT), 30_000, 'the raw shell prompt');
    const cmd = command();
    const mark = Buffer.from(cmd.done);
    const bytes0 = bytes;
    const t0 = performance.now();
    stream.write(cmd.line);
    try {
      await until(() => tail.includes(mark), RUN_TIMEOUT_MS, 'raw shell output');
    } catch (err) {
      stream.write('\x03');
      throw err;
    }
    const ms = performance.now() - t0;
    return (bytes - bytes0) / 1e6 / (ms / 1000);
  } finally {
    stream.write('exit\r');
    await sleep(200);
    stream.destroy();
  }
}

export const throughputIn = (v?: Variant): Section => ({
  name: `throughput${v?.suffix ?? ''}`,
  title: `Output throughput through the terminal path (${TOTAL_BYTES / 1e6} MB, ${ROUNDS} rounds, medians)${v ? `, ${v.title}` : ''}`,
  run: async () =>
    withServer({ ...(await v?.env()), VETHLAB_POOL_SIZE: '0' }, async (server): Promise<SectionResult> => {
      const notes: string[] = [];
      const failed = (err: Error) => (notes.push(err.message), NaN);
      // One session; each round attaches to its terminal afresh and runs the same output over every path, interleaved.
      const p = await startToPrompt(server, { term: { cols: 200, rows: 50 } });
      const ws: WsRun[] = [];
      const rates: Record<'worker' | 'source' | 'noTty' | 'tty' | 'shell', number[]> = { worker: [], source: [], noTty: [], tty: [], shell: [] };
      try {
        await p.term.close();
        await sleep(1500); // let the start-of-session lab check finish
        const containerId = server.sessions.find(p.sessionId)!.hosts.get('sandbox')!.containerId;
        for (let round = 0; round < ROUNDS; round++) {
          ws.push(await throughWebSocket(server, p.learner, p.sessionId));
          rates.worker.push(await throughWorker(server, p.learner, p.sessionId).catch(failed));
          rates.source.push(await sourceOnly(server, containerId).catch(failed));
          rates.noTty.push(await dockerExec(server, containerId, false).catch(failed));
          rates.tty.push(await dockerExec(server, containerId, true).catch(failed));
          rates.shell.push(await shellStream(server, containerId).catch(failed));
        }
      } finally {
        await finish(p);
      }
      const rss = ws.flatMap((r) => r.rss);
      const seconds = ws.reduce((n, r) => n + r.seconds, 0);
      const cpu = (hop: Hop) => (ws.reduce((n, r) => n + r.cpuSeconds[hop], 0) / seconds) * 100;
      const periods = ws.reduce((n, r) => n + r.periods, 0);
      const samples = ws.reduce((n, r) => n + r.rss.length, 0);
      const received = ws.reduce((n, r) => n + r.received, 0);
      const med = (xs: number[]) => percentile(xs.filter(Number.isFinite), 50);
      const figures: Figure[] = [
        figure('shell -> WebSocket client (median)', med(ws.map((r) => r.mbPerSec)), 'MB/s', { op: '>=', value: 20 }),
        figure('lab-server RSS at start', rss[0]! / MiB, 'MiB'),
        figure('lab-server RSS peak', Math.max(...rss) / MiB, 'MiB'),
        figure('lab-server RSS at end', rss[rss.length - 1]! / MiB, 'MiB'),
        figure('lab-server JS heap used, peak', Math.max(...ws.flatMap((r) => r.heap)) / MiB, 'MiB'),
        figure('lab-server Buffer memory (arrayBuffers), peak', Math.max(...ws.flatMap((r) => r.arrayBuffers)) / MiB, 'MiB'),
        figure('peak unacknowledged bytes (server)', Math.max(...ws.map((r) => r.peakUnacked)) / 1024, 'KiB'),
        figure('samples with the shell paused (flow control)', (ws.reduce((n, r) => n + r.pausedSamples, 0) / samples) * 100, '%'),
        figure('output frames, mean size', received / ws.reduce((n, r) => n + r.frames, 0) / 1024, 'KiB'),
        figure('event loop busy (server + client, ELU)', (ws.reduce((n, r) => n + r.activeSeconds, 0) / seconds) * 100, '%'),
        figure('CPU: this process (lab-server + client)', cpu('node'), '% of a core'),
        figure('CPU: the engine (dockerd)', cpu('dockerd'), '% of a core'),
        figure("CPU: the sandbox's containerd shim", cpu('shim'), '% of a core'),
        figure('CPU: sandbox container (limit 1 CPU)', cpu('sandbox'), '% of a core'),
        figure('CPU: sandbox CFS periods throttled', periods > 0 ? (ws.reduce((n, r) => n + r.throttledPeriods, 0) / periods) * 100 : NaN, '%'),
        figure('same, client in a worker thread (own event loop)', med(rates.worker), 'MB/s'),
        figure('path: source alone in the sandbox (> /dev/null)', med(rates.source), 'MB/s'),
        figure('path: docker exec, no TTY, read in-process', med(rates.noTty), 'MB/s'),
        figure('path: docker exec with a TTY, read in-process', med(rates.tty), 'MB/s'),
        figure('path: dtach shell stream as the slot reads it', med(rates.shell), 'MB/s'),
      ];
      return {
        figures,
        samples: {
          wsMBps: ws.map((r) => r.mbPerSec),
          workerMBps: rates.worker,
          sourceMBps: rates.source,
          dockerExecNoTtyMBps: rates.noTty,
          dockerExecTtyMBps: rates.tty,
          shellStreamMBps: rates.shell,
          rssMiB: rss.map((r) => r / MiB),
        },
        details: { rounds: ROUNDS, wsRuns: ws.map(({ rss: _r, heap: _h, arrayBuffers: _a, ...rest }) => rest) },
        notes,
      };
    }),
});
export const throughput = throughputIn();
