/**
 * The page's lab bus: how a lesson's Terminal(s) and its <Lab> panel share
 * one session. A terminal announces the session it uses and forwards what
 * the server pushes over its socket (task status, notices); the panel
 * announces a session that replaces the old one (reset), and every terminal
 * of that lab switches to it. No React, no DOM beyond localStorage.
 */
import type { TaskStatus } from '../../protocol/lab';
import type { RoomEvent } from '../../protocol/room';

export type LabEvent =
  | { kind: 'session'; sessionId: string }
  | { kind: 'replace-session'; sessionId: string }
  | { kind: 'tasks'; tasks: TaskStatus[]; finished: boolean }
  | { kind: 'notice'; code: 'engine-down' | 'engine-up'; host: string; message: string }
  /** The learner's workshop room says something (a broadcast, "you are watched", a take-over request...). */
  | { kind: 'room'; event: RoomEvent };

const listeners = new Map<string, Set<(e: LabEvent) => void>>();
const sessions = new Map<string, string>();

export const sessionStorageKey = (lab: string) => `vethlab.session.${lab}`;

const roomListeners = new Set<(e: RoomEvent, lab: string) => void>();

/** Room events of every lab on the page (the page's one room banner). */
export function onRoom(cb: (e: RoomEvent, lab: string) => void): () => void {
  roomListeners.add(cb);
  return () => roomListeners.delete(cb);
}

export function emitLab(lab: string, event: LabEvent): void {
  if (event.kind === 'session' || event.kind === 'replace-session') sessions.set(lab, event.sessionId);
  if (event.kind === 'room') for (const cb of Array.from(roomListeners)) cb(event.event, lab);
  for (const cb of Array.from(listeners.get(lab) ?? [])) cb(event); // Array.from: see LabPanel (iterator spreads)
}

export function onLab(lab: string, cb: (e: LabEvent) => void): () => void {
  let set = listeners.get(lab);
  if (!set) listeners.set(lab, (set = new Set()));
  set.add(cb);
  return () => set.delete(cb);
}

/** The session this page uses for the lab, if one is known yet. */
export function currentSession(lab: string): string | undefined {
  if (sessions.has(lab)) return sessions.get(lab);
  try {
    return globalThis.localStorage?.getItem(sessionStorageKey(lab)) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run buttons on code blocks type into a terminal of the page: the one they
 * name, or the first one mounted. The learner sees the command and owns it.
 */
const terminals: { id: string; type: (text: string) => void }[] = [];

export function registerTerminal(id: string, type: (text: string) => void): () => void {
  const entry = { id, type };
  terminals.push(entry);
  return () => {
    const i = terminals.indexOf(entry);
    if (i >= 0) terminals.splice(i, 1);
  };
}

/** Types a command (each line followed by Enter); false if the page has no such terminal. */
export function runInTerminal(command: string, terminalId?: string): boolean {
  const target = terminalId ? terminals.find((t) => t.id === terminalId) : terminals[0];
  if (!target) return false;
  target.type(command.replace(/\n+$/, '').split('\n').join('\r') + '\r');
  return true;
}
