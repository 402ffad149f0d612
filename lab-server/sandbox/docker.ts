/**
 * The connection to the engine that runs sandboxes: vethlab's own dockerd,
 * user-namespaced (root in a sandbox is an unprivileged uid on the machine),
 * beside any Docker engine the machine already runs, which vethlab never
 * touches. Errors a person can act on instead of a socket stack trace.
 */
import Docker from 'dockerode';

/** Where setup keeps vethlab's sandbox engine (scripts/setup/engine.ts). */
export const SANDBOX_ENGINE = {
  dataRoot: '/var/lib/vethlab-engine',
  execRoot: '/run/vethlab-engine',
  socket: '/run/vethlab-engine/docker.sock',
  pidfile: '/run/vethlab-engine/dockerd.pid',
  log: '/var/log/vethlab-engine.log',
} as const;

/** VETHLAB_ENGINE overrides the endpoint (e.g. tcp://node:2376 with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH). */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.VETHLAB_ENGINE || `unix://${SANDBOX_ENGINE.socket}`;
}

export function connectDocker(endpoint = dockerEndpoint()): Docker {
  if (endpoint.startsWith('unix://')) return new Docker({ socketPath: endpoint.slice('unix://'.length) });
  const url = new URL(endpoint.replace(/^tcp:/, process.env.DOCKER_TLS_VERIFY ? 'https:' : 'http:'));
  // docker-modem reads DOCKER_CERT_PATH itself for https.
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

/** Environment for the docker CLI so it talks to the sandbox engine, not the machine's default one. */
export function engineCliEnv(endpoint = dockerEndpoint()): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: endpoint };
}

export class EngineUnreachableError extends Error {
  constructor(cause: unknown, endpoint = dockerEndpoint()) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `vethlab's sandbox engine is not reachable at ${endpoint} (${why}). ` +
        'Run `npm start` or `npm run setup` as root: it installs docker.io if needed and starts that engine ' +
        `(log: ${SANDBOX_ENGINE.log}).`,
    );
    this.name = 'EngineUnreachableError';
  }
}

/** Resolves when the engine answers; rejects with EngineUnreachableError otherwise. */
export async function pingEngine(docker: Docker, endpoint?: string): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new EngineUnreachableError(err, endpoint);
  }
}

/** How the engine contains its containers, from `docker info`. */
export interface Containment {
  userns: boolean;
  cgroupVersion: '1' | '2';
  /** The engine's own answer, for the error message. */
  securityOptions: string[];
}

export async function engineContainment(docker: Docker): Promise<Containment> {
  const info = (await docker.info()) as { SecurityOptions?: string[]; CgroupVersion?: string };
  const securityOptions = info.SecurityOptions ?? [];
  return {
    userns: securityOptions.some((o) => o.includes('name=userns')),
    cgroupVersion: info.CgroupVersion === '2' ? '2' : '1',
    securityOptions,
  };
}

/** The loud opt-out that lets sandboxes run without a user namespace (the learner is then root on the machine). */
export const NO_USERNS_OPT_OUT = { name: 'VETHLAB_UNSAFE_ROOT_SANDBOXES', value: 'learners-are-root-on-this-machine' } as const;

export class ContainmentError extends Error {
  constructor(c: Containment, endpoint = dockerEndpoint()) {
    super(
      `The sandbox engine at ${endpoint} does not remap user namespaces (security options: ${c.securityOptions.join(', ') || 'none'}). ` +
        'A learner there would be root on this machine. Point VETHLAB_ENGINE at an engine started with --userns-remap ' +
        `(npm run setup starts one), or, for a machine of your own only, set ${NO_USERNS_OPT_OUT.name}=${NO_USERNS_OPT_OUT.value}.`,
    );
    this.name = 'ContainmentError';
  }
}
