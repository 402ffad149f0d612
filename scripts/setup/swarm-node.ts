/**
 * A Swarm node's sandbox engine: vethlab's user-namespaced dockerd (engine.ts)
 * plus the settings a Swarm service cannot carry (Docker 20.10 services have
 * no seccomp option, no cgroupns mode and no `--network none`), so they
 * become the engine's own defaults: the project's seccomp profile, private
 * cgroup namespaces, no bridge. The lab-server checks each of them on every
 * node before it takes sandboxes (lab-server/sandbox/swarm-node-check.ts).
 * Used by `npm run node:prepare` on each machine and by the tests' swarm.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { SECCOMP_PROFILE } from '../../lab-server/sandbox/confinement';
import { connectDocker, SANDBOX_ENGINE } from '../../lab-server/sandbox/docker';
import { sandboxImageTag } from '../../lab-server/sandbox/image';
import { NODE_ENGINE_LABEL, NODE_ENGINE_PORT } from '../../lab-server/sandbox/swarm-driver';
import { checkNode } from '../../lab-server/sandbox/swarm-node-check';
import { sandboxEngineArgs, startEngine, waitForEngine, type EnginePaths } from './engine';
import { ensureImages } from './images';
import { aptInstall, done, isDebianLike, isRoot, SetupError, step, which } from './run';

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

/**
 * The node engine's API for the lab-server on another machine: TCP with
 * mutual TLS when VETHLAB_NODE_TLS names a folder with ca.pem, cert.pem and
 * key.pem (the lab-server's client certificate is signed by the same CA and
 * given to it with DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=...). Never plain TCP.
 */
function tlsArgs(): string[] {
  const dir = process.env.VETHLAB_NODE_TLS;
  if (!dir) return [];
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) {
    if (!existsSync(path.join(dir, f))) throw new SetupError(`VETHLAB_NODE_TLS=${dir} lacks ${f} (README, "More than one machine": certificates).`);
  }
  return [`--host=tcp://0.0.0.0:${NODE_ENGINE_PORT}`, '--tlsverify', `--tlscacert=${dir}/ca.pem`, `--tlscert=${dir}/cert.pem`, `--tlskey=${dir}/key.pem`];
}

/** The dockerd command line node:prepare runs. */
export function nodeEngineCommand(): string[] {
  return ['dockerd', ...nodeEngineArgs(SANDBOX_ENGINE, { seccompFile: NODE_SECCOMP_FILE }), ...tlsArgs()];
}

/**
 * `npm run node:prepare` on each machine of a room: vethlab's sandbox engine
 * with the node settings (restarted with them if it runs without), and the
 * sandbox image built there; then checked as the lab-server will check it.
 * `--print` only prints the engine's command line.
 */
export async function prepareNode(opts: { print?: boolean } = {}): Promise<Docker> {
  if (opts.print) {
    console.log([...Object.entries(NODE_ENGINE_ENV).map(([k, v]) => `${k}=${v}`), ...nodeEngineCommand()].join(' '));
    return connectDocker();
  }
  if (!isRoot() || !isDebianLike()) throw new SetupError('node:prepare needs root on Debian or Ubuntu.');
  if (!which('dockerd')) await aptInstall(['docker.io'], 'the node engine');
  await aptInstall(['iproute2', 'passwd'], 'the node engine');
  const seccompFile = writeSeccompProfile();
  done(`the project's seccomp profile at ${seccompFile}`);
  let docker = connectDocker(`unix://${SANDBOX_ENGINE.socket}`);
  const running = await waitForEngine(docker, 500);
  const info = running ? ((await docker.info()) as { SecurityOptions?: string[] }) : undefined;
  const hasProfile = info?.SecurityOptions?.some((o) => o.includes(`profile=${seccompFile}`)) ?? false;
  if (running && !hasProfile) {
    step(`vethlab's engine runs without the node settings: stopping it (its sandboxes stop too) to start it with them`);
    const pid = Number(readFileSync(SANDBOX_ENGINE.pidfile, 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 120 && (await docker.ping().then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 500));
  }
  if (!running || !hasProfile) {
    step(`starting the node engine (${SANDBOX_ENGINE.socket}${process.env.VETHLAB_NODE_TLS ? `, tcp://0.0.0.0:${NODE_ENGINE_PORT} with TLS` : ''}; log ${SANDBOX_ENGINE.log})`);
    const [, ...args] = nodeEngineCommand();
    docker = await startEngine(SANDBOX_ENGINE, args, SANDBOX_ENGINE.log, NODE_ENGINE_ENV);
  }
  const image = await ensureImages(docker);
  const check = await checkNode(docker, image, os.hostname());
  if (!check.ok) throw new SetupError(`this node would be refused:\n    ${check.problems.join('\n    ')}`);
  done(`node engine ready for sandboxes (user namespaces, seccomp profile, private cgroupns, no bridge, image ${image})`);
  return docker;
}

/** What the operator runs next, printed by node:prepare and swarm:init. */
export function joinInstructions(workerToken: string | undefined, managerAddr: string | undefined): string {
  const h = `DOCKER_HOST=unix://${SANDBOX_ENGINE.socket}`;
  return [
    workerToken && managerAddr ? `On each worker, after \`npm run node:prepare\`:\n    ${h} docker swarm join --token ${workerToken} ${managerAddr}:2377` : '',
    `On the manager, for each node (docker node ls), where the lab-server reaches its engine:`,
    `    ${h} docker node update --label-add ${NODE_ENGINE_LABEL}=tcp://<node address>:${NODE_ENGINE_PORT} <node id>`,
    `Then start the lab-server: VETHLAB_SWARM=unix://${SANDBOX_ENGINE.socket} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=<client certificates> VETHLAB_HOST=0.0.0.0 npm start`,
  ]
    .filter(Boolean)
    .join('\n');
}

/** `npm run swarm:init -- <address>` on the manager: node:prepare, then a swarm advertised on that address. */
export async function initManager(address: string | undefined): Promise<void> {
  if (!address) throw new SetupError('swarm:init needs the address the workers reach this machine at: npm run swarm:init -- 10.0.0.5');
  const docker = await prepareNode();
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } };
  if (info.Swarm?.LocalNodeState !== 'active') {
    await docker.swarmInit({ ListenAddr: `${address}:2377`, AdvertiseAddr: address });
    done(`swarm created, advertised at ${address}:2377`);
  } else done('this engine is in a swarm already');
  const tokens = ((await docker.swarmInspect()) as { JoinTokens?: { Worker?: string } }).JoinTokens;
  console.log('\n' + joinInstructions(tokens?.Worker, address));
}
