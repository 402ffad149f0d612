/**
 * The page's lab bus: how a lesson's Terminal(s), its <Lab> panel and its
 * Run buttons talk to each other. The session module (./lab-session)
 * announces the lab's session and its replacements; a terminal forwards what
 * the server pushes over its socket (task status, notices); code blocks type
 * commands into a registered terminal. A module-level store: every widget of
 * the page imports the same instance. No React, no DOM.
 */
import type { TaskStatus } from '../../protocol/lab';

export type LabEvent =
  /** The lab has a session (found or started). */
  | { kind: 'session'; sessionId: string }
  /** A new session replaced the lab's current one (reset, new sandbox): switch to it. */
  | { kind: 'replace-session'; sessionId: string }
  /** The session is no use any more (sandbox gone, server forgot it). */
  | { kind: 'session-gone'; sessionId: string }
  /** Pushed by the server over a terminal's socket: the lab's task status changed. */
  | { kind: 'tasks'; sessionId: string; tasks: TaskStatus[]; finished: boolean }
  | { kind: 'notice'; code: 'engine-down' | 'engine-up'; host: string; message: string };

const listeners = new Map<string, Set<(e: LabEvent) => void>>();

export const sessionStorageKey = (lab: string) => `vethlab.session.${lab}`;

export function emitLab(lab: string, event: LabEvent): void {
  for (const cb of [...(listeners.get(lab) ?? [])]) {
    try {
      cb(event);
    } catch (err) {
      // One broken listener must not keep the event from the others.
      console.error('[vethlab] lab bus listener failed', err);
    }
  }
}

export function onLab(lab: string, cb: (e: LabEvent) => void): () => void {
  let set = listeners.get(lab);
  if (!set) listeners.set(lab, (set = new Set()));
  set.add(cb);
  return () => set.delete(cb);
}

// ---- terminals, for Run buttons ---------------------------------------------

export interface RegisteredTerminal {
  lab: string;
  id: string;
  /** Attached to a shell: typed input reaches it. */
  ready(): boolean;
  /** Types text into the shell (as if from the keyboard) and shows the terminal. */
  type(text: string): void;
}

/** The page's terminals, in the order they were mounted. */
const terminals: RegisteredTerminal[] = [];
const terminalListeners = new Set<() => void>();

export function registerTerminal(entry: RegisteredTerminal): () => void {
  terminals.push(entry);
  terminalsChanged();
  return () => {
    const i = terminals.indexOf(entry);
    if (i >= 0) terminals.splice(i, 1);
    terminalsChanged();
  };
}

/** A terminal was mounted, unmounted, attached or detached. */
export function terminalsChanged(): void {
  for (const cb of [...terminalListeners]) cb();
}

/** Called whenever the page's terminals change (for Run buttons to enable themselves). */
export function onTerminals(cb: () => void): () => void {
  terminalListeners.add(cb);
  return () => terminalListeners.delete(cb);
}

/** The terminal a Run button types into: the one it names, else the page's first. */
export function targetTerminal(terminalId?: string): RegisteredTerminal | undefined {
  return terminalId ? terminals.find((t) => t.id === terminalId) : terminals[0];
}

export type RunResult = 'typed' | 'not-ready' | 'no-terminal';

/**
 * Types a command into a terminal of the page, each line followed by Enter,
 * exactly as if the learner typed it: they see it and own the shell.
 */
export function runInTerminal(command: string, terminalId?: string): RunResult {
  const target = targetTerminal(terminalId);
  if (!target) return 'no-terminal';
  if (!target.ready()) return 'not-ready';
  target.type(command.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n').join('\r') + '\r');
  return 'typed';
}
