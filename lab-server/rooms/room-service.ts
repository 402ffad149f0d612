/**
 * Workshop rooms: their lifecycle (create, join by code, close, reopen,
 * end), the live dashboard state (a row per learner, pushed to every viewer
 * of the room when it changes, never polled per viewer), who is watching
 * whom (shadowing), take-over consent, help actions (broadcast, hints,
 * reset, more time), the audit log, the warm pool sized from seats, and
 * command lines for rooms that record them. HTTP and sockets are in
 * room-api.ts; this file owns the state and the rules.
 */
import { randomInt } from 'node:crypto';
import {
  ROOM_CODE_ALPHABET,
  type AuditEntry,
  type Cell,
  type CreateRoomRequest,
  type DashboardServerMessage,
  type LearnerRow,
  type MyRoom,
  type RoomEvent,
  type RoomInfo,
  type StuckFlag,
} from '../../protocol/room';
import type { Identity, StaffRole } from '../api/identity';
import { RequestError } from '../errors';
import type { LabService } from '../labs/lab-service';
import { localize } from '../labs/schema';
import type { Logger } from '../log';
import type { SandboxPool } from '../sandbox/sandbox-pool';
import type { Session, SessionManager } from '../sessions/session-manager';
import type { Store } from '../store/store';
import type { TerminalRegistry } from '../terminal/terminal-registry';
import { roomGrades, type RoomGradesWithLabs } from './room-grades';
import { RoomStore, roomInfo, type MemberRow, type RoomRow } from './room-store';

/** The pool grows to a room's free seats this long before it starts. */
export const POOL_LEAD_MS = 15 * 60_000;
/** Time-based flags (no progress for N minutes) are re-evaluated this often; changes are pushed as they happen. */
const TICK_MS = 15_000;
/** Never ask the pool for more than this, whatever the seats say (admission still limits sessions). */
const MAX_POOL_FROM_ROOMS = 60;
const MAX_LINE_CHARS = 500;

/** A dashboard page: how the service talks to it. */
export interface DashboardViewer {
  role: StaffRole;
  send(msg: DashboardServerMessage): void;
}

/** A shadowing page of one learner's session. */
export interface ShadowWatcher {
  role: StaffRole;
  learner: string;
  sessionId: string;
  control(state: 'none' | 'requested' | 'granted'): void;
}

type Takeover = { state: 'requested' | 'granted'; lab: string };

export class RoomService {
  readonly rooms: RoomStore;
  private readonly viewers = new Map<string, Set<DashboardViewer>>();
  private readonly watchers = new Map<string, Set<ShadowWatcher>>();
  private readonly takeovers = new Map<string, Takeover>();
  /** The last row sent per room and learner (JSON): only changes go out. */
  private readonly sentRows = new Map<string, string>();
  /** Labs whose sandbox died under a learner, until a new one is ready. */
  private readonly gone = new Set<string>();
  /** Typed text not yet ended by Enter, per session terminal (rooms that record command lines). */
  private readonly lineBuffers = new Map<string, string>();
  private readonly unsubscribe: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** What the dashboards cost the server: rows computed (and the time that took), row messages sent. For `npm run load -- --room`. */
  readonly stats = { rowsComputed: 0, rowMs: 0, rowsSent: 0 };

  constructor(
    private readonly deps: {
      store: Store;
      sessions: SessionManager;
      labs: LabService;
      registry: TerminalRegistry;
      pool: SandboxPool;
      identity: Identity;
      log: Logger;
    },
  ) {
    this.rooms = new RoomStore(deps.store);
    const { sessions, labs, registry } = deps;
    labs.faultsAllowed = (learner, lab) => {
      const mine = this.rooms.roomOf(learner);
      return !mine || !mine.room.lessons.includes(lab) || mine.room.faults;
    };
    this.unsubscribe.push(labs.onStatus((id) => this.sessionChanged(id)));
    const onReady = (s: Session) => {
      this.sessionLearners.set(s.id, { learner: s.learner, lab: s.lab });
      this.gone.delete(`${s.learner}\n${s.lab}`);
      this.learnerChanged(s.learner);
    };
    const onGone = (id: string) => {
      const s = sessions.find(id);
      if (s) this.gone.add(`${s.learner}\n${s.lab}`);
      this.sessionChanged(id);
    };
    const onEnded = (id: string, reason: string) => {
      const learner = this.sessionLearners.get(id);
      this.sessionLearners.delete(id);
      if (learner && reason === 'sandbox-gone') this.gone.add(`${learner.learner}\n${learner.lab}`);
      if (learner) this.learnerChanged(learner.learner);
    };
    const onAttached = (id: string) => this.greet(id);
    sessions.on('ready', onReady);
    sessions.on('gone', onGone);
    sessions.on('ended', onEnded);
    registry.on('attached', onAttached);
    this.unsubscribe.push(
      () => sessions.off('ready', onReady),
      () => sessions.off('gone', onGone),
      () => sessions.off('ended', onEnded),
      () => registry.off('attached', onAttached),
    );
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.sizePool();
  }

  /** Who a session belonged to, remembered while it lives (an ended session is no longer in the manager). */
  private readonly sessionLearners = new Map<string, { learner: string; lab: string }>();

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    for (const u of this.unsubscribe) u();
    this.viewers.clear();
  }

  // ---- rooms ---------------------------------------------------------------

  create(body: CreateRoomRequest & { faults: boolean; recordCommands: boolean; stuckMinutes: number; stuckAttempts: number }, role: StaffRole): RoomInfo {
    for (const lab of body.lessons) if (!this.deps.labs.catalog.get(lab)) throw new RequestError('unknown-lab', `There is no lab called "${lab}".`);
    let code = '';
    for (let i = 0; i < 20 && (!code || this.rooms.room(code)); i++) {
      code = Array.from({ length: 6 }, () => ROOM_CODE_ALPHABET[randomInt(ROOM_CODE_ALPHABET.length)]).join('');
    }
    const row: RoomRow = {
      code,
      name: body.name,
      lessons: [...new Set(body.lessons)],
      startsAt: Date.parse(body.startsAt),
      endsAt: Date.parse(body.endsAt),
      seats: body.seats,
      faults: body.faults,
      recordCommands: body.recordCommands,
      stuckMinutes: body.stuckMinutes,
      stuckAttempts: body.stuckAttempts,
      state: 'open',
      createdAt: Date.now(),
    };
    this.rooms.insertRoom(row);
    this.audit(code, role, 'create', undefined, `${row.name}: ${row.lessons.join(', ')}, ${row.seats} seats`);
    this.sizePool();
    return this.info(row);
  }

  room(code: string): RoomRow {
    const room = this.rooms.room(code);
    if (!room) throw new RequestError('unknown-room', `There is no room with the code ${code}. Check the code your instructor gave.`);
    return room;
  }

  info(r: RoomRow): RoomInfo {
    return roomInfo(r, this.rooms.memberCount(r.code));
  }

  list(): RoomInfo[] {
    return this.rooms.rooms().map((r) => this.info(r));
  }

  /** A learner joins by code with a display name: refused for an unknown, closed, ended, over or full room. */
  join(learner: string, code: string, name: string): MyRoom {
    const room = this.room(code);
    if (room.state !== 'open' || Date.now() >= room.endsAt) throw new RequestError('room-closed', `The room "${room.name}" is not open for joining; ask your instructor.`);
    if (this.rooms.join(code, learner, name, room.seats) === 'full') throw new RequestError('room-full', `All ${room.seats} seats of "${room.name}" are taken; ask your instructor for a seat.`);
    this.deps.store.setName(learner, name);
    this.pushRoom(code);
    this.learnerChanged(learner);
    this.sizePool();
    return this.mine(learner)!;
  }

  mine(learner: string): MyRoom | undefined {
    const m = this.rooms.roomOf(learner);
    if (!m) return undefined;
    const b = this.rooms.lastBroadcast(m.room.code);
    return {
      code: m.room.code,
      name: m.room.name,
      lessons: m.room.lessons,
      endsAt: new Date(m.room.endsAt).toISOString(),
      state: m.room.state,
      recordCommands: m.room.recordCommands,
      displayName: m.member.name,
      ...(b ? { lastBroadcast: { message: b.message, at: new Date(b.at).toISOString() } } : {}),
    };
  }

  /**
   * May this learner start a sandbox for this lab? Not for a lesson of a
   * room they joined that is closed or ended (close frees the sandboxes; a
   * page reconnecting must not take them back).
   */
  mayStart(learner: string, lab: string): void {
    const m = this.rooms.roomOf(learner);
    const closed = m && m.room.lessons.includes(lab) && m.room.state === 'closed';
    if (closed) throw new RequestError('room-closed', `The room "${m.room.name}" is closed for now; your progress is kept. Your instructor can reopen it.`);
  }

  async close(code: string, role: StaffRole): Promise<RoomInfo> {
    const room = this.room(code);
    this.rooms.setState(code, 'closed');
    this.audit(code, role, 'close');
    await this.freeSandboxes(room, 'room-closed', 'The room was closed by the instructor; your progress is kept.');
    this.pushRoom(code);
    this.sizePool();
    return this.info(this.room(code));
  }

  reopen(code: string, role: StaffRole): RoomInfo {
    const room = this.room(code);
    if (room.state === 'open') return this.info(room);
    this.rooms.setState(code, 'open');
    this.audit(code, role, 'reopen');
    this.pushRoom(code);
    this.sizePool();
    return this.info(this.room(code));
  }

  /** Ends everything at once: every sandbox of the room, joins and starts refused; grades stay. */
  async end(code: string, role: StaffRole): Promise<RoomInfo> {
    const room = this.room(code);
    this.rooms.setState(code, 'closed');
    this.audit(code, role, 'end');
    await this.freeSandboxes(room, 'room-ended', 'The workshop has ended. Thank you! Your progress is kept.');
    this.rooms.setState(code, 'ended');
    this.pushRoom(code);
    this.sizePool();
    return this.info(this.room(code));
  }

  private async freeSandboxes(room: RoomRow, reason: string, message: string): Promise<void> {
    const ends: Promise<void>[] = [];
    for (const m of this.rooms.members(room.code)) {
      this.notify(m.learner, { kind: 'ended', message });
      for (const s of this.deps.sessions.ofLearner(m.learner)) if (room.lessons.includes(s.lab)) ends.push(this.deps.sessions.end(s.id, reason));
    }
    await Promise.all(ends);
  }

  // ---- help ------------------------------------------------------------------

  broadcast(code: string, role: StaffRole, message: string): number {
    const room = this.room(code);
    const at = Date.now();
    this.rooms.setBroadcast(code, message, at);
    const members = this.rooms.members(room.code);
    for (const m of members) this.notify(m.learner, { kind: 'broadcast', message, at: new Date(at).toISOString() });
    this.audit(code, role, 'broadcast', undefined, message);
    return members.length;
  }

  /** Reveals the task's next hint to one learner, or to every member still on the task. */
  pushHint(code: string, role: StaffRole, lab: string, task: string, pseudonym?: string): number {
    const room = this.room(code);
    const def = this.labOf(room, lab);
    const t = def.tasks.find((x) => x.id === task);
    if (!t) throw new RequestError('unknown-task', `Lab ${lab} has no task "${task}".`);
    if (t.hints.length === 0) throw new RequestError('unknown-task', `Task "${task}" has no hints to push.`);
    const targets = pseudonym
      ? [this.member(room, pseudonym)]
      : this.rooms.members(code).filter((m) => {
          const row = this.deps.store.tasks(m.learner, lab).find((r) => r.task === task);
          return this.deps.store.labProgress(m.learner, lab) && !row?.passedAt;
        });
    for (const m of targets) {
      const session = this.sessionOf(m.learner, lab);
      const runner = session && this.deps.labs.runner(session.id);
      const n = runner ? (runner.revealHint(task, 'en')?.length ?? 0) : this.deps.store.useHint(m.learner, lab, task, t.hints.length);
      const hint = t.hints[Math.max(0, n - 1)]!;
      this.notify(m.learner, { kind: 'hint', lab, task, text: { en: localize(hint, 'en'), 'zh-Hans': localize(hint, 'zh-Hans') } });
      this.learnerChanged(m.learner);
    }
    this.audit(code, role, 'hint', pseudonym, `${lab}/${task} to ${targets.length} learner(s)`);
    return targets.length;
  }

  /** Starts one learner's lab over in a fresh sandbox (their page follows); tasks pending again. */
  async reset(code: string, role: StaffRole, pseudonym: string, lab: string): Promise<void> {
    const room = this.room(code);
    this.labOf(room, lab);
    const m = this.member(room, pseudonym);
    this.audit(code, role, 'reset', pseudonym, lab);
    const session = this.sessionOf(m.learner, lab);
    if (!session) {
      this.deps.store.resetLab(m.learner, lab);
      this.learnerChanged(m.learner);
      return;
    }
    this.notify(m.learner, { kind: 'reset' }, lab);
    const fresh = await this.deps.sessions.restart(session.id, m.learner);
    this.deps.labs.runner(fresh.id)?.reset(fresh.hosts);
    this.learnerChanged(m.learner);
  }

  /** More time: one learner's sandboxes, or the whole room (its end and every member's sandboxes). */
  extend(code: string, role: StaffRole, minutes: number, pseudonym?: string): string {
    const room = this.room(code);
    const ms = minutes * 60_000;
    const members = pseudonym ? [this.member(room, pseudonym)] : this.rooms.members(code);
    let until = Date.now() + ms;
    if (!pseudonym) {
      until = Math.max(room.endsAt, Date.now()) + ms;
      this.rooms.setEndsAt(code, until);
    }
    for (const m of members) {
      for (const s of this.deps.sessions.ofLearner(m.learner)) {
        if (!room.lessons.includes(s.lab)) continue;
        this.deps.sessions.extend(s.id, Math.max(s.expiresAt + ms, until));
      }
      this.notify(m.learner, { kind: 'extended', until: new Date(until).toISOString() });
    }
    this.audit(code, role, 'extend', pseudonym, `${minutes} min`);
    this.pushRoom(code);
    return new Date(until).toISOString();
  }

  // ---- shadowing and take-over -----------------------------------------------

  /** A shadow view opens: counted, shown to the learner, audited. Returns its dispose. */
  watch(code: string, w: ShadowWatcher, lab: string): () => void {
    let set = this.watchers.get(w.sessionId);
    if (!set) this.watchers.set(w.sessionId, (set = new Set()));
    set.add(w);
    this.audit(code, w.role, 'shadow', this.deps.identity.pseudonym(w.learner), lab);
    this.notifySession(w.sessionId, { kind: 'watched', watchers: set.size });
    const t = this.takeovers.get(w.learner);
    w.control(t && t.lab === lab && w.role === 'instructor' ? t.state : 'none');
    this.learnerChanged(w.learner);
    return () => {
      set.delete(w);
      if (set.size === 0) this.watchers.delete(w.sessionId);
      this.notifySession(w.sessionId, { kind: 'watched', watchers: set.size });
      // The instructor's view closed: their control of the learner's terminal ends with it.
      if (set.size === 0 && this.takeovers.has(w.learner)) {
        this.takeovers.delete(w.learner);
        this.notify(w.learner, { kind: 'takeover', state: 'none' });
      }
      this.learnerChanged(w.learner);
    };
  }

  /** The instructor asks to type in a learner's terminal; only the learner's acceptance grants it. */
  requestTakeover(code: string, role: StaffRole, pseudonym: string, lab: string): void {
    const room = this.room(code);
    this.labOf(room, lab);
    const m = this.member(room, pseudonym);
    if (!this.sessionOf(m.learner, lab)) throw new RequestError('not-started', 'This learner has no live sandbox for that lab.');
    this.takeovers.set(m.learner, { state: 'requested', lab });
    this.audit(code, role, 'takeover-request', pseudonym, lab);
    this.notify(m.learner, { kind: 'takeover', state: 'requested' }, lab);
    this.controlChanged(m.learner);
  }

  /** The learner answers (or later withdraws) a take-over. */
  answerTakeover(learner: string, accept: boolean): 'none' | 'granted' {
    const mine = this.rooms.roomOf(learner);
    const t = this.takeovers.get(learner);
    if (!mine || !t) throw new RequestError('not-in-room', 'Nobody asked to take over your terminal.');
    const pseudonym = this.deps.identity.pseudonym(learner);
    if (accept && t.state === 'requested') {
      t.state = 'granted';
      this.audit(mine.room.code, 'learner', 'takeover', pseudonym, `${t.lab}: accepted`);
    } else if (!accept) {
      this.takeovers.delete(learner);
      this.audit(mine.room.code, 'learner', 'takeover-end', pseudonym, `${t.lab}: ${t.state === 'granted' ? 'taken back' : 'declined'}`);
    }
    const state = this.takeovers.get(learner)?.state ?? 'none';
    this.notify(learner, { kind: 'takeover', state: state === 'granted' ? 'granted' : 'none' });
    this.controlChanged(learner);
    return state === 'granted' ? 'granted' : 'none';
  }

  /** May this instructor view type into the learner's terminal of this lab now? */
  mayType(w: ShadowWatcher, lab: string): boolean {
    const t = this.takeovers.get(w.learner);
    return w.role === 'instructor' && t?.state === 'granted' && t.lab === lab;
  }

  private controlChanged(learner: string): void {
    const t = this.takeovers.get(learner);
    for (const set of this.watchers.values()) {
      for (const w of set) {
        if (w.learner !== learner) continue;
        const lab = this.deps.sessions.find(w.sessionId)?.lab;
        w.control(t && t.lab === lab && w.role === 'instructor' ? t.state : 'none');
      }
    }
    this.learnerChanged(learner);
  }

  // ---- lookups ---------------------------------------------------------------

  labOf(room: RoomRow, lab: string) {
    const def = room.lessons.includes(lab) ? this.deps.labs.catalog.get(lab) : undefined;
    if (!def) throw new RequestError('unknown-lab', `The room has no lesson with the lab "${lab}".`);
    return def;
  }

  /** The member behind a pseudonym; the same error for "no such learner" and "not in this room". */
  member(room: RoomRow, pseudonym: string): MemberRow {
    const m = this.rooms.members(room.code).find((x) => this.deps.identity.pseudonym(x.learner) === pseudonym);
    if (!m) throw new RequestError('not-in-room', `No learner ${pseudonym} in this room.`);
    return m;
  }

  sessionOf(learner: string, lab: string): Session | undefined {
    return this.deps.sessions.ofLearner(learner).find((s) => s.lab === lab);
  }

  // ---- learner events ----------------------------------------------------------

  /** Tells the learner's pages (every live session's terminals, or only the lab's). */
  notify(learner: string, event: RoomEvent, lab?: string): void {
    for (const s of this.deps.sessions.ofLearner(learner)) if (!lab || s.lab === lab) this.deps.registry.broadcast(s.id, { type: 'room', event });
  }

  private notifySession(sessionId: string, event: RoomEvent): void {
    this.deps.registry.broadcast(sessionId, { type: 'room', event });
  }

  /** A page attached: tell it what holds for it now (being watched, a take-over asked, recording on). */
  private greet(sessionId: string): void {
    const s = this.deps.sessions.find(sessionId);
    if (!s) return;
    this.sessionLearners.set(s.id, { learner: s.learner, lab: s.lab });
    const mine = this.rooms.roomOf(s.learner);
    if (!mine || !mine.room.lessons.includes(s.lab)) return;
    const watchers = this.watchers.get(sessionId)?.size ?? 0;
    if (watchers) this.notifySession(sessionId, { kind: 'watched', watchers });
    const t = this.takeovers.get(s.learner);
    if (t && t.lab === s.lab) this.notifySession(sessionId, { kind: 'takeover', state: t.state });
    if (mine.room.recordCommands) this.notifySession(sessionId, { kind: 'recording', on: true });
  }

  /** Input a learner typed: kept as command lines when their room records them (announced on their page). */
  recordInput(sessionId: string, terminalId: string, data: string): void {
    const s = this.deps.sessions.find(sessionId);
    if (!s) return;
    const mine = this.rooms.roomOf(s.learner);
    if (!mine?.room.recordCommands || !mine.room.lessons.includes(s.lab)) return;
    const key = `${sessionId}/${terminalId}`;
    let buf = this.lineBuffers.get(key) ?? '';
    for (const ch of data) {
      if (ch === '\r' || ch === '\n') {
        const line = buf.trim();
        buf = '';
        if (line) this.rooms.addCommand(s.learner, s.lab, line);
      } else if (ch === '\x7f' || ch === '\b') buf = buf.slice(0, -1);
      else if (ch === '\x03' || ch === '\x15') buf = '';
      else if (ch >= ' ' && buf.length < MAX_LINE_CHARS) buf += ch;
    }
    this.lineBuffers.set(key, buf);
  }

  // ---- dashboard -----------------------------------------------------------------

  /** A dashboard page watches a room: the snapshot now, rows as they change. Returns its dispose. */
  view(code: string, viewer: DashboardViewer): () => void {
    const room = this.room(code);
    let set = this.viewers.get(code);
    if (!set) this.viewers.set(code, (set = new Set()));
    set.add(viewer);
    const rows = this.rooms.members(code).map((m) => this.row(room, m));
    for (const r of rows) this.sentRows.set(`${code}\n${r.learner}`, JSON.stringify(r));
    viewer.send({ type: 'snapshot', room: this.info(room), role: viewer.role, rows, audit: this.rooms.auditLog(code).map((a) => this.auditEntry(a)) });
    return () => {
      set.delete(viewer);
      if (set.size === 0) this.viewers.delete(code);
    };
  }

  private sessionChanged(sessionId: string): void {
    const s = this.deps.sessions.find(sessionId);
    if (s) {
      this.sessionLearners.set(s.id, { learner: s.learner, lab: s.lab });
      this.learnerChanged(s.learner);
    }
  }

  /** Recomputes the learner's row in every room they are in that someone watches; sends it if it changed. */
  learnerChanged(learner: string): void {
    if (this.viewers.size === 0) return;
    const codes = (this.deps.store.db.prepare(`SELECT room FROM room_members WHERE learner = ?`).all(learner) as { room: string }[]).map((r) => r.room);
    for (const code of codes) {
      if (!this.viewers.has(code)) continue;
      const room = this.rooms.room(code)!;
      const member = this.rooms.members(code).find((m) => m.learner === learner);
      if (member) this.sendRow(room, member);
    }
  }

  private sendRow(room: RoomRow, member: MemberRow): void {
    const t0 = performance.now();
    const row = this.row(room, member);
    this.stats.rowsComputed++;
    this.stats.rowMs += performance.now() - t0;
    const key = `${room.code}\n${row.learner}`;
    const json = JSON.stringify(row);
    if (this.sentRows.get(key) === json) return;
    this.sentRows.set(key, json);
    for (const v of this.viewers.get(room.code) ?? []) {
      v.send({ type: 'row', row });
      this.stats.rowsSent++;
    }
  }

  private pushRoom(code: string): void {
    const set = this.viewers.get(code);
    if (!set) return;
    const info = this.info(this.room(code));
    for (const v of set) v.send({ type: 'room', room: info });
  }

  /** One learner's row: a cell per task of the room's lessons, what they are on, flags. */
  row(room: RoomRow, member: MemberRow, now = Date.now()): LearnerRow {
    const { store, labs } = this.deps;
    const cells: Record<string, Cell> = {};
    const sandboxes: Record<string, 'live' | 'gone'> = {};
    let current: LearnerRow['current'];
    let currentActivity = -1;
    let currentCell: Cell | undefined;
    let watchers = 0;
    for (const lab of room.lessons) {
      const def = labs.catalog.get(lab);
      if (!def) continue;
      const session = this.sessionOf(member.learner, lab);
      const runner = session && labs.runner(session.id);
      if (session) {
        sandboxes[lab] = session.state === 'ready' ? 'live' : 'gone';
        watchers += this.watchers.get(session.id)?.size ?? 0;
      } else if (this.gone.has(`${member.learner}\n${lab}`)) sandboxes[lab] = 'gone';
      const progress = store.labProgress(member.learner, lab);
      if (!progress) {
        for (const t of def.tasks) cells[`${lab}/${t.id}`] = { status: 'not-started', attempts: 0, hints: 0 };
        continue;
      }
      const live = runner?.status('en').tasks;
      const saved = new Map(store.tasks(member.learner, lab).map((t) => [t.task, t]));
      let lastPass = progress.startedAt;
      let open: string | undefined;
      for (const t of def.tasks) {
        const l = live?.find((x) => x.id === t.id);
        const row = saved.get(t.id);
        const passedAt = row?.passedAt ?? undefined;
        if (passedAt) lastPass = Math.max(lastPass, passedAt);
        const status = passedAt ? 'passed' : (l?.status ?? 'pending');
        const cell: Cell = {
          status,
          ...(l?.reason && status !== 'passed' ? { reason: l.reason } : {}),
          attempts: row?.attempts ?? 0,
          hints: row?.hintsUsed ?? 0,
          ...(passedAt ? { passedAt: new Date(passedAt).toISOString() } : {}),
        };
        cells[`${lab}/${t.id}`] = cell;
        if (!open && !passedAt && !(l?.blocked ?? !t.needs.every((n) => saved.get(n)?.passedAt))) open = t.id;
      }
      // The lab they touched last is the one they are on.
      const activity = Math.max(session?.lastActiveAt ?? 0, lastPass);
      if (open && activity > currentActivity) {
        currentActivity = activity;
        current = { lab, task: open, since: new Date(Math.max(lastPass, member.joinedAt)).toISOString() };
        currentCell = cells[`${lab}/${open}`];
      }
    }
    const flags: StuckFlag[] = [];
    if (current && now - Date.parse(current.since) >= room.stuckMinutes * 60_000) flags.push('no-progress');
    if (currentCell && currentCell.attempts >= room.stuckAttempts) flags.push('many-attempts');
    if (Object.values(sandboxes).includes('gone')) flags.push('sandbox-gone');
    const t = this.takeovers.get(member.learner);
    return {
      learner: this.deps.identity.pseudonym(member.learner),
      name: member.name,
      joinedAt: new Date(member.joinedAt).toISOString(),
      cells,
      ...(current ? { current } : {}),
      sandboxes,
      flags,
      watchers,
      takeover: t?.state ?? 'none',
    };
  }

  // ---- audit, grades, housekeeping ------------------------------------------------

  audit(code: string, actor: StaffRole | 'learner', action: string, learner?: string, detail?: string): void {
    const row = { at: Date.now(), actor, action, learner: learner ?? null, detail: detail ?? null };
    this.rooms.audit(code, row);
    this.deps.log.info({ room: code, actor, action, learner, detail }, 'room audit');
    const entry = this.auditEntry(row);
    for (const v of this.viewers.get(code) ?? []) v.send({ type: 'audit', entry });
  }

  private auditEntry(a: { at: number; actor: StaffRole | 'learner'; action: string; learner: string | null; detail: string | null }): AuditEntry {
    return { at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, ...(a.learner ? { learner: a.learner } : {}), ...(a.detail ? { detail: a.detail } : {}) };
  }

  auditLog(code: string): AuditEntry[] {
    this.room(code);
    return this.rooms.auditLog(code, 10_000).map((a) => this.auditEntry(a));
  }

  /** Per learner and task of the room: passed at, attempts, hints, the evidence at pass time; and each lab's grade. */
  grades(code: string): RoomGradesWithLabs {
    return roomGrades({ store: this.deps.store, rooms: this.rooms, catalog: this.deps.labs.catalog, pseudonym: (l) => this.deps.identity.pseudonym(l) }, this.info(this.room(code)));
  }

  private tick(): void {
    this.sizePool();
    // Rooms past their end close by themselves (sandboxes freed, progress kept).
    for (const r of this.rooms.rooms()) {
      if (r.state === 'open' && Date.now() >= r.endsAt) {
        this.audit(r.code, 'instructor', 'end-time', undefined, 'the room reached its end time');
        void this.close(r.code, 'instructor').catch((err: unknown) => this.deps.log.warn({ err }, 'could not close a room past its end'));
      }
    }
    for (const code of this.viewers.keys()) {
      const room = this.rooms.room(code);
      if (!room) continue;
      for (const m of this.rooms.members(code)) this.sendRow(room, m);
    }
  }

  /**
   * The warm pool holds, besides its own size, a sandbox for every free seat
   * of rooms starting within POOL_LEAD_MS or running: the room's learners
   * get a prompt at once instead of waiting for boots.
   */
  sizePool(now = Date.now()): void {
    const base = this.baseSize ?? (this.baseSize = this.deps.pool.target);
    let seats = 0;
    for (const r of this.rooms.rooms()) {
      if (r.state !== 'open' || now < r.startsAt - POOL_LEAD_MS || now >= r.endsAt) continue;
      const pooled = r.lessons.some((l) => this.deps.labs.catalog.get(l)?.hosts.length === 1);
      if (pooled) seats += Math.max(0, r.seats - this.rooms.memberCount(r.code));
    }
    const target = base + Math.min(MAX_POOL_FROM_ROOMS, seats);
    if (target !== this.deps.pool.target) {
      this.deps.log.info({ target, base }, 'warm pool sized for workshop rooms');
      this.deps.pool.setTarget(target);
    }
  }
  private baseSize: number | undefined;
}
