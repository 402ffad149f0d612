/**
 * Setup step: vethlab's sandbox engine. A dockerd of the project's own, only
 * for sandboxes, with its own data root, exec root, socket and pid file, and
 * user-namespace remapping (root in a sandbox is uid 100000+ on the machine).
 * It runs beside any Docker engine the machine has and never touches it.
 * Installs docker.io from Debian when dockerd is missing; a second run finds
 * the engine answering and does nothing. VETHLAB_ENGINE points elsewhere.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import type Docker from 'dockerode';
import { connectDocker, dockerEndpoint, engineContainment, EngineUnreachableError, pingEngine, SANDBOX_ENGINE } from '../../lab-server/sandbox/docker';
import { aptInstall, done, isDebianLike, isRoot, SetupError, step, which } from './run';

export async function waitForEngine(docker: Docker, timeoutMs: number): Promise<boolean> {
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

/** Where a dockerd of vethlab's keeps its state. */
export interface EnginePaths {
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidfile: string;
}

/**
 * The flags that make a sandbox engine (DESIGN.md, "Containment"):
 * userns-remap=default (Docker adds the dockremap user and its subordinate
 * range), no bridge and no iptables rules of its own (sandboxes have no
 * network from the engine), private cgroup namespaces by default.
 * `userns: false` only for the benchmark's before/after figures.
 */
export function sandboxEngineArgs(paths: EnginePaths = SANDBOX_ENGINE, opts: { userns: boolean } = { userns: true }): string[] {
  return [
    `--data-root=${paths.dataRoot}`,
    `--exec-root=${paths.execRoot}`,
    `--host=unix://${paths.socket}`,
    `--pidfile=${paths.pidfile}`,
    ...(opts.userns ? ['--userns-remap=default'] : []),
    '--bridge=none',
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--default-cgroupns-mode=private',
    '--cgroup-parent=/vethlab',
    '--log-level=warn',
  ];
}

/** Starts a dockerd in the background and waits until it answers. */
export async function startEngine(paths: EnginePaths, args: string[], logFile: string, env: Record<string, string> = {}): Promise<Docker> {
  const docker = connectDocker(`unix://${paths.socket}`);
  mkdirSync(paths.execRoot, { recursive: true });
  const log = openSync(logFile, 'a');
  spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...env } }).unref();
  if (!(await waitForEngine(docker, 60_000))) {
    throw new SetupError(`dockerd was started but does not answer at unix://${paths.socket}; see ${logFile}.`);
  }
  return docker;
}

export async function ensureEngine(): Promise<Docker> {
  const docker = connectDocker();
  if (await waitForEngine(docker, 500)) return report(docker);
  if (process.env.VETHLAB_ENGINE) {
    throw new SetupError(`The sandbox engine at ${dockerEndpoint()} (VETHLAB_ENGINE) does not answer. Start it, or unset VETHLAB_ENGINE to let setup run vethlab's own.`);
  }
  if (!isRoot() || !isDebianLike()) {
    throw new SetupError(
      `${new EngineUnreachableError('no answer').message}\n    (Starting it needs root on Debian or Ubuntu; here: ${isRoot() ? 'root' : 'not root'}, ${isDebianLike() ? 'Debian-like' : 'not Debian-like'}.)`,
    );
  }
  if (!which('dockerd')) await aptInstall(['docker.io'], 'the sandbox engine');
  // Multi-host labs move a link's ends into sandboxes with the host's `ip`; remapping adds a user.
  await aptInstall(['iproute2', 'passwd'], 'the sandbox engine');
  step(`starting vethlab's sandbox engine (user-namespaced dockerd at ${SANDBOX_ENGINE.socket}, log: ${SANDBOX_ENGINE.log})`);
  return report(await startEngine(SANDBOX_ENGINE, sandboxEngineArgs(), SANDBOX_ENGINE.log));
}

async function report(docker: Docker): Promise<Docker> {
  const v = await docker.version();
  const c = await engineContainment(docker);
  done(`sandbox engine ${v.Version} (API ${v.ApiVersion}) at ${dockerEndpoint()}: ${c.userns ? 'user-namespaced' : 'NOT user-namespaced'}, cgroup v${c.cgroupVersion}`);
  return docker;
}
