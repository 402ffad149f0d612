/**
 * SwarmDriver runs sandboxes across the machines of a Docker Swarm: Swarm
 * places each sandbox (a service of one task, no restart, its memory
 * reserved, so a sandbox that fits nowhere waits as a pending task), and
 * everything else happens on the engine of the node that runs it, reached at
 * the endpoint its node label `vethlab-engine` names (default
 * tcp://<node address>:2376 with TLS): the cgroup hand-over and the link
 * through helper containers there (node-helpers.ts), the checker, the
 * terminal and every exec through SandboxEngine on that engine.
 *
 * Nodes: a node takes sandboxes only after its engine passed the checks of
 * swarm-node-check.ts; the driver then labels it `vethlab-ready=<image>`, and
 * every service is constrained to nodes so labelled. A node joining the swarm
 * is checked and labelled without a restart. A node whose engine stops
 * answering is lost: each of its sandboxes is reported dead (the session's
 * "sandbox gone" path) and no new one goes there until it answers and passes
 * the checks again. Multi-host labs stay on one node (`besides`).
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { PriorityLimiter } from '../limiter';
import { connectDocker } from './docker';
import { SANDBOX_CAPS } from './confinement';
import { delegateCgroupsOnNode, linkOnNode } from './node-helpers';
import { onSandboxEvents, type ExecResult, type Sandbox, type SandboxDriver, type SandboxEvent, type SandboxSpec, type Shell } from './sandbox-driver';
import { checkerName, LABEL, SANDBOX_DISK, SandboxEngine, sandboxLabels, sandboxName, SandboxStartError, SYSFS_ANCHOR, type SandboxEngineOptions } from './sandbox-engine';
import { checkNode, REMAPPED_ROOT } from './swarm-node-check';

/** Node label: the endpoint of the node's own engine API (unix:///..., tcp://host:2376). */
export const NODE_ENGINE_LABEL = 'vethlab-engine';
/** Node label the driver sets once the node passed its checks: the sandbox image's tag it has. */
export const NODE_READY_LABEL = 'vethlab-ready';
/** The port of a node's engine API when its node has no vethlab-engine label (TLS: DOCKER_CERT_PATH). */
export const NODE_ENGINE_PORT = 2376;

export interface SwarmNodeStatus {
  id: string;
  hostname: string;
  endpoint: string;
  state: 'checking' | 'ready' | 'refused' | 'lost';
  problems: string[];
}

interface NodeState extends SwarmNodeStatus {
  docker: Docker;
  engine: SandboxEngine;
  events: (NodeJS.ReadableStream & { destroy(): void }) | null;
  checkedAt: number;
}

interface Placed {
  node: string;
  name: string;
  labels: Record<string, string>;
}

export interface SwarmDriverOptions extends Omit<SandboxEngineOptions, 'delegate' | 'link' | 'directTerminals'> {
  /** How often the node list is read (joins, losses, refusals). */
  nodePollMs?: number;
  /** A refused node is checked again after this long. */
  recheckMs?: number;
}

const TASK_FAILED = new Set(['failed', 'rejected', 'shutdown', 'complete', 'orphaned', 'remove']);

export class SwarmDriver implements SandboxDriver {
  private readonly nodes = new Map<string, NodeState>();
  private readonly placed = new Map<string, Placed>();
  private readonly subscribers = new Set<PassThrough>();
  private readonly boots: PriorityLimiter;
  private poller: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private disposed = false;

  constructor(
    /** The manager's engine API. */
    readonly docker: Docker,
    private readonly opts: SwarmDriverOptions,
  ) {
    this.boots = new PriorityLimiter(opts.concurrentBoots ?? 8);
  }

  /** Reads the nodes once (checking each) and then every nodePollMs. Fails when no node can take sandboxes. */
  async start(): Promise<SwarmNodeStatus[]> {
    await this.refresh();
    const status = this.nodeStatus();
    if (!status.some((n) => n.state === 'ready')) {
      throw new Error(`No node of the swarm can take sandboxes:\n  ${status.flatMap((n) => n.problems.length ? n.problems : [`node ${n.id} is ${n.state}`]).join('\n  ') || 'the swarm has no nodes'}`);
    }
    this.poller = setInterval(() => void this.refresh(), this.opts.nodePollMs ?? 5000);
    this.poller.unref();
    return status;
  }

  readyNodes(): string[] {
    return [...this.nodes.values()].filter((n) => n.state === 'ready').map((n) => n.id);
  }

  nodeStatus(): SwarmNodeStatus[] {
    return [...this.nodes.values()].map(({ id, hostname, endpoint, state, problems }) => ({ id, hostname, endpoint, state, problems }));
  }

  get ownLabel(): string {
    return `${LABEL.instance}=${this.opts.instance}`;
  }

  private get imageMark(): string {
    // A label value a constraint can compare: the image's tag without its repository.
    return this.opts.image.split(':').pop()!;
  }

  /** Reads the node list: new nodes are checked, lost ones reported, returning ones checked again. */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.readNodes()
        .catch((err: unknown) => this.opts.log.warn({ err }, 'could not read the swarm nodes'))
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  private async readNodes(): Promise<void> {
    const list = (await this.docker.listNodes()) as {
      ID: string;
      Description?: { Hostname?: string };
      Spec?: { Labels?: Record<string, string>; Availability?: string };
      Status?: { State?: string; Addr?: string };
    }[];
    await Promise.all(
      list.map(async (n) => {
        if (this.disposed) return;
        const endpoint = n.Spec?.Labels?.[NODE_ENGINE_LABEL] ?? `tcp://${n.Status?.Addr ?? 'unknown'}:${NODE_ENGINE_PORT}`;
        let node = this.nodes.get(n.ID);
        if (!node || node.endpoint !== endpoint) {
          node?.events?.destroy();
          node = this.newNode(n.ID, n.Description?.Hostname ?? '', endpoint);
          this.nodes.set(n.ID, node);
        }
        const up = n.Status?.State === 'ready' && (await node.docker.ping().then(() => true, () => false));
        if (!up) {
          if (node.state === 'ready' || node.state === 'checking') this.lose(node, `its engine does not answer (swarm says ${n.Status?.State ?? 'unknown'})`);
          return;
        }
        const due = node.state === 'checking' || node.state === 'lost' || (node.state === 'refused' && Date.now() - node.checkedAt > (this.opts.recheckMs ?? 30_000));
        if (due) await this.check(node, n.Spec?.Labels?.[NODE_READY_LABEL]);
      }),
    );
  }

  private newNode(id: string, hostname: string, endpoint: string): NodeState {
    const docker = connectDocker(endpoint);
    const image = this.opts.image;
    const engine = new SandboxEngine(docker, {
      ...this.opts,
      // The lab-server is not on the node: terminals through the node's engine.
      directTerminals: false,
      delegate: (pid) => delegateCgroupsOnNode(docker, image, pid),
      link: (pids) => linkOnNode(docker, image, pids),
    });
    return { id, hostname, endpoint, state: 'checking', problems: [], docker, engine, events: null, checkedAt: 0 };
  }

  /** Checks a node's engine and labels it ready (or takes the label away). */
  private async check(node: NodeState, label: string | undefined): Promise<void> {
    const result = await checkNode(node.docker, this.opts.image, `${node.id} (${node.hostname})`);
    node.checkedAt = Date.now();
    node.problems = result.problems;
    if (!result.ok) {
      if (node.state !== 'refused') this.opts.log.error({ node: node.id, problems: result.problems }, `swarm node refused: ${result.problems.join('; ')}`);
      node.state = 'refused';
      if (label !== undefined) await this.setReadyLabel(node.id, undefined).catch(() => {});
      return;
    }
    if (label !== this.imageMark) await this.setReadyLabel(node.id, this.imageMark);
    // Disks of sandboxes that died with a machine are records without a container: gone now.
    await node.docker.pruneVolumes({ filters: { label: [this.ownLabel] } }).catch(() => {});
    this.watch(node);
    node.state = 'ready';
    this.opts.log.info({ node: node.id, hostname: node.hostname, endpoint: node.endpoint }, 'swarm node takes sandboxes');
  }

  private async setReadyLabel(nodeId: string, value: string | undefined): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const node = this.docker.getNode(nodeId);
      const info = (await node.inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string> } & Record<string, unknown> };
      const labels = { ...info.Spec.Labels };
      if (value === undefined) delete labels[NODE_READY_LABEL];
      else labels[NODE_READY_LABEL] = value;
      try {
        await node.update({ version: info.Version.Index, ...info.Spec, Labels: labels });
        return;
      } catch (err) {
        // Someone else updated the node meanwhile: read it again.
        if (attempt >= 3) throw err;
      }
    }
  }

  /** A node's engine went away: every sandbox there is gone, and nothing new goes there until it is back and checked. */
  private lose(node: NodeState, why: string): void {
    if (node.state === 'lost') return;
    node.state = 'lost';
    node.problems = [`node ${node.id} (${node.hostname}) lost: ${why}`];
    node.events?.destroy();
    node.events = null;
    this.opts.log.error({ node: node.id, hostname: node.hostname }, `swarm node lost: ${why}`);
    for (const [id, p] of this.placed) {
      if (p.node !== node.id) continue;
      node.engine.forget(id);
      this.publish({ id, Actor: { Attributes: p.labels } });
    }
  }

  /** Forwards the node engine's die/destroy events of our containers; a broken stream is a node to look at at once. */
  private watch(node: NodeState): void {
    if (node.events) return;
    void node.engine.events().then(
      (stream) => {
        node.events = stream;
        onSandboxEvents(stream, (event) => this.publish(event));
        const ended = () => {
          if (node.events !== stream) return;
          node.events = null;
          if (this.disposed) return;
          void node.docker.ping().then(
            () => this.watch(node),
            (err: Error) => this.lose(node, `its engine does not answer (${err.message})`),
          );
        };
        stream.on('end', ended);
        stream.on('error', ended);
        stream.on('close', ended);
      },
      (err: Error) => this.lose(node, `its event stream failed (${err.message})`),
    );
  }

  private publish(ev: SandboxEvent): void {
    if (ev.Actor?.Attributes?.[LABEL.instance] !== this.opts.instance) return;
    const line = JSON.stringify(ev) + '\n';
    for (const s of this.subscribers) s.write(line);
  }

  async events(): Promise<NodeJS.ReadableStream & { destroy(): void }> {
    const out = new PassThrough();
    this.subscribers.add(out);
    out.on('close', () => this.subscribers.delete(out));
    return out;
  }

  // --- placement -----------------------------------------------------------

  async create(spec: SandboxSpec): Promise<Sandbox> {
    return this.boots.run(!spec.pool, () => this.boot(spec));
  }

  private constraints(spec: SandboxSpec): string[] {
    const c = [`node.labels.${NODE_READY_LABEL}==${this.imageMark}`];
    // Swarm may not have noticed yet a node whose engine we lost.
    for (const n of this.nodes.values()) if (n.state !== 'ready') c.push(`node.id!=${n.id}`);
    const on = spec.besides?.node ?? spec.node;
    if (on) c.push(`node.id==${on}`);
    return c;
  }

  private async boot(spec: SandboxSpec): Promise<Sandbox> {
    const name = sandboxName(spec);
    const createdAt = new Date();
    const labels = sandboxLabels(spec, this.opts.instance, createdAt);
    const { limits } = this.opts;
    await this.docker.createService({
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: this.opts.image,
          Hostname: spec.host,
          Labels: labels,
          Env: ['LANG=C.UTF-8', ...(spec.terminal ? [`VETHLAB_TERMINAL=${spec.terminal}`] : [])],
          // As SandboxEngine's, but what a service cannot say (seccomp profile,
          // private cgroup namespace, no network) is the node engine's default, checked before the node takes sandboxes.
          CapabilityDrop: ['ALL'],
          CapabilityAdd: SANDBOX_CAPS.map((c) => `CAP_${c}`),
          ReadOnly: true,
          Init: true,
          Mounts: [
            { Type: 'bind', Source: '/sys', Target: SYSFS_ANCHOR },
            { Type: 'tmpfs', Target: '/run', TmpfsOptions: { SizeBytes: 64 * 1024 ** 2, Mode: 0o755 } },
            // The sandbox's disk: a size-limited tmpfs as today, mounted by the node's engine as a
            // volume, since a service's own tmpfs comes noexec on API 1.41 (a learner's script would not run).
            {
              Type: 'volume',
              Source: diskVolume(name),
              Target: SANDBOX_DISK,
              VolumeOptions: {
                Labels: labels,
                DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs', o: `size=${limits.diskBytes},mode=755,uid=${REMAPPED_ROOT},gid=${REMAPPED_ROOT}` } },
              },
            },
          ],
        },
        Resources: {
          Limits: { MemoryBytes: limits.memoryBytes, NanoCPUs: Math.round(limits.cpus * 1e9), Pids: limits.pids },
          Reservations: { MemoryBytes: limits.memoryBytes },
        },
        RestartPolicy: { Condition: 'none' },
        Placement: { Constraints: this.constraints(spec) },
        LogDriver: { Name: 'json-file', Options: { 'max-size': '1m', 'max-file': '1' } },
      },
      Mode: { Replicated: { Replicas: 1 } },
    } as unknown as Docker.CreateServiceOptions);
    let placed: { node: string; containerId: string } | undefined;
    try {
      placed = await this.waitForTask(name);
      const node = this.nodes.get(placed.node);
      if (!node || node.state !== 'ready') throw new Error(`Swarm placed it on node ${placed.node}, which is not ready for sandboxes`);
      this.placed.set(placed.containerId, { node: node.id, name, labels });
      await node.engine.finishBoot(node.docker.getContainer(placed.containerId), name, labels);
    } catch (err) {
      const tail = placed ? await this.nodes.get(placed.node)?.engine.logTail(placed.containerId) : '';
      await this.remove({ containerId: placed?.containerId ?? '', name }).catch(() => {});
      if (err instanceof SandboxStartError) throw err;
      throw new SandboxStartError(`Sandbox ${name} failed to start: ${(err as Error).message}`, tail ?? '');
    }
    this.opts.log.debug({ name, node: placed.node }, 'sandbox ready');
    return { containerId: placed.containerId, name, sessionId: spec.sessionId, host: spec.host, pool: spec.pool, createdAt, expiresAt: spec.expiresAt, running: true, node: placed.node };
  }

  /** Waits until the service's task runs; a task that fits nowhere stays pending (admission) until the time limit. */
  private async waitForTask(service: string): Promise<{ node: string; containerId: string }> {
    const until = Date.now() + (this.opts.readyTimeoutMs ?? 60_000);
    let last = '';
    while (Date.now() < until) {
      const tasks = (await this.docker.listTasks({ filters: { service: [service] } })) as {
        NodeID?: string;
        Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
      }[];
      const t = tasks[0];
      if (t) {
        last = `${t.Status.State}${t.Status.Err ? `: ${t.Status.Err}` : ''}`;
        if (t.Status.State === 'running' && t.NodeID && t.Status.ContainerStatus?.ContainerID) return { node: t.NodeID, containerId: t.Status.ContainerStatus.ContainerID };
        if (TASK_FAILED.has(t.Status.State)) throw new Error(`its task ${last}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no node took it in time (task ${last || 'not created'}; every ready node's memory may be reserved)`);
  }

  // --- one sandbox, on its node's engine --------------------------------------

  /** The node a container runs on: from what this driver placed or listed, else by asking each node. */
  private async nodeOf(containerId: string): Promise<NodeState | undefined> {
    const known = this.placed.get(containerId);
    if (known) return this.nodes.get(known.node);
    for (const n of this.nodes.values()) {
      if (n.state !== 'ready') continue;
      if (await n.docker.getContainer(containerId).inspect().then(() => true, () => false)) return n;
    }
    return undefined;
  }

  private async engineOf(containerId: string): Promise<SandboxEngine> {
    const node = await this.nodeOf(containerId);
    if (!node) throw new Error('the sandbox is not running (no node of the swarm has it)');
    if (node.state === 'lost') throw new Error(`the sandbox is gone: ${node.problems[0] ?? 'its node was lost'}`);
    return node.engine;
  }

  dockerFor(containerId: string): Docker {
    const known = this.placed.get(containerId);
    const node = known && this.nodes.get(known.node);
    if (!node) throw new Error(`container ${containerId} is not one this driver placed`);
    return node.docker;
  }

  async exec(containerId: string, cmd: string[], opts?: { timeoutMs?: number; stdin?: string; env?: string[] }): Promise<ExecResult> {
    return (await this.engineOf(containerId)).exec(containerId, cmd, opts);
  }

  async execInChecker(sandbox: Pick<Sandbox, 'containerId' | 'name'>, cmd: string[], opts?: { timeoutMs?: number }): Promise<ExecResult> {
    return (await this.engineOf(sandbox.containerId)).execInChecker(sandbox, cmd, opts);
  }

  async ensureChecker(sandbox: Sandbox): Promise<void> {
    return (await this.engineOf(sandbox.containerId)).ensureChecker(sandbox);
  }

  async openShell(containerId: string, terminalId: string, size: { cols: number; rows: number }, env?: string[]): Promise<Shell> {
    return (await this.engineOf(containerId)).openShell(containerId, terminalId, size, env);
  }

  async sandboxPid(sandbox: Pick<Sandbox, 'containerId'>): Promise<number> {
    return (await this.engineOf(sandbox.containerId)).sandboxPid(sandbox);
  }

  async freeze(sandbox: Pick<Sandbox, 'containerId'>): Promise<void> {
    return (await this.engineOf(sandbox.containerId)).freeze(sandbox);
  }

  async thaw(sandbox: Pick<Sandbox, 'containerId'>): Promise<void> {
    return (await this.engineOf(sandbox.containerId)).thaw(sandbox);
  }

  async isRunning(containerId: string): Promise<boolean> {
    const node = await this.nodeOf(containerId);
    if (!node || node.state === 'lost') return false;
    return node.engine.isRunning(containerId);
  }

  async linkSandboxes(sandboxes: Sandbox[]): Promise<void> {
    if (sandboxes.length < 2) return;
    const nodes = new Set(sandboxes.map((s) => this.placed.get(s.containerId)?.node));
    if (nodes.size !== 1) throw new Error('the hosts of a lab must share a node to be linked');
    return (await this.engineOf(sandboxes[0]!.containerId)).linkSandboxes(sandboxes);
  }

  async remove(sandbox: Pick<Sandbox, 'containerId' | 'name'>): Promise<void> {
    const node = sandbox.containerId ? await this.nodeOf(sandbox.containerId).catch(() => undefined) : undefined;
    await this.docker
      .getService(sandbox.name)
      .remove()
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
    this.placed.delete(sandbox.containerId);
    if (!node || node.state === 'lost') return;
    // Not waiting for the node's agent: the container, its checker and its disk go now.
    await node.engine.remove(sandbox);
    for (let attempt = 0; attempt < 20; attempt++) {
      const gone = await node.docker
        .getVolume(diskVolume(sandbox.name))
        .remove()
        .then(
          () => true,
          (err: { statusCode?: number }) => err.statusCode === 404,
        );
      if (gone) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    this.opts.log.warn({ sandbox: sandbox.name, node: node.id }, 'the sandbox disk volume is still in use; the next sweep removes it');
  }

  async removeContainer(idOrName: string): Promise<void> {
    const node = await this.nodeOf(idOrName);
    if (node && node.state !== 'lost') await node.engine.removeContainer(idOrName);
  }

  /** This server's sandboxes: its services, each with the container of its running task. */
  async list(): Promise<Sandbox[]> {
    const services = (await this.docker.listServices({ filters: { label: [this.ownLabel] } })) as unknown as { ID: string; Spec: { Name: string; Labels?: Record<string, string> } }[];
    const tasks = (await this.docker.listTasks({ filters: { 'desired-state': ['running'] } })) as { ServiceID: string; NodeID?: string; Status: { State: string; ContainerStatus?: { ContainerID?: string } } }[];
    return services.map((svc) => {
      const l = svc.Spec.Labels ?? {};
      const task = tasks.find((t) => t.ServiceID === svc.ID);
      const containerId = task?.Status.ContainerStatus?.ContainerID ?? '';
      const node = task?.NodeID ? this.nodes.get(task.NodeID) : undefined;
      if (containerId && node) this.placed.set(containerId, { node: node.id, name: svc.Spec.Name, labels: l });
      return {
        containerId,
        name: svc.Spec.Name,
        sessionId: l[LABEL.session] ?? '',
        host: l[LABEL.host] ?? '',
        pool: l[LABEL.pool] === '1',
        createdAt: new Date(l[LABEL.created] ?? 0),
        expiresAt: new Date(l[LABEL.expires] ?? 0),
        running: task?.Status.State === 'running' && node?.state === 'ready',
        node: task?.NodeID,
      };
    });
  }

  async listCheckers(): Promise<[string, string][]> {
    const all: [string, string][] = [];
    for (const n of this.nodes.values()) {
      if (n.state !== 'ready') continue;
      const checkers = await n.engine.listCheckers().catch(() => []);
      for (const c of checkers) this.placed.set(c[0], { node: n.id, name: checkerName(c[1]), labels: {} });
      all.push(...checkers);
    }
    return all;
  }

  async removeOrphanCheckers(): Promise<number> {
    let n = 0;
    for (const node of this.nodes.values()) if (node.state === 'ready') n += await node.engine.removeOrphanCheckers().catch(() => 0);
    return n;
  }

  /** Stops watching the nodes. Sandboxes stay (the session manager removes them first). */
  dispose(): void {
    this.disposed = true;
    if (this.poller) clearInterval(this.poller);
    for (const n of this.nodes.values()) n.events?.destroy();
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
  }
}

function diskVolume(sandbox: string): string {
  return `${sandbox}-disk`;
}
