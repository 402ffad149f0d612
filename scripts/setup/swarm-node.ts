/**
 * A Swarm node's sandbox engine: vethlab's user-namespaced dockerd (engine.ts)
 * plus the settings a Swarm service cannot carry (Docker 20.10 services have
 * no seccomp option, no cgroupns mode and no `--network none`), so they
 * become the engine's own defaults: the project's seccomp profile, private
 * cgroup namespaces, no bridge. The lab-server checks each of them on every
 * node before it takes sandboxes (lab-server/sandbox/swarm-node-check.ts).
 * Used by `npm run node:prepare` on each machine and by the tests' swarm.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SECCOMP_PROFILE } from '../../lab-server/sandbox/confinement';
import { sandboxEngineArgs, type EnginePaths } from './engine';

/** Where node:prepare writes the project's seccomp profile for the engine's default. */
export const NODE_SECCOMP_FILE = '/etc/vethlab/seccomp.json';

/**
 * The environment a node engine runs with. Swarm's agent otherwise tries to
 * pull every task's image from a registry first (there is none here: the
 * image is built or loaded on each node, and a pull attempt sends packets).
 */
export const NODE_ENGINE_ENV = { DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' } as const;

export function writeSeccompProfile(file = NODE_SECCOMP_FILE): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(SECCOMP_PROFILE, null, 2) + '\n');
  return file;
}

/**
 * The flags of a node's sandbox engine: those of the single-machine engine
 * (userns-remap, no bridge, no iptables, private cgroupns by default), a
 * cgroup parent of its own, and the project's seccomp profile as the default
 * of every container (service tasks included).
 */
export function nodeEngineArgs(paths: EnginePaths, opts: { seccompFile: string; cgroupParent?: string }): string[] {
  return [
    ...sandboxEngineArgs(paths).filter((a) => !a.startsWith('--cgroup-parent=')),
    `--cgroup-parent=${opts.cgroupParent ?? '/vethlab'}`,
    `--seccomp-profile=${opts.seccompFile}`,
  ];
}
