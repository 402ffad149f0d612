/**
 * Wires the lab-server together: engine, pool, store, sessions, terminals,
 * HTTP/WS API. Used by main.ts, the tests and the benchmarks.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApiServer } from './api/http-server';
import { Identity, loadOrCreateSecret } from './api/identity';
import type { Config } from './config';
import { LabCatalog } from './labs/catalog';
import { LabService } from './labs/lab-service';
import { createLogger, type Logger } from './log';
import { connectDocker, ContainmentError, engineContainment, NO_USERNS_OPT_OUT, pingEngine } from './sandbox/docker';
import { sandboxImageTag } from './sandbox/image';
import type { SandboxDriver } from './sandbox/sandbox-driver';
import { SandboxEngine } from './sandbox/sandbox-engine';
import { SwarmDriver } from './sandbox/swarm-driver';
import { SandboxPool } from './sandbox/sandbox-pool';
import { Admission } from './sessions/admission';
import { SessionManager } from './sessions/session-manager';
import { Store } from './store/store';
import { TerminalRegistry } from './terminal/terminal-registry';
import { RoomApi } from './rooms/room-api';
import { RoomService } from './rooms/room-service';

export interface LabServer {
  url: string;
  /** Where learners and instructors reach it (VETHLAB_PUBLIC_URL, else url). */
  publicUrl: string;
  port: number;
  engine: SandboxDriver;
  sessions: SessionManager;
  pool: SandboxPool;
  registry: TerminalRegistry;
  labs: LabService;
  store: Store;
  rooms: RoomService;
  log: Logger;
  instructorToken: string;
  /** The assistants' sign-in token (view and shadow only). */
  assistantToken: string;
  /** Stops serving; removes every sandbox unless keepSandboxes. */
  close(opts?: { keepSandboxes?: boolean }): Promise<void>;
}

export class ImageMissingError extends Error {
  constructor(tag: string) {
    super(`Sandbox image ${tag} is not built. Run \`npm start\` or \`npm run setup\`, which build it from Debian packages.`);
    this.name = 'ImageMissingError';
  }
}

/** The instructor's token for grade export: from the config, or made once and kept in the data folder. */
function loadOrCreateToken(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(18).toString('base64url');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

export interface LabServerOptions {
  log?: Logger;
  reapIntervalMs?: number;
  checkIntervalMs?: number;
  catalog?: LabCatalog;
}

/** Today's driver: every sandbox on the one engine (vethlab's own, user-namespaced). */
async function singleEngine(config: Config, log: Logger): Promise<SandboxEngine> {
  const docker = connectDocker(config.engine);
  await pingEngine(docker);
  // A learner is root in the sandbox: only a user-namespaced engine keeps that root off the machine.
  const containment = await engineContainment(docker);
  if (!containment.userns) {
    if (!config.unsafeRootSandboxes) throw new ContainmentError(containment, config.engine);
    log.warn({ engine: config.engine }, `UNSAFE: sandboxes run without a user namespace (${NO_USERNS_OPT_OUT.name}): every learner is root on this machine`);
  }
  const image = sandboxImageTag();
  try {
    await docker.getImage(image).inspect();
  } catch {
    throw new ImageMissingError(image);
  }
  return new SandboxEngine(docker, { image, instance: config.instance, limits: config.limits, runtime: config.runtime, userns: containment.userns,
    ...(config.terminalPath === 'auto' ? {} : { directTerminals: config.terminalPath === 'dtach' }),
    log,
  });
}

/** Sandboxes across a Docker Swarm: each node's engine is checked (userns, seccomp, cgroupns, no bridge, the image) before it takes any. */
async function swarmDriver(config: Config, log: Logger): Promise<SwarmDriver> {
  const docker = connectDocker(config.swarm);
  await pingEngine(docker, config.swarm);
  const driver = new SwarmDriver(docker, { image: sandboxImageTag(), instance: config.instance, limits: config.limits, log });
  const nodes = await driver.start();
  log.info({ nodes: nodes.map((n) => `${n.id} ${n.hostname} ${n.state}`) }, 'sandboxes across a swarm');
  return driver;
}

export async function createLabServer(config: Config, opts: LabServerOptions = {}): Promise<LabServer> {
  const log = opts.log ?? createLogger(config.logLevel);
  const engine = config.swarm ? await swarmDriver(config, log) : await singleEngine(config, log);
  const store = new Store(path.join(config.dataDir, 'vethlab.sqlite'));
  const pool = new SandboxPool(engine, { size: config.poolSize, ttlMs: config.ttlMs, log });
  const catalog = opts.catalog ?? LabCatalog.load();
  let labs: LabService | undefined;
  let rooms: RoomService | undefined;
  const sessions = new SessionManager(engine, pool, store, {
    ttlMs: config.ttlMs,
    idleTimeoutMs: config.idleTimeoutMs,
    labHosts: (id) => catalog.get(id)?.hosts,
    admission: new Admission(config.admission),
    sessionsPerLearner: config.sessionsPerLearner,
    prepare: (session) => labs!.prepare(session),
    mayStart: (learner, lab) => rooms?.mayStart(learner, lab),
    log,
  });
  const registry = new TerminalRegistry(engine, sessions, path.join(config.dataDir, 'replay'));
  labs = new LabService(catalog, engine, sessions, registry, store, log);
  await sessions.init();
  const instructorToken = config.instructorToken ?? loadOrCreateToken(path.join(config.dataDir, 'instructor-token'));
  const identity = new Identity(loadOrCreateSecret(path.join(config.dataDir, 'server-secret')), instructorToken);
  rooms = new RoomService({ store, sessions, labs, registry, pool, identity, log });
  const api = new ApiServer({
    sessions,
    registry,
    labs,
    store,
    rooms: new RoomApi(rooms, sessions, registry, log),
    identity,
    secureCookies: config.publicUrl?.startsWith('https:') ?? false,
    siteDir: config.siteDir,
    allowedOrigins: config.allowedOrigins,
    log,
    health: () => ({ sessions: sessions.size, sandboxes: sessions.sandboxCount, booting: sessions.bootingCount, pool: pool.size, replayBytes: registry.bufferedBytes, storeWritable: store.lastKnownWritable }),
  });
  const address = await api.listen(config.port, config.host);
  sessions.startHousekeeping(opts.reapIntervalMs);
  labs.startTimer(opts.checkIntervalMs);
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${address.port}`;
  const publicUrl = config.publicUrl ?? url;
  let closed = false;
  return {
    url,
    publicUrl,
    port: address.port,
    engine,
    sessions,
    pool,
    registry,
    labs,
    store,
    rooms,
    log,
    instructorToken,
    assistantToken: identity.assistantToken(),
    async close({ keepSandboxes = false } = {}) {
      if (closed) return;
      closed = true;
      await api.close();
      rooms!.dispose();
      labs!.stop();
      registry.stop();
      await sessions.shutdown({ keepSandboxes });
      if (engine instanceof SwarmDriver) engine.dispose();
      store.close();
    },
  };
}
