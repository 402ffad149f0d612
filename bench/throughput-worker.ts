/**
 * The throughput client in a worker thread: the same lean client on an event
 * loop of its own (as a browser's is), so the lab-server's loop does not also
 * run the client. Started by throughput.ts; posts one WorkerOutput.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { LEAN_TERMINAL, TerminalConnection } from '../test/support/terminal-client';

export interface WorkerInput {
  baseUrl: string;
  cookie: string | undefined;
  sessionId: string;
  command: string;
  done: string;
  timeoutMs: number;
}

export interface WorkerOutput {
  bytes: number;
  ms: number;
  error?: string;
}

const input = workerData as WorkerInput;
let term: TerminalConnection | undefined;
try {
  term = await TerminalConnection.open(input.baseUrl, input.cookie, input.sessionId, { ...LEAN_TERMINAL, cols: 200, rows: 50 });
  const t = term;
  await t.waitForPrompt(30_000);
  await new Promise((r) => setTimeout(r, 300));
  const mark = Buffer.from(input.done);
  const bytes0 = t.bytes;
  const t0 = performance.now();
  t.type(input.command);
  await t.waitFor(() => t.tail.includes(mark) || undefined, input.timeoutMs, 'the output');
  parentPort!.postMessage({ bytes: t.bytes - bytes0, ms: performance.now() - t0 } satisfies WorkerOutput);
} catch (err) {
  term?.type('\x03');
  parentPort!.postMessage({ bytes: 0, ms: 0, error: (err as Error).message } satisfies WorkerOutput);
} finally {
  await term?.close();
}
