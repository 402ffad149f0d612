/**
 * The connection to the Docker engine that runs sandboxes, with errors a
 * person can act on instead of a socket stack trace.
 */
import Docker from 'dockerode';

export function dockerEndpoint(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

export function connectDocker(): Docker {
  // dockerode (docker-modem) honours DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
  return new Docker();
}

export class EngineUnreachableError extends Error {
  constructor(cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `Docker engine not reachable at ${dockerEndpoint()} (${why}). ` +
        'Run `npm start` (it installs and starts one on Debian/Ubuntu as root), ' +
        'or start Docker yourself (`sudo systemctl start docker` or `sudo dockerd &`) and try again.',
    );
    this.name = 'EngineUnreachableError';
  }
}

/** Resolves when the engine answers; rejects with EngineUnreachableError otherwise. */
export async function pingEngine(docker: Docker): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new EngineUnreachableError(err);
  }
}
