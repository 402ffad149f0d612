/**
 * SandboxEngine owns the sandbox containers on vethlab's sandbox engine:
 * create one (user-namespaced, no --privileged, the project's capabilities
 * and seccomp profile, a private cgroup namespace with its own cgroups
 * delegated, no network, a read-only image and a memory-backed disk of fixed
 * size), wait until its inner engine answers, run commands and shells in it,
 * list and remove them; and its checker, the container that reads the
 * sandbox's state from outside the learner's reach. It knows nothing of
 * learners or labs beyond the labels it writes.
 */
import os from 'node:os';
import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { PriorityLimiter } from '../limiter';
import type { Logger } from '../log';
import { delegateCgroups } from './cgroup-delegation';
import { connectDtach, DtachStream, UnsafeSocketPathError } from './dtach-shell';
import { CHECKER_SECCOMP_PROFILE, SANDBOX_CAPS, seccompOption, UNSAFE_ROOT_CHECKER_CAPS } from './confinement';
import type { ExecResult, Sandbox, SandboxDriver, SandboxSpec, Shell } from './sandbox-driver';

export type { ExecResult, Sandbox, SandboxSpec, Shell } from './sandbox-driver';

export const LABEL = {
  /** Which lab-server owns the sandbox: servers (and test runs) never touch each other's. */
  instance: 'vethlab.instance',
  /** "sandbox", or "checker" for the check container beside it. */
  role: 'vethlab.role',
  session: 'vethlab.session',
  host: 'vethlab.host',
  lab: 'vethlab.lab',
  learner: 'vethlab.learner',
  pool: 'vethlab.pool',
  /** On a checker: the id of the sandbox it reads. */
  sandbox: 'vethlab.sandbox',
  created: 'vethlab.created',
  expires: 'vethlab.expires',
} as const;

export interface SandboxLimits {
  memoryBytes: number;
  pids: number;
  cpus: number;
  /** Everything a learner (or the inner engine) can write, in total: the size of the sandbox's disk. */
  diskBytes: number;
}

/**
 * The container's stdout is the one file on the host a learner can write to
 * (echo > /proc/1/fd/1, also a checker's through the shared PID namespace): keep it small.
 */
const SMALL_LOG = { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } };

/** Where the sandbox's disk is mounted; the entrypoint lays the writable directories over it. */
export const SANDBOX_DISK = '/vethlab/disk';

/**
 * A recursive bind of the machine's sysfs. In a user namespace the kernel
 * lets `ip netns exec` mount a fresh sysfs only where a fully visible one is
 * mounted already (fs/namespace.c, mount_too_revealing), and Docker's own
 * /sys is read-only. Its files stay the machine's root's: readable, never
 * writable, to the sandbox's root.
 */
export const SYSFS_ANCHOR = '/vethlab/sysfs-anchor';

/** link0 between two sandboxes on this machine, made with its own `ip`. */
async function linkHere(pids: [number, number]): Promise<void> {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve, reject) =>
    execFile('ip', ['link', 'add', 'link0', 'netns', String(pids[0]), 'type', 'veth', 'peer', 'name', 'link0', 'netns', String(pids[1])], (err, _o, stderr) =>
      err ? reject(new Error(`could not create the private link: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}

/** The environment of a terminal's login shell (the entrypoint starts the first one with the same). */
const SHELL_ENV = ['TERM=xterm-256color', 'LANG=C.UTF-8', 'COLORTERM=truecolor'];

/** The terminal of a single-host lab (multi-host labs name each terminal after its host). */
export const MAIN_TERMINAL_ID = 'main';

/** The check container beside a sandbox. */
export function checkerName(sandboxName: string): string {
  return `${sandboxName}-checker`;
}

export class SandboxStartError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(message);
    this.name = 'SandboxStartError';
  }
}

export interface SandboxEngineOptions {
  image: string;
  instance: string;
  limits: SandboxLimits;
  runtime?: string | undefined;
  readyTimeoutMs?: number;
  /**
   * The engine remaps user namespaces (the default, and what the server
   * insists on unless the operator's loud opt-out is set). Without them the
   * checker needs capabilities of its own on the machine to enter a sandbox.
   */
  userns?: boolean;
  /** Terminals through dtach's socket (default: when the engine is on this machine and this is root) or through `docker exec`. */
  directTerminals?: boolean;
  /** Sandboxes booting at once (default: two per core, as part of a boot waits); a learner’s go ahead of the pool’s. */
  concurrentBoots?: number;
  /**
   * Hands a started sandbox its cgroups (default: from this process, on this
   * machine; on a Swarm node, through a helper container of that node's engine).
   */
  delegate?: (pid: number) => Promise<unknown>;
  /** Creates link0 between two sandboxes, by their machine PIDs (default: `ip` on this machine). */
  link?: (pids: [number, number]) => Promise<void>;
  log: Logger;
}

/** The labels a sandbox carries: whose it is, for which lab, until when. */
export function sandboxLabels(spec: SandboxSpec, instance: string, createdAt: Date): Record<string, string> {
  return {
    [LABEL.instance]: instance,
    [LABEL.role]: 'sandbox',
    [LABEL.session]: spec.sessionId,
    [LABEL.host]: spec.host,
    [LABEL.lab]: spec.lab,
    [LABEL.learner]: spec.learner,
    [LABEL.pool]: spec.pool ? '1' : '0',
    [LABEL.created]: createdAt.toISOString(),
    [LABEL.expires]: spec.expiresAt.toISOString(),
  };
}

export function sandboxName(spec: Pick<SandboxSpec, 'sessionId' | 'host'>): string {
  return `vethlab-${spec.sessionId}-${spec.host}`;
}

/** The driver of a single engine: every sandbox on the engine this server talks to. */
export class SandboxEngine implements SandboxDriver {
  /**
   * A boot is mostly CPU (an inner dockerd and containerd starting). Booted
   * all at once, a room's sandboxes share the CPU and all become ready near
   * the end; a few at a time, in arrival order, the first learners start
   * at once and the average wait halves.
   */
  private readonly boots: PriorityLimiter;
  private readonly pids = new Map<string, number>();

  constructor(
    readonly docker: Docker,
    private readonly opts: SandboxEngineOptions,
  ) {
    this.boots = new PriorityLimiter(opts.concurrentBoots ?? 2 * os.cpus().length);
  }

  /** Creates and starts a sandbox and resolves once it is ready for a learner. */
  async create(spec: SandboxSpec): Promise<Sandbox> {
    return this.boots.run(!spec.pool, () => this.boot(spec));
  }

  private async boot(spec: SandboxSpec): Promise<Sandbox> {
    const name = sandboxName(spec);
    const createdAt = new Date();
    const labels = sandboxLabels(spec, this.opts.instance, createdAt);
    const { limits } = this.opts;
    let container: Docker.Container | undefined;
    try {
      const options: Docker.ContainerCreateOptions = {
        name,
        Image: this.opts.image,
        Hostname: spec.host,
        Labels: labels,
        Env: ['LANG=C.UTF-8', ...(spec.terminal ? [`VETHLAB_TERMINAL=${spec.terminal}`] : [])],
        HostConfig: {
          // Never a route off the machine: the sandbox's "internet" lives in namespaces inside it.
          NetworkMode: 'none',
          CgroupnsMode: 'private',
          // The engine remaps user namespaces: root here is an unprivileged uid on the
          // machine, and these capabilities act on the sandbox's own namespaces only.
          CapDrop: ['ALL'],
          CapAdd: [...SANDBOX_CAPS],
          SecurityOpt: [seccompOption(), 'apparmor=unconfined'],
          // Only a user namespace needs the anchor (and only there is it read-only to root). -v binds are recursive.
          ...(this.userns ? { Binds: [`/sys:${SYSFS_ANCHOR}:rw`] } : {}),
          // Disk quota without kernel quota support (this kernel has none): the
          // image is read-only and every write lands on a size-limited tmpfs,
          // charged to the sandbox's memory. Nothing a learner writes reaches
          // the machine's disk, and the tmpfs size is the quota.
          ReadonlyRootfs: true,
          Tmpfs: {
            '/run': 'size=64m,mode=755',
            [SANDBOX_DISK]: `size=${limits.diskBytes},mode=755,exec`,
          },
          LogConfig: SMALL_LOG,
          Init: true,
          Memory: limits.memoryBytes,
          MemorySwap: limits.memoryBytes,
          PidsLimit: limits.pids,
          NanoCpus: Math.round(limits.cpus * 1e9),
          ...(this.opts.runtime ? { Runtime: this.opts.runtime } : {}),
        } as Docker.HostConfig, // CgroupnsMode (API 1.41) is missing from @types/dockerode
      };
      const created = await this.docker.createContainer(options);
      container = created;
      await created.start();
      await this.finishBoot(created, name, labels);
    } catch (err) {
      const tail = container ? await this.logTail(container.id) : '';
      await this.removeByName(name, container?.id);
      if (err instanceof SandboxStartError) throw err;
      throw new SandboxStartError(`Sandbox ${name} failed to start: ${(err as Error).message}`, tail);
    }
    this.opts.log.debug({ name }, 'sandbox ready');
    return {
      containerId: container!.id,
      name,
      sessionId: spec.sessionId,
      host: spec.host,
      pool: spec.pool,
      createdAt,
      expiresAt: spec.expiresAt,
      running: true,
    };
  }

  /**
   * A started sandbox container becomes ready: its cgroups handed over (the
   * entrypoint waits for them before its inner engine starts), its checker
   * started, its upstream pinned. Also the second half of a Swarm boot, on
   * the node's engine.
   */
  async finishBoot(created: Docker.Container, name: string, labels: Record<string, string>): Promise<void> {
    const ready = this.waitReady(created);
    // Awaited below; a failure before that (the cgroup hand-over) must not leave it unhandled.
    ready.catch(() => {});
    const pid = (await created.inspect()).State.Pid;
    this.pids.set(created.id, pid);
    await (this.opts.delegate ?? delegateCgroups)(pid);
    // The checker starts while the sandbox boots: it needs only the sandbox's PID.
    const checker = this.createChecker(name, created.id, labels);
    const [booted, checked] = await Promise.allSettled([ready, checker]);
    if (booted.status === 'rejected') throw booted.reason;
    if (checked.status === 'rejected') throw checked.reason;
    await this.pinUpstream(name, created.id);
  }

  /** The container's last log lines, for a failed start. */
  async logTail(containerId: string): Promise<string> {
    try {
      const buf = (await this.docker.getContainer(containerId).logs({ stdout: true, stderr: true, tail: 40 })) as unknown as Buffer;
      return buf.toString('utf8');
    } catch {
      return '';
    }
  }

  /**
   * The checker: a container of the project's own image, outside every
   * namespace the learner has. It runs in the machine's user and PID
   * namespaces (the learner, in a child PID namespace, cannot see its
   * processes, files or results) with no network and no capabilities of its
   * own, and enters the sandbox's user and network namespaces from there,
   * with binaries the learner cannot replace (images/sandbox/check-lib.sh).
   */
  private async createChecker(sandboxName: string, sandboxId: string, labels: Record<string, string>): Promise<string> {
    const name = checkerName(sandboxName);
    await this.docker
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
    const checker = await this.docker.createContainer({
      name,
      Image: this.opts.image,
      Entrypoint: ['sleep', 'infinity'],
      Labels: { ...labels, [LABEL.role]: 'checker', [LABEL.sandbox]: sandboxId },
      Env: ['LANG=C.UTF-8', 'PATH=/opt/vethlab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      HostConfig: {
        UsernsMode: 'host',
        PidMode: 'host',
        CgroupnsMode: 'host',
        NetworkMode: 'none',
        // No capabilities on the machine at all (confinement.ts, CHECKER_CAPS).
        CapDrop: ['ALL'],
        ...(this.userns ? {} : { CapAdd: [...UNSAFE_ROOT_CHECKER_CAPS] }),
        SecurityOpt: [seccompOption(CHECKER_SECCOMP_PROFILE), 'apparmor=unconfined', 'no-new-privileges'],
        Memory: 256 * 1024 ** 2,
        PidsLimit: 256,
        ReadonlyRootfs: true,
        Tmpfs: { '/run': 'size=8m', '/tmp': 'size=16m' },
        LogConfig: SMALL_LOG,
      } as Docker.HostConfig,
    });
    await checker.start();
    return checker.id;
  }

  private get userns(): boolean {
    return this.opts.userns ?? true;
  }

  /**
   * A command as the checker runs it: inside the sandbox's user and network
   * namespaces (root there, an unprivileged uid on the machine), from the
   * checker's own file system and PID namespace.
   */
  checkerCommand(sandboxPid: number, cmd: string[]): string[] {
    return ['/usr/bin/nsenter', ...(this.userns ? ['-U'] : []), '-n', '-t', String(sandboxPid), '--', ...cmd];
  }

  /**
   * Records, in the checker's own /run, the inodes of the sandbox's upstream
   * namespaces as they are at boot, before any learner has a shell: checks
   * refuse a namespace bound or made over those names later.
   */
  private async pinUpstream(sandboxName: string, sandboxId: string): Promise<void> {
    const read = 'source /opt/vethlab/check-lib.sh && for n in upstream-router upstream-web; do echo "$n $("$VL_IN_ROOT" "$SANDBOX_ROOT" "/run/netns/$n" stat -L -c %i {})"; done';
    const r = await this.execInChecker({ name: sandboxName, containerId: sandboxId }, ['bash', '-c', read], { timeoutMs: 15_000 });
    const pins = r.stdout.trim();
    if (r.exitCode !== 0 || !/^upstream-router \d+\nupstream-web \d+$/.test(pins)) throw new Error(`pinning the upstream namespaces failed: ${r.stdout}${r.stderr}`);
    const w = await this.exec(checkerName(sandboxName), ['sh', '-c', 'mkdir -p /run/vethlab && printf "%s\n" "$1" > /run/vethlab/pins', 'pin', pins], { timeoutMs: 15_000 });
    if (w.exitCode !== 0) throw new Error(`recording the pins failed: ${w.stderr}`);
  }

  /**
   * Runs a command in the sandbox's checker the way checks run: inside the
   * sandbox's user and network namespaces (checkerCommand), told which
   * sandbox it reads (the machine PID of its init and its container id).
   */
  async execInChecker(sandbox: Pick<Sandbox, 'containerId' | 'name'>, cmd: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const pid = await this.sandboxPid(sandbox);
    const env = [`VETHLAB_SANDBOX_PID=${pid}`, `VETHLAB_SANDBOX_ID=${sandbox.containerId}`];
    return this.exec(checkerName(sandbox.name), this.checkerCommand(pid, cmd), { ...opts, env });
  }

  /** The sandbox's init as a machine PID (what the checker enters from outside), cached while it runs. */
  async sandboxPid(sandbox: Pick<Sandbox, 'containerId'>): Promise<number> {
    const cached = this.pids.get(sandbox.containerId);
    if (cached) return cached;
    const info = await this.docker.getContainer(sandbox.containerId).inspect();
    if (!info.State.Running || !info.State.Pid) throw new Error('the sandbox is not running');
    this.pids.set(sandbox.containerId, info.State.Pid);
    return info.State.Pid;
  }

  /** Recreates a sandbox's checker if it is gone. */
  async ensureChecker(sandbox: Sandbox): Promise<void> {
    if (await this.isRunning(checkerName(sandbox.name))) return;
    const info = await this.docker.getContainer(sandbox.containerId).inspect();
    if (!info.State.Running) throw new Error('the sandbox is not running');
    await this.createChecker(sandbox.name, sandbox.containerId, info.Config.Labels);
    // A sandbox removed meanwhile (its session ended mid-check) must not leave a checker behind.
    if (!(await this.isRunning(sandbox.containerId))) {
      await this.removeContainer(checkerName(sandbox.name));
      throw new Error('the sandbox is not running');
    }
  }

  /** Removes this server's checkers whose sandbox is gone (a race with a removal can leave one). */
  async removeOrphanCheckers(): Promise<number> {
    const running = new Set((await this.docker.listContainers({ filters: { label: [this.ownLabel, `${LABEL.role}=sandbox`] } })).map((c) => c.Id));
    const checkers = await this.docker.listContainers({ all: true, filters: { label: [this.ownLabel, `${LABEL.role}=checker`] } });
    const orphans = checkers.filter((c) => !running.has(c.Labels[LABEL.sandbox] ?? ''));
    await Promise.all(orphans.map((c) => this.removeContainer(c.Id)));
    return orphans.length;
  }

  /**
   * Joins a lab's sandboxes with a private link: `link0` in each, 192.168.56.(10+i)/24.
   * Two hosts get a veth pair straight between them (a cable, no switch).
   * The link touches no network of the machine: the engine host only moves
   * the two ends into the sandboxes' namespaces (so it needs root and
   * iproute2 on the engine's host, which a local engine has).
   */
  async linkSandboxes(sandboxes: Sandbox[]): Promise<void> {
    if (sandboxes.length < 2) return;
    if (sandboxes.length > 2) throw new Error('a private link joins two hosts');
    const pids = await Promise.all(sandboxes.map(async (s) => (await this.docker.getContainer(s.containerId).inspect()).State.Pid));
    await (this.opts.link ?? linkHere)([pids[0]!, pids[1]!]);
    await Promise.all(
      sandboxes.map(async (s, i) => {
        const r = await this.exec(s.containerId, ['sh', '-c', `ip addr add 192.168.56.${10 + i}/24 dev link0 && ip link set link0 up`]);
        if (r.exitCode !== 0) throw new Error(`could not configure link0 in ${s.host}: ${r.stderr.trim()}`);
      }),
    );
  }

  /** Waits for the entrypoint's "vethlab: ready" line (or its failure). */
  private async waitReady(container: Docker.Container): Promise<void> {
    const timeoutMs = this.opts.readyTimeoutMs ?? 60_000;
    const raw = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream & {
      destroy(): void;
    };
    const text = new PassThrough();
    this.docker.modem.demuxStream(raw, text, text);
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const done = (err?: Error) => {
        clearTimeout(timer);
        raw.destroy();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => done(new SandboxStartError(`not ready after ${timeoutMs} ms`, seen.slice(-2000))), timeoutMs);
      text.on('data', (chunk: Buffer) => {
        seen += chunk.toString('utf8');
        if (seen.includes('vethlab: ready')) done();
        const failed = /vethlab: FAILED: (.*)/.exec(seen);
        if (failed) done(new SandboxStartError(`sandbox setup failed: ${failed[1]}`, seen.slice(-2000)));
      });
      raw.on('end', () => done(new SandboxStartError('sandbox exited while starting', seen.slice(-2000))));
      raw.on('error', (e: Error) => done(e));
    });
  }

  dockerFor(_containerId: string): Docker {
    return this.docker;
  }

  async events(): Promise<NodeJS.ReadableStream & { destroy(): void }> {
    return (await this.docker.getEvents({
      filters: { type: ['container'], event: ['die', 'destroy'], label: [this.ownLabel] },
    })) as NodeJS.ReadableStream & { destroy(): void };
  }

  /** The label filter that selects this server's sandboxes. */
  get ownLabel(): string {
    return `${LABEL.instance}=${this.opts.instance}`;
  }

  /** Every sandbox container of this server on the engine (running or not), from its labels. */
  async list(): Promise<Sandbox[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [this.ownLabel, `${LABEL.role}=sandbox`] } });
    return containers.map((c) => {
      const l = c.Labels;
      const name = (c.Names[0] ?? '').replace(/^\//, '');
      return {
        containerId: c.Id,
        name,
        sessionId: l[LABEL.session] ?? '',
        host: l[LABEL.host] ?? '',
        pool: l[LABEL.pool] === '1',
        createdAt: new Date(l[LABEL.created] ?? 0),
        expiresAt: new Date(l[LABEL.expires] ?? 0),
        // A paused sandbox waits in the pool (SandboxPool freezes them): it is alive.
        running: c.State === 'running' || c.State === 'paused',
      };
    });
  }

  /** Checker containers of this server: [container id, its sandbox's name]. */
  async listCheckers(): Promise<[string, string][]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [this.ownLabel, `${LABEL.role}=checker`] } });
    return containers.map((c) => [c.Id, (c.Names[0] ?? '').replace(/^\//, '').replace(/-checker$/, '')]);
  }

  async isRunning(containerId: string): Promise<boolean> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return info.State.Running;
    } catch {
      return false;
    }
  }

  /**
   * Freezes a sandbox (the cgroup freezer): its processes keep their memory
   * but get no CPU. An idle sandbox's inner engine still wakes many times a
   * second, which a pool the size of a room pays for while the room works.
   */
  async freeze(sandbox: Pick<Sandbox, 'containerId'>): Promise<void> {
    await this.dockerFor(sandbox.containerId).getContainer(sandbox.containerId).pause();
  }

  /** Thaws a frozen sandbox; one that is not frozen is fine. */
  async thaw(sandbox: Pick<Sandbox, 'containerId'>): Promise<void> {
    const container = this.dockerFor(sandbox.containerId).getContainer(sandbox.containerId);
    await container.unpause().catch(async (err: { statusCode?: number }) => {
      // 409/500 "is not paused": check the state rather than the message.
      if ((await container.inspect()).State.Paused) throw err;
    });
  }

  /** Removes the sandbox and its checker; absent ones are fine. */
  async remove(sandbox: Pick<Sandbox, 'containerId' | 'name'>): Promise<void> {
    await this.removeByName(sandbox.name, sandbox.containerId);
  }

  private async removeByName(name: string, containerId?: string): Promise<void> {
    if (containerId) this.pids.delete(containerId);
    await this.removeContainer(checkerName(name));
    if (containerId) await this.removeContainer(containerId);
  }

  async removeContainer(idOrName: string): Promise<void> {
    await this.docker
      .getContainer(idOrName)
      .remove({ force: true, v: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
      });
  }

  /** Runs a command to completion without a TTY (checks, tests), killed at the time limit. */
  async exec(containerId: string, cmd: string[], opts: { timeoutMs?: number; stdin?: string; env?: string[] } = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const container = this.docker.getContainer(containerId);
    // `timeout` inside the sandbox kills the process itself, not just our wait for it.
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const exec = await container.exec({
      Cmd: ['timeout', '-s', 'KILL', String(seconds), ...cmd],
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: opts.stdin !== undefined,
      Tty: false,
      ...(opts.env ? { Env: opts.env } : {}),
    });
    const stream = await exec.start({ hijack: true, stdin: opts.stdin !== undefined });
    const out = new PassThrough();
    const err = new PassThrough();
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    out.on('data', (b: Buffer) => stdout.push(b));
    err.on('data', (b: Buffer) => stderr.push(b));
    this.docker.modem.demuxStream(stream, out, err);
    if (opts.stdin !== undefined) stream.end(opts.stdin);
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        stream.destroy();
        resolve();
      }, timeoutMs + 2000);
      const finish = () => {
        clearTimeout(timer);
        resolve();
      };
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', finish);
    });
    // A stream we cut at the time limit can take its exec instance with it.
    const info = await exec.inspect().catch(() => ({ Running: false, ExitCode: null }));
    const exitCode = info.Running ? null : info.ExitCode;
    return {
      exitCode: timedOut ? null : exitCode,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
      timedOut: timedOut || exitCode === 137,
    };
  }

  /** Forgets what it cached of a container (a Swarm node's sandbox that is gone). */
  forget(containerId: string): void {
    this.pids.delete(containerId);
  }

  /** Can the lab-server reach sandboxes' files and sockets itself (engine on this machine, run as root)? */
  private get direct(): boolean {
    return this.opts.directTerminals ?? (Boolean((this.docker.modem as { socketPath?: string }).socketPath) && process.getuid?.() === 0);
  }

  /**
   * Attaches to the terminal's login shell, starting it if needed. The shell
   * runs under dtach inside the sandbox (vethlab-shell), so it outlives this
   * connection: a restarted lab-server attaches to the same shell (dtach asks
   * full-screen programs to redraw). With the engine on this machine the
   * lab-server talks to dtach's socket itself (dtach-shell.ts): no Docker
   * engine in the data path; otherwise through `docker exec`.
   */
  async openShell(containerId: string, terminalId: string, size: { cols: number; rows: number }, env: string[] = []): Promise<Shell> {
    if (!this.direct) return this.openShellByExec(containerId, terminalId, size, env);
    const pid = await this.sandboxPid({ containerId });
    const where = ['run', 'vethlab', `terminal-${terminalId}.sock`];
    let socket;
    try {
      socket = await connectDtach(pid, where);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED' && !(err instanceof UnsafeSocketPathError)) throw err;
      // Not started yet, exited, or not a socket (a learner's symlink): whatever is there goes first.
      const r = await this.exec(containerId, ['bash', '-c', 'mkdir -p /run/vethlab; rm -f "$1"; exec dtach -n "$1" -r winch /usr/local/sbin/vethlab-shell "$2"', 'start', `/${where.join('/')}`, `terminal-${terminalId}`], {
        env: [...SHELL_ENV, ...env],
      });
      if (r.exitCode !== 0) throw new Error(`could not start the shell: ${(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
      socket = await connectDtach(pid, where);
    }
    const stream = new DtachStream(socket);
    stream.attach(size.cols, size.rows);
    return {
      stream,
      resize: async (cols, rows) => stream.resize(cols, rows),
      exitCode: async () => {
        const r = await this.exec(containerId, ['cat', `/run/vethlab/terminal-${terminalId}.exit`]).catch(() => null);
        const code = r?.exitCode === 0 ? Number.parseInt(r.stdout, 10) : NaN;
        return Number.isInteger(code) ? code : null;
      },
    };
  }

  private async openShellByExec(containerId: string, terminalId: string, size: { cols: number; rows: number }, env: string[]): Promise<Shell> {
    const container = this.docker.getContainer(containerId);
    const exec = await container.exec({
      Cmd: ['dtach', '-A', `/run/vethlab/terminal-${terminalId}.sock`, '-E', '-z', '-r', 'winch', '/usr/local/sbin/vethlab-shell', `terminal-${terminalId}`],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      WorkingDir: '/root',
      Env: [...SHELL_ENV, ...env],
      // Honoured by engines with API >= 1.42; older ones get the resize below.
      ConsoleSize: [size.rows, size.cols],
    } as Docker.ExecCreateOptions);
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
    const resize = async (cols: number, rows: number) => {
      try {
        await exec.resize({ w: cols, h: rows });
      } catch {
        // Resizing a shell that has just exited fails; nothing to do.
      }
    };
    void resize(size.cols, size.rows);
    return {
      stream,
      resize,
      exitCode: async () => {
        try {
          const info = await exec.inspect();
          return info.Running ? null : info.ExitCode;
        } catch {
          return null;
        }
      },
    };
  }
}
