/**
 * A Docker Swarm of three sandbox engines on this one machine, for tests and
 * `npm run load -- --swarm`. Each node is a dockerd of its own (node engine
 * settings: scripts/setup/swarm-node.ts) in a network namespace the fixture
 * makes, joined to the others only through a bridge in another namespace it
 * makes (10.213.0.0/24; the machine's own network is never touched, so no
 * Swarm packet can leave the machine). Everything is named vlsw-*: a run
 * first removes whatever a failed run left, and dispose() removes the
 * namespaces (with docker_gwbridge and the veths inside), every process of
 * the node engines and their sandboxes, and their cgroups. The node engines'
 * data roots stay under /var/lib/vlsw as an image cache (the sandbox image is
 * loaded once per tag), their Swarm state is wiped on every start.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { connectDocker, SANDBOX_ENGINE } from '../../lab-server/sandbox/docker';
import { sandboxImageTag } from '../../lab-server/sandbox/image';
import { NODE_ENGINE_LABEL } from '../../lab-server/sandbox/swarm-driver';
import { waitForEngine } from '../../scripts/setup/engine';
import { NODE_ENGINE_ENV, nodeEngineArgs, writeSeccompProfile } from '../../scripts/setup/swarm-node';

const run = promisify(execFile);

const PREFIX = 'vlsw';
const STATE = `/var/lib/${PREFIX}`;
const RUN_DIR = `/run/${PREFIX}`;
const HUB = `${PREFIX}-hub`;
const SUBNET = '10.213.0';

export interface SwarmNode {
  index: number;
  name: string;
  /** Swarm's node id. */
  id: string;
  address: string;
  endpoint: string;
  docker: Docker;
  netns: string;
  cgroupParent: string;
}

export interface SwarmOptions {
  nodes?: number;
  /** How many nodes join the swarm at start (the others' engines run, ready to join()). */
  joined?: number;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Processes in a network namespace (ip netns pids), and in a cgroup subtree (every v1 hierarchy). */
function cgroupPids(cgroupParent: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    try {
      for (const p of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
    } catch {
      // a cgroup removed while we walk
    }
  };
  for (const h of readdirSync('/sys/fs/cgroup')) walk(path.join('/sys/fs/cgroup', h, cgroupParent));
  return [...pids];
}

function removeCgroups(cgroupParent: string): void {
  const rm = (dir: string) => {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      // busy: its processes are still dying; the next run's cleanup takes it
    }
  };
  for (const h of readdirSync('/sys/fs/cgroup')) rm(path.join('/sys/fs/cgroup', h, cgroupParent));
}

async function netnsPids(ns: string): Promise<number[]> {
  const out = await sh('ip', ['netns', 'pids', ns]).catch(() => '');
  return out.split('\n').filter(Boolean).map(Number);
}

/** Kills every process of a node: its engine (and containerd and shims, in its namespace) and its containers (in its cgroup). */
async function killNodeProcesses(ns: string, cgroupParent: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = [...new Set([...(await netnsPids(ns)), ...cgroupPids(cgroupParent)])];
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`processes of swarm node ${ns} would not die`);
}

/** Removes what a run of this fixture left: processes, namespaces, cgroups (never the image cache). */
export async function removeSwarmLeftovers(): Promise<void> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${PREFIX}-`));
  for (const ns of names) {
    const node = ns.slice(PREFIX.length + 1);
    await killNodeProcesses(ns, `/vethlab-${PREFIX}-${node}`);
  }
  for (const h of existsSync('/sys/fs/cgroup/pids') ? readdirSync('/sys/fs/cgroup/pids') : []) {
    if (h.startsWith(`vethlab-${PREFIX}-`)) {
      for (const pid of cgroupPids(`/${h}`)) process.kill(pid, 'SIGKILL');
      removeCgroups(`/${h}`);
    }
  }
  for (const ns of names) await sh('ip', ['netns', 'delete', ns]).catch(() => '');
  rmSync(RUN_DIR, { recursive: true, force: true });
}

/** The sandbox image in a file, saved once per tag from the main sandbox engine. */
async function imageArchive(tag: string): Promise<string> {
  const file = path.join(STATE, `image-${tag.replace(/[^a-zA-Z0-9]/g, '_')}.tar`);
  if (existsSync(file)) return file;
  for (const f of existsSync(STATE) ? readdirSync(STATE) : []) if (f.startsWith('image-')) rmSync(path.join(STATE, f));
  await run('docker', ['save', '-o', `${file}.part`, tag], { env: { ...process.env, DOCKER_HOST: `unix://${SANDBOX_ENGINE.socket}` } });
  await run('mv', [`${file}.part`, file]);
  return file;
}

/** Starts a node's dockerd with the node engine settings (less the flags named in `without`) and waits until it answers. */
async function startNodeEngine(node: SwarmNode, seccompFile: string, without: string[]): Promise<void> {
  const paths = { dataRoot: path.join(STATE, node.name), execRoot: path.join(RUN_DIR, node.name), socket: path.join(RUN_DIR, node.name, 'docker.sock'), pidfile: path.join(RUN_DIR, node.name, 'dockerd.pid') };
  // Runtime state of a killed engine (its containerd's pid file among it) would stall the next start.
  rmSync(paths.execRoot, { recursive: true, force: true });
  mkdirSync(paths.execRoot, { recursive: true });
  const args = nodeEngineArgs(paths, { seccompFile, cgroupParent: node.cgroupParent }).filter((a) => !without.some((w) => a.startsWith(w)));
  const log = openSync(path.join(STATE, `${node.name}.log`), "w");
  // Its own network namespace (the swarm ports on its address) and a mount
  // namespace of its own, so its mounts vanish with its processes.
  spawn('nsenter', [`--net=/run/netns/${node.netns}`, 'unshare', '--mount', '--propagation', 'slave', 'dockerd', ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...NODE_ENGINE_ENV },
  }).unref();
  if (!(await waitForEngine(node.docker, 60_000))) throw new Error(`swarm node ${node.name} did not start; see ${STATE}/${node.name}.log`);
}

export class TestSwarm {
  private constructor(
    readonly nodes: SwarmNode[],
    readonly image: string,
  ) {}

  get manager(): SwarmNode {
    return this.nodes[0]!;
  }

  /** The endpoint the lab-server is given (VETHLAB_SWARM). */
  get managerEndpoint(): string {
    return this.manager.endpoint;
  }

  static async start(opts: SwarmOptions = {}): Promise<TestSwarm> {
    const count = opts.nodes ?? 3;
    await removeSwarmLeftovers();
    mkdirSync(STATE, { recursive: true });
    mkdirSync(RUN_DIR, { recursive: true });
    const seccompFile = writeSeccompProfile(path.join(RUN_DIR, 'seccomp.json'));
    const image = sandboxImageTag();
    // The hub: a bridge in a namespace of its own, the nodes' only network.
    await sh('ip', ['netns', 'add', HUB]);
    await sh('ip', ['-n', HUB, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', HUB, 'link', 'set', 'br0', 'up']);
    const archive = imageArchive(image);
    archive.catch(() => {});
    const nodes = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const index = i + 1;
        const name = `n${index}`;
        const netns = `${PREFIX}-${name}`;
        const address = `${SUBNET}.${10 + index}`;
        await sh('ip', ['netns', 'add', netns]);
        await sh('ip', ['-n', HUB, 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
        await sh('ip', ['-n', HUB, 'link', 'set', name, 'master', 'br0', 'up']);
        await sh('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
        await sh('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
        await sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
        const dataRoot = path.join(STATE, name);
        // A fresh swarm each run: the old one's state (and its containers) go; the images stay.
        for (const sub of existsSync(dataRoot) ? readdirSync(dataRoot) : []) {
          for (const gone of ['swarm', 'containers', 'volumes', 'network']) rmSync(path.join(dataRoot, sub, gone), { recursive: true, force: true });
        }
        const cgroupParent = `/vethlab-${PREFIX}-${name}`;
        const node: SwarmNode = { index, name, id: '', address, endpoint: `unix://${RUN_DIR}/${name}/docker.sock`, docker: connectDocker(`unix://${RUN_DIR}/${name}/docker.sock`), netns, cgroupParent };
        await startNodeEngine(node, seccompFile, []);
        const docker = node.docker;
        for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true, v: true });
        await docker.pruneVolumes();
        if (!(await docker.getImage(image).inspect().then(() => true, () => false))) {
          await run('docker', ['load', '-i', await archive], { env: { ...process.env, DOCKER_HOST: node.endpoint }, maxBuffer: 16 * 1024 * 1024 });
        }
        // The cache holds the current sandbox image only: older tags go.
        for (const img of await docker.listImages()) {
          const stale = (img.RepoTags ?? []).filter((t) => t.startsWith(`${image.split(':')[0]}:`) && t !== image);
          for (const t of stale) await docker.getImage(t).remove().catch(() => {});
        }
        return node;
      }),
    );
    const manager = nodes[0]!;
    await manager.docker.swarmInit({ ListenAddr: `${manager.address}:2377`, AdvertiseAddr: manager.address, ForceNewCluster: false });
    const swarm = new TestSwarm(nodes, image);
    for (const n of nodes.slice(1, opts.joined ?? count)) await swarm.join(n);
    manager.id = ((await manager.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    await swarm.labelEngine(manager);
    return swarm;
  }

  /** A machine joins the swarm as a worker; the manager labels where its engine answers (as the README's set-up does). */
  async join(n: SwarmNode): Promise<void> {
    const tokens = ((await this.manager.docker.swarmInspect()) as { JoinTokens: { Worker: string } }).JoinTokens;
    await n.docker.swarmJoin({ ListenAddr: `${n.address}:2377`, AdvertiseAddr: n.address, RemoteAddrs: [`${this.manager.address}:2377`], JoinToken: tokens.Worker });
    n.id = ((await n.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    await this.labelEngine(n);
  }

  private async labelEngine(n: SwarmNode): Promise<void> {
    // The lab-server reaches each node's own engine at the endpoint its label names.
    await this.updateNode(n, (spec) => ({ ...spec, Labels: { ...spec.Labels, [NODE_ENGINE_LABEL]: n.endpoint } }));
  }

  async updateNode(n: SwarmNode, change: (spec: { Labels?: Record<string, string>; Availability: string; Role: string }) => object): Promise<void> {
    const node = this.manager.docker.getNode(n.id);
    const info = (await node.inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string>; Availability: string; Role: string } };
    await node.update({ version: info.Version.Index, ...change(info.Spec) });
  }

  /** `docker node update --availability <a>` */
  async setAvailability(n: SwarmNode, availability: 'active' | 'pause' | 'drain'): Promise<void> {
    await this.updateNode(n, (spec) => ({ ...spec, Availability: availability }));
  }

  /** The machine goes away: its engine, containerd and every container, at once (SIGKILL). */
  async killNode(n: SwarmNode): Promise<void> {
    await killNodeProcesses(n.netns, n.cgroupParent);
  }

  /**
   * The machine reboots with its engine configured differently: every
   * process of the node is killed, and its engine starts again without the
   * named flags (e.g. '--seccomp-profile'); it keeps its swarm membership.
   */
  async restartNode(n: SwarmNode, without: string[] = []): Promise<void> {
    await killNodeProcesses(n.netns, n.cgroupParent);
    await startNodeEngine(n, path.join(RUN_DIR, 'seccomp.json'), without);
  }

  /** The node a container runs on, by asking each engine. */
  async nodeOf(containerId: string): Promise<SwarmNode | undefined> {
    for (const n of this.nodes) {
      if (await n.docker.getContainer(containerId).inspect().then(() => true, () => false)) return n;
    }
    return undefined;
  }

  /** Removes everything, and fails if anything of it is still there (a namespace, docker_gwbridge, a process, a cgroup). */
  async dispose(): Promise<void> {
    await removeSwarmLeftovers();
    for (const n of this.nodes) removeCgroups(n.cgroupParent);
    const left: string[] = [];
    const namespaces = (await sh('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith(`${PREFIX}-`));
    left.push(...namespaces.map((l) => `network namespace ${l}`));
    // docker_gwbridge, the veths and the hub lived in those namespaces; none may be on the machine's own network.
    const links = (await sh('ip', ['-o', 'link'])).split('\n').filter((l) => /: (docker_gwbridge|vlsw|n\d@)/.test(l));
    left.push(...links.map((l) => `interface ${l.split(':')[1]!.trim()}`));
    for (const n of this.nodes) {
      left.push(...cgroupPids(n.cgroupParent).map((p) => `process ${p} of ${n.name}`));
      if (existsSync(`/sys/fs/cgroup/pids${n.cgroupParent}`)) left.push(`cgroup ${n.cgroupParent}`);
    }
    if (left.length) throw new Error(`the test swarm left behind: ${left.join(', ')}`);
  }
}
