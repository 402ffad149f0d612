/**
 * The progress store: one SQLite file (better-sqlite3, WAL) holding sessions
 * and their sandboxes (so a restarted server re-adopts them) and, later, lab
 * progress. Every write is committed at once. The schema moves forward by
 * numbered migrations recorded in PRAGMA user_version.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  // 1: sessions and the sandboxes (hosts) that belong to them
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     learner TEXT NOT NULL,
     lab TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     last_active_at INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX sessions_learner ON sessions(learner, lab);
   CREATE TABLE session_hosts (
     session_id TEXT NOT NULL REFERENCES sessions(id),
     host TEXT NOT NULL,
     container_id TEXT NOT NULL,
     volume TEXT NOT NULL,
     PRIMARY KEY (session_id, host)
   );`,
  // 2: lab progress per learner, written the moment it changes
  `CREATE TABLE lab_progress (
     learner TEXT NOT NULL,
     lab TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     finished_at INTEGER,
     faults TEXT NOT NULL DEFAULT '[]',
     PRIMARY KEY (learner, lab)
   );
   CREATE TABLE task_progress (
     learner TEXT NOT NULL,
     lab TEXT NOT NULL,
     task TEXT NOT NULL,
     passed_at INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     hints_used INTEGER NOT NULL DEFAULT 0,
     answer TEXT,
     PRIMARY KEY (learner, lab, task)
   );`,
  // 3: sandboxes no longer have a volume (their disk is a tmpfs); the column names the container
  `ALTER TABLE session_hosts RENAME COLUMN volume TO sandbox_name;`,
  // 4: the name a learner gives for grade exports (learner is the server-issued id, never a cookie)
  `CREATE TABLE learner_names (learner TEXT PRIMARY KEY, name TEXT NOT NULL);`,
  // 5: workshop rooms (lab-server/rooms/room-store.ts): members, the audit log, evidence at pass time, command lines
  `CREATE TABLE rooms (
     code TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     lessons TEXT NOT NULL,
     starts_at INTEGER NOT NULL,
     ends_at INTEGER NOT NULL,
     seats INTEGER NOT NULL,
     faults INTEGER NOT NULL,
     record_commands INTEGER NOT NULL,
     stuck_minutes INTEGER NOT NULL,
     stuck_attempts INTEGER NOT NULL,
     state TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE room_members (
     room TEXT NOT NULL REFERENCES rooms(code),
     learner TEXT NOT NULL,
     name TEXT NOT NULL,
     joined_at INTEGER NOT NULL,
     PRIMARY KEY (room, learner)
   );
   CREATE INDEX room_members_learner ON room_members(learner);
   CREATE TABLE room_audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     room TEXT NOT NULL,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     learner TEXT,
     detail TEXT
   );
   CREATE TABLE room_broadcasts (room TEXT PRIMARY KEY, message TEXT NOT NULL, at INTEGER NOT NULL);
   CREATE TABLE task_evidence (
     learner TEXT NOT NULL,
     lab TEXT NOT NULL,
     task TEXT NOT NULL,
     at INTEGER NOT NULL,
     evidence TEXT NOT NULL,
     PRIMARY KEY (learner, lab, task)
   );
   CREATE TABLE command_lines (learner TEXT NOT NULL, lab TEXT NOT NULL, at INTEGER NOT NULL, line TEXT NOT NULL);
   CREATE INDEX command_lines_learner ON command_lines(learner, at);`,
];

export interface SessionRow {
  id: string;
  learner: string;
  lab: string;
  createdAt: number;
  expiresAt: number;
  lastActiveAt: number;
  endedAt: number | null;
  endReason: string | null;
}

export interface HostRow {
  sessionId: string;
  host: string;
  containerId: string;
  /** The sandbox container's name (vethlab-<session>-<host>). */
  sandboxName: string;
}

export interface LabProgressRow {
  learner: string;
  lab: string;
  startedAt: number;
  finishedAt: number | null;
  faults: string[];
}

export interface TaskProgressRow {
  task: string;
  passedAt: number | null;
  attempts: number;
  hintsUsed: number;
  answer: string | null;
}

export class StoreUnavailableError extends Error {
  constructor(file: string, cause: unknown) {
    super(`Progress store ${file} cannot be opened or written: ${(cause as Error).message}. Check that the directory exists, is writable and has free space.`);
    this.name = 'StoreUnavailableError';
  }
}

export class Store {
  readonly db: Database.Database;

  constructor(readonly file: string) {
    try {
      if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (err) {
      throw new StoreUnavailableError(file, err);
    }
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(`store schema version ${current} is newer than this lab-server knows (${MIGRATIONS.length}); upgrade vethlab`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** What the last probe found (the migrations at open were the first). Reading it writes nothing. */
  lastKnownWritable = true;

  /** Can the store be written right now (disk not full, file not read-only)? A write transaction: not for every request. */
  writable(): boolean {
    try {
      this.db.exec('BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS _probe (x); INSERT INTO _probe VALUES (1); DELETE FROM _probe; COMMIT;');
      this.lastKnownWritable = true;
    } catch {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // no transaction open
      }
      this.lastKnownWritable = false;
    }
    return this.lastKnownWritable;
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  insertSession(row: Omit<SessionRow, 'endedAt' | 'endReason'>, hosts: HostRow[]): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO sessions (id, learner, lab, created_at, expires_at, last_active_at)
           VALUES (@id, @learner, @lab, @createdAt, @expiresAt, @lastActiveAt)`,
        )
        .run(row);
      const insertHost = this.db.prepare(
        `INSERT INTO session_hosts (session_id, host, container_id, sandbox_name) VALUES (@sessionId, @host, @containerId, @sandboxName)`,
      );
      for (const h of hosts) insertHost.run(h);
    })();
  }

  extendSession(id: string, expiresAt: number, lastActiveAt: number): void {
    this.db.prepare(`UPDATE sessions SET expires_at = ?, last_active_at = ? WHERE id = ?`).run(expiresAt, lastActiveAt, id);
  }

  touchSession(id: string, at: number): void {
    this.db.prepare(`UPDATE sessions SET last_active_at = ? WHERE id = ?`).run(at, id);
  }

  endSession(id: string, reason: string, at = Date.now()): void {
    this.db.prepare(`UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL`).run(at, reason, id);
  }

  getSession(id: string): SessionRow | undefined {
    return this.db
      .prepare(
        `SELECT id, learner, lab, created_at AS createdAt, expires_at AS expiresAt, last_active_at AS lastActiveAt,
                ended_at AS endedAt, end_reason AS endReason
         FROM sessions WHERE id = ?`,
      )
      .get(id) as SessionRow | undefined;
  }

  liveSessions(): SessionRow[] {
    return this.db
      .prepare(
        `SELECT id, learner, lab, created_at AS createdAt, expires_at AS expiresAt, last_active_at AS lastActiveAt,
                ended_at AS endedAt, end_reason AS endReason
         FROM sessions WHERE ended_at IS NULL`,
      )
      .all() as SessionRow[];
  }

  hostsOf(sessionId: string): HostRow[] {
    return this.db
      .prepare(`SELECT session_id AS sessionId, host, container_id AS containerId, sandbox_name AS sandboxName FROM session_hosts WHERE session_id = ? ORDER BY host`)
      .all(sessionId) as HostRow[];
  }

  /** The learner's run of a lab, created on first start with the faults drawn for them. */
  startLab(learner: string, lab: string, faults: string[], at = Date.now()): LabProgressRow {
    this.db
      .prepare(`INSERT INTO lab_progress (learner, lab, started_at, faults) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(learner, lab, at, JSON.stringify(faults));
    return this.labProgress(learner, lab)!;
  }

  labProgress(learner: string, lab: string): LabProgressRow | undefined {
    const row = this.db
      .prepare(`SELECT learner, lab, started_at AS startedAt, finished_at AS finishedAt, faults FROM lab_progress WHERE learner = ? AND lab = ?`)
      .get(learner, lab) as (Omit<LabProgressRow, 'faults'> & { faults: string }) | undefined;
    return row && { ...row, faults: JSON.parse(row.faults) as string[] };
  }

  finishLab(learner: string, lab: string, at = Date.now()): void {
    this.db.prepare(`UPDATE lab_progress SET finished_at = ? WHERE learner = ? AND lab = ? AND finished_at IS NULL`).run(at, learner, lab);
  }

  /** Starts a lab over: tasks pending again; hints already used still count. */
  resetLab(learner: string, lab: string, at = Date.now()): void {
    this.db.transaction(() => {
      this.db.prepare(`UPDATE lab_progress SET started_at = ?, finished_at = NULL WHERE learner = ? AND lab = ?`).run(at, learner, lab);
      this.db.prepare(`UPDATE task_progress SET passed_at = NULL, answer = NULL WHERE learner = ? AND lab = ?`).run(learner, lab);
    })();
  }

  tasks(learner: string, lab: string): TaskProgressRow[] {
    return this.db
      .prepare(`SELECT task, passed_at AS passedAt, attempts, hints_used AS hintsUsed, answer FROM task_progress WHERE learner = ? AND lab = ?`)
      .all(learner, lab) as TaskProgressRow[];
  }

  private upsertTask(learner: string, lab: string, task: string, set: string, ...values: unknown[]): void {
    this.db
      .prepare(`INSERT INTO task_progress (learner, lab, task) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(learner, lab, task);
    this.db.prepare(`UPDATE task_progress SET ${set} WHERE learner = ? AND lab = ? AND task = ?`).run(...values, learner, lab, task);
  }

  passTask(learner: string, lab: string, task: string, at = Date.now()): void {
    this.db.transaction(() => this.upsertTask(learner, lab, task, 'passed_at = COALESCE(passed_at, ?)', at))();
  }

  /** What the checker saw when the task passed (kept until it passes again after a reset). */
  saveEvidence(learner: string, lab: string, task: string, evidence: unknown, at = Date.now()): void {
    this.db
      .prepare(`INSERT INTO task_evidence (learner, lab, task, at, evidence) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(learner, lab, task) DO UPDATE SET at = excluded.at, evidence = excluded.evidence`)
      .run(learner, lab, task, at, JSON.stringify(evidence));
  }

  countAttempt(learner: string, lab: string, task: string): void {
    this.db.transaction(() => this.upsertTask(learner, lab, task, 'attempts = attempts + 1'))();
  }

  useHint(learner: string, lab: string, task: string, max: number): number {
    return this.db.transaction(() => {
      this.upsertTask(learner, lab, task, 'hints_used = MIN(hints_used + 1, ?)', max);
      return (this.db.prepare(`SELECT hints_used AS n FROM task_progress WHERE learner = ? AND lab = ? AND task = ?`).get(learner, lab, task) as { n: number }).n;
    })();
  }

  /** Saves the answer; its verdict counts the attempt (LabRunner), once. */
  saveAnswer(learner: string, lab: string, task: string, answer: string): void {
    this.db.transaction(() => this.upsertTask(learner, lab, task, 'answer = ?', answer))();
  }

  setName(learner: string, name: string): void {
    this.db.prepare(`INSERT INTO learner_names (learner, name) VALUES (?, ?) ON CONFLICT(learner) DO UPDATE SET name = excluded.name`).run(learner, name);
  }

  nameOf(learner: string): string | undefined {
    return (this.db.prepare(`SELECT name FROM learner_names WHERE learner = ?`).get(learner) as { name: string } | undefined)?.name;
  }

  /** Every learner's progress in a lab (for grade export). */
  labRuns(lab: string): { progress: LabProgressRow; tasks: TaskProgressRow[] }[] {
    const learners = this.db.prepare(`SELECT learner FROM lab_progress WHERE lab = ? ORDER BY started_at`).all(lab) as { learner: string }[];
    return learners.map(({ learner }) => ({ progress: this.labProgress(learner, lab)!, tasks: this.tasks(learner, lab) }));
  }

  close(): void {
    this.db.close();
  }
}
