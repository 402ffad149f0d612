/**
 * Admission control: a machine holds so many sandboxes. When it is full a
 * new learner is not given a broken sandbox: they are told their place in
 * line (the page retries by itself) and admitted in arrival order as
 * sandboxes free up. Also limits how often one learner may create sandboxes.
 */
import os from 'node:os';

export interface AdmissionLimits {
  maxSandboxes: number;
  /** Refuse new sandboxes when the machine has less free memory than this. */
  minFreeMemoryBytes: number;
  /** Sandbox creations per learner per window. */
  perLearnerStarts: number;
  /**
   * ... and per network address: identities are free (a client without a
   * cookie gets a new one), so this is what bounds one machine's starts.
   */
  perAddressStarts: number;
  perLearnerWindowMs: number;
}

export type AdmissionVerdict = { ok: true } | { ok: false; reason: 'full'; position: number; inUse: number; max: number } | { ok: false; reason: 'rate-limited'; retryAfterSec: number };

/** A learner who stops asking for this long leaves the line. */
const LINE_TTL_MS = 60_000;

export class Admission {
  private readonly line: { learner: string; lastSeen: number }[] = [];
  private readonly starts = new Map<string, number[]>();
  private readonly addressStarts = new Map<string, number[]>();

  constructor(
    readonly limits: AdmissionLimits,
    private readonly freeMemory: () => number = os.freemem,
  ) {}

  /** May this learner create `needed` sandboxes now, with `inUse` already running? */
  check(learner: string, needed: number, inUse: number, address?: string, now = Date.now()): AdmissionVerdict {
    for (const [map, key, max] of [
      [this.starts, learner, this.limits.perLearnerStarts],
      [this.addressStarts, address, this.limits.perAddressStarts],
    ] as const) {
      if (key === undefined) continue;
      const recent = (map.get(key) ?? []).filter((t) => t > now - this.limits.perLearnerWindowMs);
      if (recent.length === 0) map.delete(key);
      else map.set(key, recent);
      if (recent.length >= max) {
        return { ok: false, reason: 'rate-limited', retryAfterSec: Math.ceil((recent[0]! + this.limits.perLearnerWindowMs - now) / 1000) };
      }
    }
    for (let i = this.line.length - 1; i >= 0; i--) if (this.line[i]!.lastSeen < now - LINE_TTL_MS) this.line.splice(i, 1);
    let place = this.line.findIndex((w) => w.learner === learner);
    if (place === -1) place = this.line.push({ learner, lastSeen: now }) - 1;
    else this.line[place]!.lastSeen = now;
    const room = inUse + needed <= this.limits.maxSandboxes && this.freeMemory() >= this.limits.minFreeMemoryBytes;
    // First come, first served: only the head of the line may take a free slot.
    if (room && place === 0) {
      this.line.shift();
      return { ok: true };
    }
    return { ok: false, reason: 'full', position: place + 1, inUse, max: this.limits.maxSandboxes };
  }

  /** A sandbox was created for the learner (counts against their rate). */
  started(learner: string, address?: string, now = Date.now()): void {
    this.starts.set(learner, [...(this.starts.get(learner) ?? []), now]);
    if (address !== undefined) this.addressStarts.set(address, [...(this.addressStarts.get(address) ?? []), now]);
  }

  get waiting(): number {
    return this.line.length;
  }
}

/** Default capacity: what the machine's memory holds, a sandbox needing its limit plus its checker. */
export function defaultMaxSandboxes(memoryLimitBytes: number): number {
  const reserve = 2 * 1024 ** 3;
  return Math.max(1, Math.min(64, Math.floor((os.totalmem() - reserve) / (memoryLimitBytes + 256 * 1024 ** 2))));
}
