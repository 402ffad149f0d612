/**
 * SessionManager owns learner sessions: which learner has which sandboxes for
 * which lab, until when. It starts sessions (from the warm pool when it can),
 * records them in the store at once, re-adopts live ones after a restart,
 * removes orphans, reaps expired and idle sessions, and notices when a
 * sandbox dies behind its back (engine events).
 */
import { EventEmitter } from 'node:events';
import type { ApiErrorCode, SessionInfo, TerminalInfo } from '../../protocol/api';
import { RequestError } from '../errors';
import type { Logger } from '../log';
import { onSandboxEvents, type Sandbox, type SandboxDriver, type SandboxEvent } from '../sandbox/sandbox-driver';
import { LABEL, MAIN_TERMINAL_ID } from '../sandbox/sandbox-engine';
import { POOL_HOST, newSessionId, type SandboxPool } from '../sandbox/sandbox-pool';
import type { SessionRow, Store } from '../store/store';
import type { Admission } from './admission';

/** A live session: its stored row, plus the sandboxes it runs in. */
export interface Session extends Omit<SessionRow, 'endedAt' | 'endReason'> {
  hosts: Map<string, Sandbox>;
  state: 'ready' | 'gone';
}

/** A refused session request; its code is one of the API's (protocol/api.ts). */
export class SessionError extends RequestError {
  constructor(
    code: Extract<ApiErrorCode, 'unknown-lab' | 'unknown-session' | 'forbidden' | 'sandbox-failed' | 'unavailable' | 'full' | 'rate-limited'>,
    message: string,
    retry?: { afterSec: number; position?: number },
  ) {
    super(code, message, retry);
    this.name = 'SessionError';
  }
}

export interface SessionManagerEvents {
  /** The session's sandbox died or was removed; its terminals must be told. */
  gone: [sessionId: string];
  /** The session was ended (by the learner, TTL, idle or shutdown). */
  ended: [sessionId: string, reason: string];
  /** A session is live: just started, or re-adopted after a restart. */
  ready: [session: Session];
}

export interface SessionManagerOptions {
  ttlMs: number;
  idleTimeoutMs: number;
  /** Host names a lab needs (one per sandbox), or undefined for an unknown lab. */
  labHosts: (lab: string) => string[] | undefined;
  admission?: Admission;
  /**
   * Live sessions one learner keeps (one per lab). Opening a lab beyond it
   * hands back the sandbox of the lab they touched least recently: a learner
   * paging through the course must not hold a sandbox per lesson. Progress is
   * stored, so nothing passed is lost. Unlimited if unset.
   */
  sessionsPerLearner?: number;
  /** Prepares a new session's fresh sandboxes (lab setup); a throw fails the start. */
  prepare?: (session: Session) => Promise<void>;
  /** Throws (a RequestError) when this learner may not start this lab now: a workshop room closed. */
  mayStart?: (learner: string, lab: string) => void;
  log: Logger;
}

/** Single-host sessions have one terminal, "main"; multi-host ones one per host. */
export function terminalsOf(hosts: string[]): TerminalInfo[] {
  if (hosts.length === 1) return [{ id: MAIN_TERMINAL_ID, host: hosts[0]! }];
  return hosts.map((h) => ({ id: h, host: h }));
}

export class SessionManager extends EventEmitter<SessionManagerEvents> {
  private readonly sessions = new Map<string, Session>();
  /** Starts in progress, by learner and lab. */
  private readonly booting = new Map<string, { learner: string; hosts: number; promise: Promise<Session> }>();
  private reaper: NodeJS.Timeout | null = null;
  private events: NodeJS.ReadableStream | null = null;
  private closing = false;

  constructor(
    private readonly engine: SandboxDriver,
    private readonly pool: SandboxPool,
    private readonly store: Store,
    private readonly opts: SessionManagerOptions,
  ) {
    super();
  }

  /**
   * Reconciles the engine with the store: live sessions whose sandboxes all
   * run are re-adopted, waiting pool sandboxes go back to the pool, and
   * everything else labelled as ours is removed.
   */
  async init(): Promise<{ adopted: number; pooled: number; removed: number }> {
    const now = Date.now();
    const containers = await this.engine.list();
    const byId = new Map(containers.map((c) => [c.containerId, c]));
    const kept = new Set<string>();
    let adopted = 0;
    for (const row of this.store.liveSessions()) {
      const hostRows = this.store.hostsOf(row.id);
      const sandboxes = hostRows.map((h) => byId.get(h.containerId));
      const alive = sandboxes.length > 0 && sandboxes.every((s) => s?.running);
      const expired = row.expiresAt <= now || row.lastActiveAt + this.opts.idleTimeoutMs <= now;
      if (!alive || expired) {
        this.store.endSession(row.id, expired ? 'expired' : 'sandbox-gone');
        continue;
      }
      const hosts = new Map<string, Sandbox>();
      for (const s of sandboxes) {
        hosts.set(s!.host, { ...s!, expiresAt: new Date(row.expiresAt) });
        kept.add(s!.containerId);
      }
      const session: Session = { ...row, hosts, state: 'ready' };
      this.sessions.set(row.id, session);
      this.emit('ready', session);
      adopted++;
    }
    const pooled = containers.filter((c) => c.pool && c.running && !kept.has(c.containerId) && c.expiresAt.getTime() > now + 60_000 && !this.store.getSession(c.sessionId));
    for (const c of pooled) kept.add(c.containerId);
    this.pool.adopt(pooled);
    const orphans = containers.filter((c) => !kept.has(c.containerId));
    await Promise.all(orphans.map((c) => this.engine.remove(c)));
    const keptNames = new Set(containers.filter((c) => kept.has(c.containerId)).map((c) => c.name));
    for (const [id, sandboxName] of await this.engine.listCheckers()) {
      if (!keptNames.has(sandboxName)) await this.engine.removeContainer(id);
    }
    this.opts.log.info({ adopted, pooled: pooled.length, removed: orphans.length }, 'sandboxes reconciled');
    return { adopted, pooled: pooled.length, removed: orphans.length };
  }

  /** Starts reaping, watching engine events and filling the pool. */
  startHousekeeping(reapIntervalMs = 15_000): void {
    this.reaper = setInterval(() => void this.reap(), reapIntervalMs);
    this.reaper.unref();
    void this.watchEngine();
    this.pool.refill();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sandboxes held by live sessions (the pool's are free to take). */
  get sandboxCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.hosts.size;
    return n;
  }

  /**
   * Starts a session for the learner's lab, or returns the one they already
   * have or are already booting: one session per learner and lab, however
   * many requests arrive at once.
   */
  start(learner: string, lab: string, address?: string): Promise<Session> {
    const key = `${learner}\n${lab}`;
    const inFlight = this.booting.get(key);
    if (inFlight) return inFlight.promise;
    for (const s of this.sessions.values()) {
      if (s.learner === learner && s.lab === lab && s.state === 'ready') {
        this.touch(s.id);
        return Promise.resolve(s);
      }
    }
    // boot() decides admission before its first await, so the next start already counts this one.
    const entry = { learner, hosts: 0, promise: Promise.resolve(null as unknown as Session) };
    entry.promise = this.boot(learner, lab, address, (n) => (entry.hosts = n)).finally(() => this.booting.delete(key));
    this.booting.set(key, entry);
    return entry.promise;
  }

  /** Sandboxes being created now (admitted, not yet live). */
  get bootingCount(): number {
    let n = 0;
    for (const b of this.booting.values()) n += b.hosts;
    return n;
  }

  private async boot(learner: string, lab: string, address: string | undefined, admitted: (hosts: number) => void): Promise<Session> {
    const hosts = this.opts.labHosts(lab);
    if (!hosts) throw new SessionError('unknown-lab', `There is no lab called "${lab}".`);
    this.opts.mayStart?.(learner, lab);
    const gone = [...this.sessions.values()].filter((s) => s.learner === learner && s.lab === lab);
    // Progress that cannot be saved would be lost: no new session until the store is writable.
    if (!this.store.writable()) {
      throw new SessionError('unavailable', 'The progress store cannot be written (disk full or read-only); no new sessions until an instructor fixes it. Your progress so far is safe.');
    }
    // Over the learner's allowance: their least recently used labs give their sandboxes back (labs booting count too).
    const bootingOfLearner = [...this.booting.values()].filter((b) => b.learner === learner).length;
    const keep = Math.max(0, (this.opts.sessionsPerLearner ?? Infinity) - 1 - bootingOfLearner);
    const replaced = [...this.sessions.values()]
      .filter((s) => s.learner === learner && !gone.includes(s))
      .sort((x, y) => y.lastActiveAt - x.lastActiveAt)
      .slice(keep);
    const freed = [...replaced, ...gone].reduce((n, s) => n + s.hosts.size, 0);
    // Boots in progress hold their sandboxes already: a burst must not overrun the machine.
    const verdict = this.opts.admission?.check(learner, hosts.length, this.sandboxCount + this.bootingCount - freed, address);
    if (verdict && !verdict.ok) {
      if (verdict.reason === 'rate-limited') {
        throw new SessionError('rate-limited', `You started too many sandboxes in a short time; try again in ${verdict.retryAfterSec} s.`, { afterSec: verdict.retryAfterSec });
      }
      throw new SessionError(
        'full',
        `All ${verdict.max} sandboxes of this machine are in use. You are number ${verdict.position} in line; this page keeps your place and retries by itself.`,
        { afterSec: 5, position: verdict.position },
      );
    }
    this.opts.admission?.started(learner, address);
    admitted(hosts.length);
    await Promise.all([...gone.map((s) => this.end(s.id, 'sandbox-gone')), ...replaced.map((s) => this.end(s.id, 'replaced'))]);
    const now = Date.now();
    const expiresAt = now + this.opts.ttlMs;
    const pooled = hosts.length === 1 && hosts[0] === POOL_HOST ? await this.pool.take() : undefined;
    const id = pooled?.sessionId ?? newSessionId();
    const sandboxes = new Map<string, Sandbox>();
    try {
      if (pooled) sandboxes.set(POOL_HOST, { ...pooled, expiresAt: new Date(expiresAt) });
      else {
        for (const host of hosts) {
          const terminal = terminalsOf(hosts).find((t) => t.host === host)?.id;
          // A lab's hosts share a machine: their link is a veth pair between them.
          const besides = sandboxes.values().next().value;
          const s = await this.engine.create({ sessionId: id, host, lab, learner, pool: false, expiresAt: new Date(expiresAt), terminal, besides });
          sandboxes.set(host, s);
        }
        await this.engine.linkSandboxes([...sandboxes.values()]);
      }
    } catch (err) {
      await Promise.all([...sandboxes.values()].map((s) => this.engine.remove(s)));
      this.opts.log.error({ err, lab }, 'sandbox failed to start');
      throw new SessionError('sandbox-failed', `Your sandbox could not be started: ${(err as Error).message}`);
    }
    const session: Session = { id, learner, lab, createdAt: now, expiresAt, lastActiveAt: now, hosts: sandboxes, state: 'ready' };
    try {
      await this.opts.prepare?.(session);
    } catch (err) {
      await Promise.all([...sandboxes.values()].map((s) => this.engine.remove(s)));
      this.opts.log.error({ err, lab }, 'lab setup failed');
      throw new SessionError('sandbox-failed', `The lab could not be set up in your sandbox: ${(err as Error).message}`);
    }
    try {
      this.store.insertSession(
        { id, learner, lab, createdAt: now, expiresAt, lastActiveAt: now },
        [...sandboxes.values()].map((s) => ({ sessionId: id, host: s.host, containerId: s.containerId, sandboxName: s.name })),
      );
    } catch (err) {
      await Promise.all([...sandboxes.values()].map((s) => this.engine.remove(s)));
      throw new SessionError('unavailable', `The progress store cannot be written (${(err as Error).message}); no new sessions until it is fixed.`);
    }
    if (this.closing) {
      // The server stopped while this sandbox booted: it must not outlive the server unowned.
      try {
        this.store.endSession(id, 'server-stopped');
      } catch {
        // the store may be closed already; the row is ended at the next start's reconcile
      }
      await Promise.all([...sandboxes.values()].map((s) => this.engine.remove(s)));
      throw new SessionError('unavailable', 'The lab server is stopping; start again in a moment.');
    }
    this.sessions.set(id, session);
    this.opts.log.info({ session: id, lab, fromPool: Boolean(pooled) }, 'session started');
    this.emit('ready', session);
    return session;
  }

  /** Ends the session and starts the same lab again in fresh sandboxes. */
  async restart(id: string, learner: string, address?: string): Promise<Session> {
    const s = this.get(id, learner);
    await this.end(s.id, 'reset');
    return this.start(learner, s.lab, address);
  }

  /** The session, if it exists and belongs to this learner. */
  get(id: string, learner: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new SessionError('unknown-session', 'This session does not exist (it may have expired). Start the lab again.');
    if (s.learner !== learner) throw new SessionError('forbidden', 'This session belongs to another learner.');
    return s;
  }

  find(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  info(s: Session): SessionInfo {
    return {
      sessionId: s.id,
      lab: s.lab,
      state: s.state,
      terminals: terminalsOf([...s.hosts.keys()]),
      createdAt: new Date(s.createdAt).toISOString(),
      expiresAt: new Date(Math.min(s.expiresAt, s.lastActiveAt + this.opts.idleTimeoutMs)).toISOString(),
    };
  }

  /** More time for a session (a workshop's instructor extends it): its TTL and idle deadline move to at least `until`. */
  extend(id: string, until: number): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.expiresAt = Math.max(s.expiresAt, until);
    s.lastActiveAt = Math.max(s.lastActiveAt, until - this.opts.idleTimeoutMs);
    this.store.extendSession(id, s.expiresAt, s.lastActiveAt);
  }

  /** Live sessions of a learner (workshop dashboards and help actions). */
  ofLearner(learner: string): Session[] {
    return [...this.sessions.values()].filter((s) => s.learner === learner);
  }

  /** The learner did something: push the idle deadline back. */
  touch(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    const now = Date.now();
    // Writing on every keystroke is wasteful; a minute's precision is plenty.
    if (now - s.lastActiveAt < 60_000) return;
    s.lastActiveAt = now;
    try {
      this.store.touchSession(id, now);
    } catch (err) {
      this.opts.log.warn({ err }, 'could not record activity');
    }
  }

  async end(id: string, reason: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    try {
      this.store.endSession(id, reason);
    } catch (err) {
      this.opts.log.warn({ err }, 'could not record the end of a session');
    }
    this.emit('ended', id, reason);
    await Promise.all([...s.hosts.values()].map((sb) => this.engine.remove(sb).catch((err: unknown) => this.opts.log.error({ err }, 'remove failed'))));
    this.opts.log.info({ session: id, reason }, 'session ended');
  }

  /** Ends sessions past their TTL or idle too long. */
  async reap(now = Date.now()): Promise<void> {
    const due = [...this.sessions.values()].filter((s) => s.expiresAt <= now || s.lastActiveAt + this.opts.idleTimeoutMs <= now);
    await Promise.all(due.map((s) => this.end(s.id, s.expiresAt <= now ? 'expired' : 'idle')));
    this.pool.recycle();
    await this.engine.removeOrphanCheckers().catch((err: unknown) => this.opts.log.warn({ err }, 'could not remove orphan checkers'));
    // Health reports the last probe; housekeeping, not each health call, pays for it.
    this.store.writable();
  }

  private async watchEngine(): Promise<void> {
    while (!this.closing) {
      try {
        const stream = await this.engine.events();
        this.events = stream;
        await new Promise<void>((resolve) => {
          onSandboxEvents(stream, (event) => this.onEngineEvent(event));
          stream.on('end', resolve);
          stream.on('error', resolve);
          stream.on('close', resolve);
        });
      } catch (err) {
        this.opts.log.warn({ err }, 'engine event stream failed');
      }
      if (!this.closing) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private onEngineEvent(ev: SandboxEvent): void {
    // A dead checker is recreated on the next check; it says nothing of the sandbox.
    if (ev.Actor.Attributes[LABEL.role] === 'checker') return;
    if (this.pool.has(ev.id)) {
      this.pool.forget(ev.id);
      return;
    }
    const sessionId = ev.Actor.Attributes[LABEL.session];
    const s = sessionId ? this.sessions.get(sessionId) : undefined;
    if (s && [...s.hosts.values()].some((h) => h.containerId === ev.id)) this.markGone(s.id);
  }

  /** A sandbox of the session died: its terminals are told, the learner can start again. */
  markGone(id: string): void {
    const s = this.sessions.get(id);
    if (!s || s.state === 'gone') return;
    s.state = 'gone';
    this.opts.log.warn({ session: s.id }, 'a sandbox of this session died');
    this.emit('gone', s.id);
  }

  /** Checks the engine: are all the session's sandboxes still running? Marks it gone if not. */
  async checkAlive(id: string): Promise<boolean> {
    const s = this.sessions.get(id);
    if (!s || s.state === 'gone') return false;
    const running = await Promise.all([...s.hosts.values()].map((h) => this.engine.isRunning(h.containerId)));
    if (running.every(Boolean)) return true;
    this.markGone(id);
    return false;
  }

  /**
   * Stops everything. By default every sandbox is removed (Ctrl-C leaves
   * nothing behind); with keepSandboxes the next server re-adopts them.
   */
  async shutdown({ keepSandboxes = false } = {}): Promise<void> {
    this.closing = true;
    if (this.reaper) clearInterval(this.reaper);
    (this.events as { destroy?: () => void } | null)?.destroy?.();
    // Boots in progress finish first (and remove their sandboxes, seeing `closing`).
    await Promise.allSettled([...this.booting.values()].map((b) => b.promise));
    if (keepSandboxes) {
      await this.pool.stop();
      return;
    }
    await Promise.all([this.pool.drain(), ...[...this.sessions.keys()].map((id) => this.end(id, 'server-stopped'))]);
    await this.engine.removeOrphanCheckers().catch(() => {});
  }
}

