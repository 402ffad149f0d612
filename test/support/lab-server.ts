/**
 * Starts a real lab-server against the real Docker engine, with its own
 * temporary store, for one test file: in this process (startTestServer), or
 * as `lab-server/main.ts` in a child process (spawnLabServer) for tests that
 * must see whether the process survives and how much memory it holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createLabServer, type LabServer, type LabServerOptions } from '../../lab-server/app';
import { loadConfig } from '../../lab-server/config';
import { sandboxImageTag } from '../../lab-server/sandbox/image';
import { SandboxEngine } from '../../lab-server/sandbox/sandbox-engine';
import { connectDocker } from '../../lab-server/sandbox/docker';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** Test servers label their sandboxes test-*, so the suite's cleanup never touches a real server's. */
export function testInstance(): string {
  return `test-${process.env.VETHLAB_TEST_RUN ?? 'norun'}-${Math.random().toString(36).slice(2, 8)}`;
}

export interface TestServer extends LabServer {
  dataDir: string;
}

export async function startTestServer(env: Record<string, string> = {}, opts: LabServerOptions = {}): Promise<TestServer> {
  const dataDir = env.VETHLAB_DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'vethlab-test-'));
  const config = loadConfig({
    PORT: '0',
    VETHLAB_POOL_SIZE: '0',
    VETHLAB_DATA_DIR: dataDir,
    VETHLAB_INSTANCE: testInstance(), VETHLAB_SITE_DIR: path.join(ROOT, 'build'), ...env }, ROOT);
  const log = pino({ level: process.env.VETHLAB_TEST_LOG ?? 'warn' });
  const server = await createLabServer(config, { log, ...opts });
  const close = server.close.bind(server);
  return Object.assign(server, {
    dataDir,
    async close(o?: { keepSandboxes?: boolean }) {
      await close(o);
      if (!env.VETHLAB_DATA_DIR && !o?.keepSandboxes) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** A sandbox engine of its own (test-* instance) for tests that make sandboxes without a server. */
export function testEngine(): SandboxEngine {
  return new SandboxEngine(connectDocker(), {
    image: sandboxImageTag(),
    instance: testInstance(),
    limits: { memoryBytes: 512 * 1024 ** 2, pids: 512, cpus: 1, diskBytes: 256 * 1024 ** 2 },
    log: pino({ level: 'warn' }),
  });
}

/** A lab-server running as `node lab-server/main.ts` in a child process. */
export interface ServerProcess {
  url: string;
  port: number;
  instance: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything it printed (log lines are JSON). */
  output(): string;
  /** Its resident memory now, in bytes (Linux /proc). */
  rss(): number;
  /** Stops it as Ctrl-C does (removing its sandboxes); resolves with the exit code. */
  dispose(): Promise<number | null>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function spawnLabServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vethlab-proc-'));
  const instance = testInstance();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'lab-server/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      VETHLAB_HOST: '127.0.0.1',
      VETHLAB_DATA_DIR: dataDir,
      VETHLAB_INSTANCE: instance,
      VETHLAB_POOL_SIZE: '0',
      VETHLAB_SITE_DIR: path.join(ROOT, 'build'),
      VETHLAB_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Ready when /api/health answers; a child that exits first says why.
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lab-server exited at start:\n${out}`);
    if (await fetch(`${url}/api/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port,
    instance,
    dataDir,
    child,
    output: () => out,
    rss() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return Number(m![1]) * 1024;
    },
    async dispose() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const code = await exited;
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
