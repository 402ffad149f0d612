/**
 * Setup step: a Docker engine that answers. Uses the one DOCKER_HOST or the
 * default socket points at; on Debian/Ubuntu as root with none, installs
 * docker.io from the distribution and starts dockerd.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import type Docker from 'dockerode';
import { connectDocker, dockerEndpoint, EngineUnreachableError, pingEngine } from '../../lab-server/sandbox/docker';
import { aptInstall, done, isDebianLike, isRoot, run, SetupError, step, which } from './run';

const DOCKERD_LOG = '/var/log/vethlab-dockerd.log';

async function waitForEngine(docker: Docker, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      await pingEngine(docker);
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return false;
}

export async function ensureEngine(): Promise<Docker> {
  const docker = connectDocker();
  if (await waitForEngine(docker, 500)) return report(docker);
  if (process.env.DOCKER_HOST) {
    throw new SetupError(`Docker engine not reachable at ${dockerEndpoint()} (from DOCKER_HOST). Start that engine, or unset DOCKER_HOST to use a local one.`);
  }
  if (!isRoot() || !isDebianLike()) {
    throw new SetupError(
      `${new EngineUnreachableError('no answer').message}\n    (Automatic install needs root on Debian or Ubuntu; here: ${isRoot() ? 'root' : 'not root'}, ${isDebianLike() ? 'Debian-like' : 'not Debian-like'}.)`,
    );
  }
  if (!which('dockerd')) await aptInstall(['docker.io'], 'the Docker engine');
  if (existsSync('/run/systemd/system')) {
    step('starting docker (systemctl start docker)');
    await run('systemctl', ['start', 'docker'], { onLine: () => {} });
  } else {
    step(`starting dockerd in the background (log: ${DOCKERD_LOG})`);
    const log = openSync(DOCKERD_LOG, 'a');
    spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] }).unref();
  }
  if (!(await waitForEngine(docker, 60_000))) {
    throw new SetupError(`dockerd was started but does not answer at ${dockerEndpoint()}; see ${DOCKERD_LOG}.`);
  }
  return report(docker);
}

async function report(docker: Docker): Promise<Docker> {
  const v = await docker.version();
  done(`Docker engine ${v.Version} (API ${v.ApiVersion}) at ${dockerEndpoint()}`);
  return docker;
}
