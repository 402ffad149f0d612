/**
 * What sessions, terminals, checks and the pool need from whatever runs
 * sandboxes, and nothing more: two implementations, the single engine of
 * this machine (SandboxEngine, sandbox-engine.ts) and a Docker Swarm of them
 * (SwarmDriver, swarm-driver.ts). Nothing outside lab-server/sandbox/ knows
 * which one runs.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';

export interface SandboxSpec {
  sessionId: string;
  /** Host name inside the lab ("sandbox", "host-a"...): the shell prompt shows it. */
  host: string;
  lab: string;
  learner: string;
  pool: boolean;
  expiresAt: Date;
  /** The terminal whose login shell starts at boot, so that attaching to it costs no shell start. */
  terminal?: string | undefined;
  /** Put it on the same machine as this sandbox (a multi-host lab's link is a veth pair between them). */
  besides?: Sandbox | undefined;
  /** Put it on this node (a warm pool's share of a node); unset: wherever the driver places it. */
  node?: string | undefined;
}

export interface Sandbox {
  containerId: string;
  name: string;
  sessionId: string;
  host: string;
  pool: boolean;
  createdAt: Date;
  expiresAt: Date;
  running: boolean;
  /** The Swarm node it runs on (unset on a single engine). */
  node?: string | undefined;
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface Shell {
  /** Raw TTY byte stream: write keystrokes, read output. */
  stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  exitCode(): Promise<number | null>;
}

/**
 * A container of ours died or was removed, as the engine's event stream says
 * it (one JSON object a line): `{ id, Actor: { Attributes: labels } }`. A
 * sandbox whose machine went away is reported the same way.
 */
export interface SandboxEvent {
  id: string;
  Actor: { Attributes: Record<string, string> };
}

/** Calls `handle` with each SandboxEvent of a driver's event stream (one JSON object a line, lines split across chunks). */
export function onSandboxEvents(stream: NodeJS.ReadableStream, handle: (event: SandboxEvent) => void): void {
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) handle(JSON.parse(line) as SandboxEvent);
    }
  });
}

export interface SandboxDriver {
  /** The label filter that selects this server's sandboxes. */
  readonly ownLabel: string;
  /** The engine API of the one engine (under Swarm, the manager's); a sandbox's own engine is dockerFor(). */
  readonly docker: Docker;
  /** The engine that runs this container (a sandbox or a checker). */
  dockerFor(containerId: string): Docker;

  /** Creates and starts a sandbox and resolves once it is ready for a learner. */
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Removes the sandbox and its checker; absent ones are fine. */
  remove(sandbox: Pick<Sandbox, 'containerId' | 'name'>): Promise<void>;
  removeContainer(idOrName: string): Promise<void>;
  /** Every sandbox of this server (running or not), from its labels. */
  list(): Promise<Sandbox[]>;
  /** Checker containers of this server: [container id, its sandbox's name]. */
  listCheckers(): Promise<[string, string][]>;
  removeOrphanCheckers(): Promise<number>;
  isRunning(containerId: string): Promise<boolean>;
  /** The sandbox's init as a PID of the machine that runs it. */
  sandboxPid(sandbox: Pick<Sandbox, 'containerId'>): Promise<number>;
  /** Freezes a waiting pool sandbox (no CPU until taken). */
  freeze(sandbox: Pick<Sandbox, 'containerId'>): Promise<void>;
  /** Thaws a frozen sandbox; one that is not frozen is fine. */
  thaw(sandbox: Pick<Sandbox, 'containerId'>): Promise<void>;
  /** Joins a lab's sandboxes with a private link (link0). */
  linkSandboxes(sandboxes: Sandbox[]): Promise<void>;

  /** Runs a command to completion without a TTY, killed at the time limit. */
  exec(containerId: string, cmd: string[], opts?: { timeoutMs?: number; stdin?: string; env?: string[] }): Promise<ExecResult>;
  /** Runs a command in the sandbox's checker the way checks run. */
  execInChecker(sandbox: Pick<Sandbox, 'containerId' | 'name'>, cmd: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Recreates a sandbox's checker if it is gone. */
  ensureChecker(sandbox: Sandbox): Promise<void>;
  /** Attaches to the terminal's login shell, starting it if needed. */
  openShell(containerId: string, terminalId: string, size: { cols: number; rows: number }, env?: string[]): Promise<Shell>;

  /** The machines that take sandboxes now (Swarm node ids); undefined for a single engine. The pool keeps a share on each. */
  readyNodes?(): string[];

  /** Die and destroy events of this server's containers, one JSON SandboxEvent a line; ends when the engine's stream does. */
  events(): Promise<NodeJS.ReadableStream & { destroy(): void }>;
}
