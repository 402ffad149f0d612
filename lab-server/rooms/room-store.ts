/**
 * Rooms in the progress store (tables of migration 5 in store/store.ts):
 * rooms, their members and display names, the audit log, the last
 * broadcast, evidence at pass time and recorded command lines. Every write
 * is committed at once, like the rest of the store.
 */
import { WORKSHOP_PAGE, type RoomInfo } from '../../protocol/room';
import type { Store } from '../store/store';

export interface RoomRow {
  code: string;
  name: string;
  lessons: string[];
  startsAt: number;
  endsAt: number;
  seats: number;
  faults: boolean;
  recordCommands: boolean;
  stuckMinutes: number;
  stuckAttempts: number;
  state: 'open' | 'closed' | 'ended';
  createdAt: number;
}

export interface MemberRow {
  room: string;
  learner: string;
  name: string;
  joinedAt: number;
}

export interface AuditRow {
  at: number;
  actor: 'instructor' | 'assistant' | 'learner';
  action: string;
  learner: string | null;
  detail: string | null;
}

type RawRoom = Omit<RoomRow, 'lessons' | 'faults' | 'recordCommands'> & { lessons: string; faults: number; recordCommands: number };

const ROOM_COLUMNS = `code, name, lessons, starts_at AS startsAt, ends_at AS endsAt, seats, faults, record_commands AS recordCommands,
  stuck_minutes AS stuckMinutes, stuck_attempts AS stuckAttempts, state, created_at AS createdAt`;

function toRoom(r: RawRoom): RoomRow {
  return { ...r, lessons: JSON.parse(r.lessons) as string[], faults: r.faults === 1, recordCommands: r.recordCommands === 1 };
}

/** A room as the API shows it. */
export function roomInfo(r: RoomRow, members: number): RoomInfo {
  return {
    code: r.code,
    name: r.name,
    lessons: r.lessons,
    startsAt: new Date(r.startsAt).toISOString(),
    endsAt: new Date(r.endsAt).toISOString(),
    seats: r.seats,
    members,
    faults: r.faults,
    recordCommands: r.recordCommands,
    stuckMinutes: r.stuckMinutes,
    stuckAttempts: r.stuckAttempts,
    state: r.state,
    joinPath: `${WORKSHOP_PAGE}?code=${r.code}`,
  };
}

export class RoomStore {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  insertRoom(r: RoomRow): void {
    this.db
      .prepare(
        `INSERT INTO rooms (code, name, lessons, starts_at, ends_at, seats, faults, record_commands, stuck_minutes, stuck_attempts, state, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.code, r.name, JSON.stringify(r.lessons), r.startsAt, r.endsAt, r.seats, r.faults ? 1 : 0, r.recordCommands ? 1 : 0, r.stuckMinutes, r.stuckAttempts, r.state, r.createdAt);
  }

  room(code: string): RoomRow | undefined {
    const r = this.db.prepare(`SELECT ${ROOM_COLUMNS} FROM rooms WHERE code = ?`).get(code) as RawRoom | undefined;
    return r && toRoom(r);
  }

  rooms(): RoomRow[] {
    return (this.db.prepare(`SELECT ${ROOM_COLUMNS} FROM rooms ORDER BY created_at DESC`).all() as RawRoom[]).map(toRoom);
  }

  setState(code: string, state: RoomRow['state']): void {
    this.db.prepare(`UPDATE rooms SET state = ? WHERE code = ?`).run(state, code);
  }

  setEndsAt(code: string, endsAt: number): void {
    this.db.prepare(`UPDATE rooms SET ends_at = ? WHERE code = ?`).run(endsAt, code);
  }

  /** Adds the learner if a seat is free (one transaction: two joins cannot take the last seat twice); a member joining again keeps their seat. */
  join(code: string, learner: string, name: string, seats: number, at = Date.now()): 'joined' | 'full' {
    return this.db.transaction(() => {
      const existing = this.db.prepare(`SELECT 1 FROM room_members WHERE room = ? AND learner = ?`).get(code, learner);
      if (existing) {
        this.db.prepare(`UPDATE room_members SET name = ? WHERE room = ? AND learner = ?`).run(name, code, learner);
        return 'joined' as const;
      }
      const n = (this.db.prepare(`SELECT COUNT(*) AS n FROM room_members WHERE room = ?`).get(code) as { n: number }).n;
      if (n >= seats) return 'full' as const;
      this.db.prepare(`INSERT INTO room_members (room, learner, name, joined_at) VALUES (?, ?, ?, ?)`).run(code, learner, name, at);
      return 'joined' as const;
    })();
  }

  members(code: string): MemberRow[] {
    return this.db.prepare(`SELECT room, learner, name, joined_at AS joinedAt FROM room_members WHERE room = ? ORDER BY joined_at, rowid`).all(code) as MemberRow[];
  }

  memberCount(code: string): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM room_members WHERE room = ?`).get(code) as { n: number }).n;
  }

  /** The learner's most recently joined room that is not ended. */
  roomOf(learner: string): { room: RoomRow; member: MemberRow } | undefined {
    const m = this.db
      .prepare(
        `SELECT m.room, m.learner, m.name, m.joined_at AS joinedAt FROM room_members m JOIN rooms r ON r.code = m.room
         WHERE m.learner = ? AND r.state != 'ended' ORDER BY m.joined_at DESC LIMIT 1`,
      )
      .get(learner) as MemberRow | undefined;
    return m && { room: this.room(m.room)!, member: m };
  }

  audit(code: string, row: AuditRow): void {
    this.db.prepare(`INSERT INTO room_audit (room, at, actor, action, learner, detail) VALUES (?, ?, ?, ?, ?, ?)`).run(code, row.at, row.actor, row.action, row.learner, row.detail);
  }

  auditLog(code: string, limit = 200): AuditRow[] {
    return (
      this.db.prepare(`SELECT at, actor, action, learner, detail FROM room_audit WHERE room = ? ORDER BY id DESC LIMIT ?`).all(code, limit) as AuditRow[]
    ).reverse();
  }

  setBroadcast(code: string, message: string, at: number): void {
    this.db.prepare(`INSERT INTO room_broadcasts (room, message, at) VALUES (?, ?, ?) ON CONFLICT(room) DO UPDATE SET message = excluded.message, at = excluded.at`).run(code, message, at);
  }

  lastBroadcast(code: string): { message: string; at: number } | undefined {
    return this.db.prepare(`SELECT message, at FROM room_broadcasts WHERE room = ?`).get(code) as { message: string; at: number } | undefined;
  }

  evidence(learner: string, lab: string): Map<string, unknown> {
    const rows = this.db.prepare(`SELECT task, evidence FROM task_evidence WHERE learner = ? AND lab = ?`).all(learner, lab) as { task: string; evidence: string }[];
    return new Map(rows.map((r) => [r.task, JSON.parse(r.evidence) as unknown]));
  }

  addCommand(learner: string, lab: string, line: string, at = Date.now()): void {
    this.db.prepare(`INSERT INTO command_lines (learner, lab, at, line) VALUES (?, ?, ?, ?)`).run(learner, lab, at, line);
  }

  commands(learner: string, since: number): { at: number; lab: string; line: string }[] {
    return this.db.prepare(`SELECT at, lab, line FROM command_lines WHERE learner = ? AND at >= ? ORDER BY at, rowid`).all(learner, since) as { at: number; lab: string; line: string }[];
  }
}
