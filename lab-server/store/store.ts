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
  volume: string;
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
        `INSERT INTO session_hosts (session_id, host, container_id, volume) VALUES (@sessionId, @host, @containerId, @volume)`,
      );
      for (const h of hosts) insertHost.run(h);
    })();
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
      .prepare(`SELECT session_id AS sessionId, host, container_id AS containerId, volume FROM session_hosts WHERE session_id = ? ORDER BY host`)
      .all(sessionId) as HostRow[];
  }

  close(): void {
    this.db.close();
  }
}
