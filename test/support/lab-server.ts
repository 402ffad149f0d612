/**
 * Starts a real lab-server (in this process) against the real Docker engine,
 * with its own temporary store, for one test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
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
