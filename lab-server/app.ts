/**
 * Wires the lab-server together: engine, pool, store, sessions, terminals,
 * HTTP/WS API. Used by main.ts, the tests and the benchmarks.
 */
import path from 'node:path';
import { ApiServer } from './api/http-server';
import type { Config } from './config';
import { createLogger, type Logger } from './log';
import { connectDocker, pingEngine } from './sandbox/docker';
import { sandboxImageTag } from './sandbox/image';
import { SandboxEngine } from './sandbox/sandbox-engine';
import { SandboxPool } from './sandbox/sandbox-pool';
import { SessionManager } from './sessions/session-manager';
import { Store } from './store/store';
import { TerminalRegistry } from './terminal/terminal-registry';

export interface LabServer {
  url: string;
  port: number;
  engine: SandboxEngine;
  sessions: SessionManager;
  pool: SandboxPool;
  registry: TerminalRegistry;
  store: Store;
  log: Logger;
  /** Stops serving; removes every sandbox unless keepSandboxes. */
  close(opts?: { keepSandboxes?: boolean }): Promise<void>;
}

export class ImageMissingError extends Error {
  constructor(tag: string) {
    super(`Sandbox image ${tag} is not built. Run \`npm start\` or \`npm run setup\`, which build it from Debian packages.`);
    this.name = 'ImageMissingError';
  }
}

export async function createLabServer(config: Config, opts: { log?: Logger; reapIntervalMs?: number } = {}): Promise<LabServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const docker = connectDocker();
  await pingEngine(docker);
  const image = sandboxImageTag();
  try {
    await docker.getImage(image).inspect();
  } catch {
    throw new ImageMissingError(image);
  }
  const engine = new SandboxEngine(docker, { image, instance: config.instance, limits: config.limits, runtime: config.runtime, log });
  const store = new Store(path.join(config.dataDir, 'vethlab.sqlite'));
  const pool = new SandboxPool(engine, { size: config.poolSize, ttlMs: config.ttlMs, log });
  const sessions = new SessionManager(engine, pool, store, {
    ttlMs: config.ttlMs,
    idleTimeoutMs: config.idleTimeoutMs,
    // Until labs are defined as data, every lab runs in one sandbox.
    labHosts: () => ['sandbox'],
    log,
  });
  await sessions.init();
  const registry = new TerminalRegistry(engine, sessions);
  const api = new ApiServer({
    sessions,
    registry,
    siteDir: config.siteDir,
    allowedOrigins: config.allowedOrigins,
    log,
    health: () => ({ sessions: sessions.size, pool: pool.size, replayBytes: registry.bufferedBytes }),
  });
  const address = await api.listen(config.port, config.host);
  sessions.startHousekeeping(opts.reapIntervalMs);
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${address.port}`;
  let closed = false;
  return {
    url,
    port: address.port,
    engine,
    sessions,
    pool,
    registry,
    store,
    log,
    async close({ keepSandboxes = false } = {}) {
      if (closed) return;
      closed = true;
      await api.close();
      await sessions.shutdown({ keepSandboxes });
      store.close();
    },
  };
}
