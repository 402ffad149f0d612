/**
 * PriorityLimiter bounds how much of one kind of heavy work (check runs,
 * sandbox boots) the machine does at once. Unbounded, a room's work shares
 * a small machine's CPU so thinly that everyone waits as long as the last
 * one; bounded, it finishes in arrival order. Interactive work (a learner is
 * waiting for it) goes ahead of background work (timers, the warm pool).
 */
export class PriorityLimiter {
  private active = 0;
  private readonly waiting: { interactive: boolean; start: () => void }[] = [];

  constructor(readonly slots: number) {
    if (!(slots >= 1)) throw new Error('a limiter needs at least one slot');
  }

  /** Runs waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.active;
  }

  async run<T>(interactive: boolean, work: () => Promise<T>): Promise<T> {
    if (this.active < this.slots) this.active++;
    else
      await new Promise<void>((start) => {
        const entry = { interactive, start };
        // Interactive runs queue behind other interactive ones, ahead of every background one.
        const firstBackground = interactive ? this.waiting.findIndex((w) => !w.interactive) : -1;
        if (firstBackground < 0) this.waiting.push(entry);
        else this.waiting.splice(firstBackground, 0, entry);
      });
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, or is freed.
      const next = this.waiting.shift();
      if (next) next.start();
      else this.active--;
    }
  }
}
