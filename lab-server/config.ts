/**
 * Lab-server configuration: every setting comes from the environment, is
 * validated once at start, and is listed in the README.
 */
import path from 'node:path';
import { z } from 'zod';
import { dockerEndpoint, NO_USERNS_OPT_OUT } from './sandbox/docker';
import { defaultMaxSandboxes } from './sessions/admission';

const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h)$/, 'a duration like 90s, 30m or 2h')
  .transform((s) => {
    const n = Number.parseInt(s, 10);
    const unit = s.replace(/^\d+/, '');
    return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[unit]!;
  });

const memory = z
  .string()
  .regex(/^\d+[kmg]?$/i, 'a size like 512m or 1g')
  .transform((s) => {
    const n = Number.parseInt(s, 10);
    const unit = s.slice(-1).toLowerCase();
    const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
    return n * mult;
  });

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  VETHLAB_HOST: z.string().default('127.0.0.1'),
  VETHLAB_POOL_SIZE: z.coerce.number().int().min(0).max(64).default(1),
  VETHLAB_MEMORY: memory.default(512 * 1024 ** 2),
  VETHLAB_DISK: memory.default(256 * 1024 ** 2),
  VETHLAB_PIDS: z.coerce.number().int().min(64).max(100_000).default(512),
  VETHLAB_MAX_SANDBOXES: z.coerce.number().int().min(1).max(1000).optional(),
  VETHLAB_MIN_FREE_MEMORY: memory.default(512 * 1024 ** 2),
  VETHLAB_STARTS_PER_LEARNER: z.coerce.number().int().min(1).max(1000).default(10),
  VETHLAB_STARTS_PER_ADDRESS: z.coerce.number().int().min(1).max(10_000).default(60),
  VETHLAB_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  VETHLAB_SESSIONS_PER_LEARNER: z.coerce.number().int().min(1).max(20).default(3),
  VETHLAB_CPUS: z.coerce.number().min(0.1).max(64).default(1),
  VETHLAB_TTL: duration.default(2 * 3_600_000),
  VETHLAB_IDLE_TIMEOUT: duration.default(30 * 60_000),
  VETHLAB_RUNTIME: z.string().optional(),
  VETHLAB_DATA_DIR: z.string().default('.vethlab'),
  VETHLAB_INSTANCE: z.string().regex(/^[a-z0-9-]{1,40}$/, 'lowercase letters, digits and -').default('default'),
  VETHLAB_SITE_DIR: z.string().default('build'),
  VETHLAB_ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((o) => o.trim()).filter(Boolean)),
  VETHLAB_INSTRUCTOR_TOKEN: z.string().min(12, 'at least 12 characters').optional(),
  VETHLAB_ENGINE: z.string().regex(/^(unix|tcp):\/\/\S+$/, 'unix:///path/to/docker.sock or tcp://host:port').optional(),
  VETHLAB_SWARM: z.string().regex(/^(unix|tcp):\/\/\S+$/, 'unix:///path/to/docker.sock or tcp://host:port of a Swarm manager').optional(),
  VETHLAB_UNSAFE_ROOT_SANDBOXES: z.string().optional(),
  VETHLAB_TERMINAL_PATH: z.enum(['auto', 'dtach', 'exec']).default('auto'),
  VETHLAB_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  host: string;
  /** Ready sandboxes kept waiting for the next learner. */
  poolSize: number;
  /** Per sandbox; its disk is memory-backed and counts against its memory. */
  limits: { memoryBytes: number; pids: number; cpus: number; diskBytes: number };
  /** Admission: sandboxes at once (default: what memory holds), free memory kept, starts per learner per 10 min. */
  admission: { maxSandboxes: number; minFreeMemoryBytes: number; perLearnerStarts: number; perAddressStarts: number; perLearnerWindowMs: number };
  /** Where learners reach the server (behind a TLS proxy: https://...); https makes every cookie Secure. */
  publicUrl: string | undefined;
  /** Labs one learner keeps live at once; opening another ends the least recently used. */
  sessionsPerLearner: number;
  /** A session ends this long after it started, whatever happens. */
  ttlMs: number;
  /** ... or this long after the learner's last keystroke or attach. */
  idleTimeoutMs: number;
  /** OCI runtime for sandboxes (e.g. sysbox-runc); the engine default if unset. */
  runtime: string | undefined;
  dataDir: string;
  /** Names this server's sandboxes (label vethlab.instance); two servers on one engine need different ones. */
  instance: string;
  siteDir: string;
  allowedOrigins: string[];
  /** Bearer token for grade export; made and kept in the data folder if unset. */
  instructorToken: string | undefined;
  logLevel: string;
  /** The engine that runs sandboxes (vethlab's own user-namespaced dockerd unless VETHLAB_ENGINE says otherwise). */
  engine: string;
  /** A Swarm manager's engine: sandboxes are placed across its nodes (README, "More than one machine"); unset: the one engine above. */
  swarm: string | undefined;
  /** How terminal bytes travel: dtach's socket straight from the lab-server, or `docker exec` (auto: dtach when the engine is on this machine). */
  terminalPath: 'auto' | 'dtach' | 'exec';
  /** The loud opt-out: run sandboxes on an engine without user namespaces (learners are root on the machine). */
  unsafeRootSandboxes: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): Config {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`);
    throw new Error(`Invalid vethlab configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.VETHLAB_DISK < 16 * 1024 ** 2 || e.VETHLAB_DISK > e.VETHLAB_MEMORY - 128 * 1024 ** 2) {
    throw new Error(
      `Invalid vethlab configuration:\n  VETHLAB_DISK: between 16m and VETHLAB_MEMORY minus 128m (the sandbox disk is memory-backed and its processes need room); got ${env.VETHLAB_DISK ?? '256m'} with VETHLAB_MEMORY ${env.VETHLAB_MEMORY ?? '512m'}`,
    );
  }
  return {
    port: e.PORT,
    host: e.VETHLAB_HOST,
    poolSize: e.VETHLAB_POOL_SIZE,
    limits: { memoryBytes: e.VETHLAB_MEMORY, pids: e.VETHLAB_PIDS, cpus: e.VETHLAB_CPUS, diskBytes: e.VETHLAB_DISK },
    admission: {
      maxSandboxes: e.VETHLAB_MAX_SANDBOXES ?? defaultMaxSandboxes(e.VETHLAB_MEMORY),
      minFreeMemoryBytes: e.VETHLAB_MIN_FREE_MEMORY,
      perLearnerStarts: e.VETHLAB_STARTS_PER_LEARNER,
      perAddressStarts: e.VETHLAB_STARTS_PER_ADDRESS,
      perLearnerWindowMs: 10 * 60_000,
    },
    sessionsPerLearner: e.VETHLAB_SESSIONS_PER_LEARNER,
    ttlMs: e.VETHLAB_TTL,
    idleTimeoutMs: e.VETHLAB_IDLE_TIMEOUT,
    runtime: e.VETHLAB_RUNTIME,
    dataDir: path.resolve(root, e.VETHLAB_DATA_DIR),
    instance: e.VETHLAB_INSTANCE,
    siteDir: path.resolve(root, e.VETHLAB_SITE_DIR),
    allowedOrigins: e.VETHLAB_ALLOWED_ORIGINS,
    instructorToken: e.VETHLAB_INSTRUCTOR_TOKEN,
    publicUrl: e.VETHLAB_PUBLIC_URL?.replace(/\/+$/, ''),
    logLevel: e.VETHLAB_LOG_LEVEL,
    engine: dockerEndpoint({ VETHLAB_ENGINE: e.VETHLAB_ENGINE }),
    swarm: e.VETHLAB_SWARM,
    unsafeRootSandboxes: e.VETHLAB_UNSAFE_ROOT_SANDBOXES === NO_USERNS_OPT_OUT.value,
    terminalPath: e.VETHLAB_TERMINAL_PATH,
  };
}
