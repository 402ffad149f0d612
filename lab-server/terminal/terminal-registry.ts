/**
 * The terminals of all sessions: one TerminalSlot per (session, terminal id),
 * created on first attach and closed when the session ends or its sandbox
 * dies.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ServerMessage } from '../../protocol/terminal';
import type { SandboxDriver } from '../sandbox/sandbox-driver';
import type { Session, SessionManager } from '../sessions/session-manager';
import { terminalsOf } from '../sessions/session-manager';
import { TerminalSlot } from './terminal-slot';

export interface TerminalRegistryEvents {
  /** A command finished in one of the session's terminals. */
  prompt: [sessionId: string, terminalId: string];
  /** A page attached to one of the session's terminals. */
  attached: [sessionId: string, terminalId: string];
}

export class TerminalRegistry extends EventEmitter<TerminalRegistryEvents> {
  private readonly slots = new Map<string, Map<string, TerminalSlot>>();
  /** Listeners told when a session's sandbox is gone or the session ended. */
  private readonly goneListeners = new Map<string, Set<(reason: 'sandbox-gone' | 'ended') => void>>();

  /** ring.end of each slot when it was last saved. */
  private readonly savedAt = new WeakMap<TerminalSlot, number>();
  private saver: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: SandboxDriver,
    private readonly sessions: SessionManager,
    /** Where recent output is saved, so a restarted server can replay the screen (none: not saved). */
    private readonly replayDir?: string,
  ) {
    super();
    sessions.on('gone', (id) => this.closeSession(id, 'sandbox-gone'));
    sessions.on('ended', (id) => {
      this.closeSession(id, 'ended');
      if (this.replayDir) for (const f of this.savedFiles(id)) rmSync(f, { force: true });
    });
    if (replayDir) {
      mkdirSync(replayDir, { recursive: true });
      this.saver = setInterval(() => this.saveAll(), 2000);
      this.saver.unref();
    }
  }

  private fileOf(sessionId: string, terminalId: string): string {
    return path.join(this.replayDir!, `${sessionId}.${terminalId}.replay`);
  }

  private savedFiles(sessionId: string): string[] {
    return readdirSync(this.replayDir!)
      .filter((f) => f.startsWith(`${sessionId}.`))
      .map((f) => path.join(this.replayDir!, f));
  }

  private load(sessionId: string, terminalId: string): { start: number; bytes: Buffer } | undefined {
    if (!this.replayDir) return undefined;
    try {
      const raw = readFileSync(this.fileOf(sessionId, terminalId));
      const nl = raw.indexOf(0x0a);
      const { start } = JSON.parse(raw.subarray(0, nl).toString('utf8')) as { start: number };
      return { start, bytes: raw.subarray(nl + 1) };
    } catch {
      return undefined;
    }
  }

  /** Saves changed replay buffers (write, then rename: a crash leaves the old copy). */
  saveAll(): void {
    if (!this.replayDir) return;
    for (const [sessionId, slots] of this.slots) {
      for (const [terminalId, slot] of slots) {
        if (this.savedAt.get(slot) === slot.ring.end) continue;
        const snap = slot.ring.snapshot();
        const file = this.fileOf(sessionId, terminalId);
        try {
          writeFileSync(`${file}.tmp`, Buffer.concat([Buffer.from(JSON.stringify({ start: snap.start }) + '\n'), snap.bytes]));
          renameSync(`${file}.tmp`, file);
          this.savedAt.set(slot, slot.ring.end);
        } catch {
          // A full disk must not stop terminals; the replay is best effort.
        }
      }
    }
  }

  stop(): void {
    if (this.saver) clearInterval(this.saver);
    this.saveAll();
  }

  /** The slot for a terminal of the session, or undefined if the session has no such terminal. */
  slot(session: Session, terminalId: string): TerminalSlot | undefined {
    const terminal = terminalsOf([...session.hosts.keys()]).find((t) => t.id === terminalId);
    if (!terminal) return undefined;
    let bySession = this.slots.get(session.id);
    if (!bySession) this.slots.set(session.id, (bySession = new Map()));
    let slot = bySession.get(terminalId);
    if (!slot) {
      const sandbox = session.hosts.get(terminal.host)!;
      slot = new TerminalSlot(
        session.id,
        terminalId,
        (size) => this.engine.openShell(sandbox.containerId, terminalId, size),
        () => this.sessions.checkAlive(session.id),
        this.load(session.id, terminalId),
      );
      slot.on('prompt', () => this.emit('prompt', session.id, terminalId));
      slot.on('attached', () => this.emit('attached', session.id, terminalId));
      bySession.set(terminalId, slot);
    }
    return slot;
  }

  /** Sends a control message to every page attached to the session. */
  broadcast(sessionId: string, msg: ServerMessage): void {
    for (const slot of this.slots.get(sessionId)?.values() ?? []) slot.notify(msg);
  }

  hasAttached(sessionId: string): boolean {
    return [...(this.slots.get(sessionId)?.values() ?? [])].some((s) => s.attached);
  }

  onSessionClosed(sessionId: string, listener: (reason: 'sandbox-gone' | 'ended') => void): () => void {
    let set = this.goneListeners.get(sessionId);
    if (!set) this.goneListeners.set(sessionId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private closeSession(sessionId: string, reason: 'sandbox-gone' | 'ended'): void {
    for (const listener of this.goneListeners.get(sessionId) ?? []) listener(reason);
    this.goneListeners.delete(sessionId);
    for (const slot of this.slots.get(sessionId)?.values() ?? []) slot.close();
    this.slots.delete(sessionId);
  }

  /** Total bytes held in replay buffers (for the health endpoint and benchmarks). */
  get bufferedBytes(): number {
    let n = 0;
    for (const m of this.slots.values()) for (const s of m.values()) n += s.ring.end - s.ring.start;
    return n;
  }
}
