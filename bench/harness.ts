/**
 * What every benchmark section shares: a real in-process lab-server that is
 * always closed (and its sandboxes swept) however the section ends, bounded
 * waits, and "start a session and wait for its prompt" through the real HTTP
 * API and WebSocket.
 */
import type Docker from 'dockerode';
import type { LabServerOptions } from '../lab-server/app';
import { LABEL } from '../lab-server/sandbox/sandbox-engine';
import { startTestServer, type TestServer } from '../test/support/lab-server';
import { LEAN_TERMINAL, Learner, TerminalConnection, type TerminalOptions } from '../test/support/terminal-client';
import type { Figure } from './stats';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects if `promise` has not settled within `ms` (the work itself is not cancelled). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every intervalMs until it holds; throws after timeoutMs. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string, intervalMs = 25): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** What a section hands back: its figures (for the table), raw samples and details (for the JSON). */
export interface SectionResult {
  figures: Figure[];
  samples?: Record<string, number[]>;
  details?: Record<string, unknown>;
  notes?: string[];
}

export interface Section {
  name: string;
  title: string;
  run(): Promise<SectionResult>;
}

/** Servers started by the benchmarks and not closed yet (closed on Ctrl-C). */
const active = new Set<TestServer>();
/** Every instance label a benchmark server used, with its engine, for the leftover check. */
const labels = new Map<string, Docker>();

/** A run of a section against another engine set-up (e.g. without user namespaces), named by its suffix. */
export interface Variant {
  suffix: string;
  title: string;
  env: () => Promise<Record<string, string>>;
}

/** Starts a lab-server, runs fn, and always closes it and sweeps its sandboxes. */
export async function withServer<T>(env: Record<string, string>, fn: (server: TestServer) => Promise<T>, opts: LabServerOptions = {}): Promise<T> {
  const server = await startTestServer(env, opts);
  active.add(server);
  labels.set(server.engine.ownLabel, server.engine.docker);
  try {
    return await fn(server);
  } finally {
    await closeServer(server);
  }
}

async function closeServer(server: TestServer): Promise<void> {
  if (!active.delete(server)) return;
  try {
    await withTimeout(server.close(), 90_000, 'server.close()');
  } catch (err) {
    console.error(`bench: closing the lab-server failed: ${(err as Error).message}`);
  }
  const swept = await sweep(server.engine.docker, server.engine.ownLabel).catch(() => 0);
  if (swept) console.error(`bench: removed ${swept} container(s)/volume(s) the server left behind`);
}

/** Removes every container and volume with the label (one benchmark server's instance). */
export async function sweep(d: Docker, label: string): Promise<number> {
  let removed = 0;
  const containers = await d.listContainers({ all: true, filters: { label: [label] } });
  for (const c of containers) {
    await d
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .then(() => removed++)
      .catch(() => {});
  }
  const { Volumes } = await d.listVolumes({ filters: { label: [label] } });
  for (const v of Volumes ?? []) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await d.getVolume(v.Name).remove();
        removed++;
        break;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) break;
        await sleep(200);
      }
    }
  }
  return removed;
}

/** Containers still on the engine from any benchmark server; and sandbox containers of every server on the engine. */
export async function leftovers(): Promise<{ ours: number; anyVethlabSession: number }> {
  let ours = 0;
  let any = 0;
  for (const [label, docker] of labels) ours += (await docker.listContainers({ all: true, filters: { label: [label] } })).length;
  for (const docker of new Set(labels.values())) any += (await docker.listContainers({ all: true, filters: { label: [LABEL.session] } })).length;
  return { ours, anyVethlabSession: any };
}

/** Closes every benchmark server still open (Ctrl-C). */
export async function closeAll(): Promise<void> {
  await Promise.all([...active].map((s) => closeServer(s)));
}

export interface Prompted {
  learner: Learner;
  sessionId: string;
  term: TerminalConnection;
  /** POST /api/sessions until its 201. */
  postMs: number;
  /** Then: WebSocket open, hello, shell started, prompt seen. */
  attachMs: number;
  /** attachMs in parts: the WebSocket opens; hello until `ready` (the shell's exec started); `ready` until the prompt (bash login). */
  wsOpenMs: number;
  shellStartMs: number;
  loginMs: number;
  totalMs: number;
}

/** A new learner starts a session through the HTTP API and opens its terminal; resolves at the prompt. */
export async function startToPrompt(server: TestServer, opts: { lab?: string; term?: Partial<TerminalOptions>; timeoutMs?: number } = {}): Promise<Prompted> {
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const learner = new Learner(server.url);
  const t0 = performance.now();
  const { sessionId } = await withTimeout(learner.startSession(opts.lab ?? 'network-stack'), timeoutMs, 'POST /api/sessions');
  const t1 = performance.now();
  const term = await TerminalConnection.open(server.url, learner.cookie, sessionId, { ...LEAN_TERMINAL, ...opts.term });
  try {
    await term.waitForPrompt(timeoutMs);
  } catch (err) {
    await term.close();
    throw err;
  }
  const t2 = performance.now();
  return {
    learner,
    sessionId,
    term,
    postMs: t1 - t0,
    attachMs: t2 - t1,
    wsOpenMs: term.openedAt - t1,
    shellStartMs: term.readyAt - term.openedAt,
    loginMs: t2 - term.readyAt,
    totalMs: t2 - t0,
  };
}

/** Closes the terminal and ends the session (its sandbox is removed). */
export async function finish(p: Prompted): Promise<void> {
  await p.term.close();
  await withTimeout(p.learner.endSession(p.sessionId), 60_000, 'DELETE /api/sessions').catch((err: Error) => console.error(`bench: ${err.message}`));
}
