/**
 * SandboxPool keeps a few single-host sandboxes started and ready, so a
 * learner gets a prompt without waiting for an engine to boot. It refills one
 * sandbox at a time in the background (a 2-core machine should not boot
 * several engines at once while learners type). Waiting sandboxes are
 * frozen: a pool sized for a room costs no CPU while the room works, and
 * taking one thaws it (tens of milliseconds). Across a swarm the pool (sized
 * for the room) is shared out over the nodes that take sandboxes: each refill
 * goes to the node with the fewest waiting, a learner takes from the node with
 * the most, and a node joining gets its share without a restart.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log';
import type { Sandbox, SandboxDriver } from './sandbox-driver';
import { MAIN_TERMINAL_ID } from './sandbox-engine';

export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export const POOL_HOST = 'sandbox';

/** How long a refill waits after a sandbox is taken. */
const REFILL_DELAY_MS = 1500;

export class SandboxPool {
  private readonly ready: Sandbox[] = [];
  private filling: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly engine: SandboxDriver,
    private readonly opts: { size: number; ttlMs: number; log: Logger },
  ) {}

  get size(): number {
    return this.ready.length;
  }

  /** How many sandboxes the pool keeps waiting. */
  get target(): number {
    return this.opts.size;
  }

  /** Changes how many sandboxes wait (a workshop about to start sizes it from its seats) and fills up to it. */
  setTarget(size: number): void {
    this.opts.size = size;
    this.refill();
  }

  /** Takes back pool sandboxes found at start (still running, not expired). */
  adopt(sandboxes: Sandbox[]): void {
    this.ready.push(...sandboxes);
  }

  /** A ready sandbox, thawed, if one is waiting (its session id becomes the session's). */
  async take(): Promise<Sandbox | undefined> {
    let sandbox: Sandbox | undefined;
    while ((sandbox = this.ready.splice(this.fullestNodeIndex(), 1)[0])) {
      if (sandbox.expiresAt.getTime() <= Date.now() + 60_000) {
        void this.engine.remove(sandbox);
        continue;
      }
      try {
        await this.engine.thaw(sandbox);
        break;
      } catch (err) {
        this.opts.log.warn({ err, sandbox: sandbox.name }, 'a pool sandbox would not thaw; removing it');
        void this.engine.remove(sandbox);
      }
    }
    // The learner's shell starts now; the next boot (seconds of CPU) waits a moment behind it.
    setTimeout(() => this.refill(), REFILL_DELAY_MS).unref();
    return sandbox;
  }

  /** Waiting sandboxes per node that takes sandboxes (none for a single engine). */
  private perNode(): Map<string, number> {
    const counts = new Map<string, number>((this.engine.readyNodes?.() ?? []).map((n) => [n, 0]));
    for (const s of this.ready) if (s.node && counts.has(s.node)) counts.set(s.node, counts.get(s.node)! + 1);
    return counts;
  }

  /** Where the next pool sandbox goes: the node with the fewest waiting. */
  private emptiestNode(): string | undefined {
    return [...this.perNode()].sort((a, b) => a[1] - b[1])[0]?.[0];
  }

  /** Which waiting sandbox a learner gets: the oldest on the node with the most waiting. */
  private fullestNodeIndex(): number {
    const fullest = [...this.perNode()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const i = fullest ? this.ready.findIndex((s) => s.node === fullest) : -1;
    return i >= 0 ? i : 0;
  }

  /** Starts filling the pool up to its size, in the background. */
  refill(): void {
    if (this.stopped || this.filling || this.ready.length >= this.opts.size) return;
    this.filling = (async () => {
      while (!this.stopped && this.ready.length < this.opts.size) {
        try {
          const sandbox = await this.engine.create({
            node: this.emptiestNode(),
            sessionId: newSessionId(),
            host: POOL_HOST,
            lab: '',
            learner: '',
            pool: true,
            expiresAt: new Date(Date.now() + this.opts.ttlMs),
            terminal: MAIN_TERMINAL_ID,
          });
          if (this.stopped) {
            await this.engine.remove(sandbox);
            continue;
          }
          await this.engine.freeze(sandbox).catch((err) => this.opts.log.warn({ err, sandbox: sandbox.name }, 'could not freeze a pool sandbox; it waits running'));
          this.ready.push(sandbox);
        } catch (err) {
          this.opts.log.error({ err }, 'could not start a pool sandbox; retrying in 10 s');
          await new Promise((r) => setTimeout(r, 10_000).unref());
        }
      }
    })().finally(() => {
      this.filling = null;
    });
  }

  /** Drops sandboxes that expire soon, so the pool stays fresh. */
  recycle(): void {
    const now = Date.now();
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const s = this.ready[i]!;
      if (s.expiresAt.getTime() <= now + 60_000) {
        this.ready.splice(i, 1);
        void this.engine.remove(s);
      }
    }
    this.refill();
  }

  /** Stops refilling and removes every waiting sandbox. */
  async drain(): Promise<void> {
    this.stopped = true;
    await this.filling;
    const all = this.ready.splice(0);
    await Promise.all(all.map((s) => this.engine.remove(s)));
  }

  /** Stops refilling, leaving waiting sandboxes for the next server to adopt. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.filling;
  }

  has(containerId: string): boolean {
    return this.ready.some((s) => s.containerId === containerId);
  }

  /** A pool sandbox died: forget it and start another. */
  forget(containerId: string): void {
    const i = this.ready.findIndex((s) => s.containerId === containerId);
    if (i >= 0) {
      const [s] = this.ready.splice(i, 1);
      void this.engine.remove(s!);
      this.refill();
    }
  }
}
