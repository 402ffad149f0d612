/**
 * One terminal of a session: a shell in a sandbox, its recent output, and at
 * most one attached page. The shell outlives page connections (a reload or a
 * network blip reattaches to the same shell); output is offset-addressed so a
 * reattaching page gets exactly what it missed. Flow control follows
 * xterm.js's guide: the page acknowledges rendered bytes and the shell's
 * stream is paused while too much is unacknowledged. Read-only observers (an
 * instructor shadowing the terminal) get the same replay and live output but
 * never hold the shell back; what an instructor types is marked in the output.
 */
import { EventEmitter } from 'node:events';
import type { ServerMessage } from '../../protocol/terminal';
import type { Shell } from '../sandbox/sandbox-engine';
import { OutputRing } from './output-ring';

export const REPLAY_BUFFER_BYTES = 128 * 1024;
/** Pause the shell above this many unacknowledged bytes, resume below LOW. */
export const FLOW_HIGH_WATER = 1024 * 1024;
export const FLOW_LOW_WATER = 256 * 1024;
/** The sandbox's bashrc prints this OSC after every command (PROMPT_COMMAND). */
export const PROMPT_MARK = Buffer.from('\x1b]6973;vethlab;prompt\x07');
/** Written into the terminal's output (so into the learner's scrollback) when the instructor starts typing, and when the learner takes back over. */
export const INSTRUCTOR_INPUT_MARK = Buffer.from('\x1b[1;97;45m[instructor typing]\x1b[0m ');
export const LEARNER_INPUT_MARK = Buffer.from('\x1b[1;97;44m[learner typing]\x1b[0m ');

export type InputSource = 'learner' | 'instructor';

/** What the slot needs from an attached page connection. */
export interface TerminalPeer {
  /** Output continues at `from`; `replay` holds the bytes from there to now. */
  begin(from: number, reset: boolean, replay: Buffer): void;
  sendOutput(bytes: Buffer): void;
  /** A control message for the page (e.g. lab task status). */
  sendMessage(msg: ServerMessage): void;
  /** The slot hands the page over to a newer one. */
  takenOver(): void;
  shellExited(code: number | null): void;
}

export interface TerminalSlotEvents {
  /** A command finished in this terminal (the prompt came back). */
  prompt: [];
  /** A page attached. */
  attached: [];
}

export class TerminalSlot extends EventEmitter<TerminalSlotEvents> {
  readonly ring: OutputRing;
  private shell: Shell | null = null;
  private opening: Promise<Shell> | null = null;
  private peer: TerminalPeer | null = null;
  /** Offsets for the attached page: what it was sent, what it rendered. */
  private sent = 0;
  private acked = 0;
  private paused = false;
  /** Read-only pages (shadowing): replay and live output, no flow control of their own. */
  private readonly observers = new Set<TerminalPeer>();
  /** Who typed last, so a change of hands is marked once, not on every key. */
  private lastInput: InputSource = 'learner';

  constructor(
    readonly sessionId: string,
    readonly terminalId: string,
    private readonly open: (size: { cols: number; rows: number }) => Promise<Shell>,
    /** Is the sandbox still there? (A shell also ends when its sandbox dies.) */
    private readonly sandboxAlive: () => Promise<boolean>,
    /** Output saved by an earlier lab-server, to replay after a restart. */
    saved?: { start: number; bytes: Buffer },
  ) {
    super();
    this.ring = saved ? OutputRing.restore(REPLAY_BUFFER_BYTES, saved.start, saved.bytes) : new OutputRing(REPLAY_BUFFER_BYTES);
  }

  get attached(): boolean {
    return this.peer !== null;
  }

  /**
   * Attaches a page, replacing any earlier one. The page is told where its
   * output continues (`lastSeq` is the end of its copy, if it has one) and
   * sent what it missed, before any live output.
   */
  async attach(peer: TerminalPeer, lastSeq: number | undefined, size: { cols: number; rows: number }): Promise<void> {
    const shell = await this.ensureShell(size);
    // From here to the end nothing awaits, so no output slips in between.
    const previous = this.peer;
    this.peer = peer;
    if (previous && previous !== peer) previous.takenOver();
    const reset = lastSeq === undefined || !this.ring.holds(lastSeq);
    const from = reset ? this.ring.replayStart() : lastSeq;
    const replay = this.ring.since(from);
    this.sent = from + replay.length;
    this.acked = from;
    peer.begin(from, reset, replay);
    this.updateFlow();
    this.emit('attached');
    // A shell that already ended cannot be resized; its end is reported elsewhere.
    shell.resize(size.cols, size.rows).catch(() => {});
  }

  /** Adds a read-only page: it gets the replay from `lastSeq` (or the recent screen) and then the live output. */
  async observe(peer: TerminalPeer, lastSeq: number | undefined, size: { cols: number; rows: number }): Promise<void> {
    await this.ensureShell(size);
    const reset = lastSeq === undefined || !this.ring.holds(lastSeq);
    const from = reset ? this.ring.replayStart() : lastSeq;
    this.observers.add(peer);
    peer.begin(from, reset, this.ring.since(from));
  }

  unobserve(peer: TerminalPeer): void {
    this.observers.delete(peer);
  }

  get observerCount(): number {
    return this.observers.size;
  }

  detach(peer: TerminalPeer): void {
    if (this.peer !== peer) return;
    this.peer = null;
    // Nobody is watching: keep the shell running into the replay buffer.
    this.updateFlow();
  }

  notify(msg: ServerMessage): void {
    this.peer?.sendMessage(msg);
  }

  /**
   * Sends keystrokes to the shell. False when the shell's stream is full: the
   * caller stops reading its input until `whenDrained` calls back.
   */
  write(data: string, source: InputSource = 'learner'): boolean {
    if (source !== this.lastInput) {
      // A change of hands goes into the output itself: the learner's scrollback shows who typed what.
      this.lastInput = source;
      this.onOutput(source === 'instructor' ? INSTRUCTOR_INPUT_MARK : LEARNER_INPUT_MARK);
    }
    return this.shell ? this.shell.stream.write(data) : true;
  }

  /** Calls back once the shell's stream takes input again (at once if it does now or the shell is gone). */
  whenDrained(callback: () => void): void {
    const stream = this.shell?.stream;
    if (!stream || !stream.writableNeedDrain) return callback();
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      callback();
    };
    stream.on('drain', done);
    stream.on('close', done);
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.shell?.resize(cols, rows);
  }

  ack(peer: TerminalPeer, seq: number): void {
    if (this.peer !== peer) return;
    // An ack can only move forward and never past what was sent.
    this.acked = Math.min(Math.max(this.acked, seq), this.sent);
    this.updateFlow();
  }

  /** Bytes sent to the page and not yet rendered by it. */
  get unacknowledged(): number {
    return this.peer ? this.sent - this.acked : 0;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private updateFlow(): void {
    const pending = this.unacknowledged;
    if (!this.paused && pending > FLOW_HIGH_WATER) {
      this.paused = true;
      this.shell?.stream.pause();
    } else if (this.paused && pending < FLOW_LOW_WATER) {
      this.paused = false;
      this.shell?.stream.resume();
    }
  }

  private ensureShell(size: { cols: number; rows: number }): Promise<Shell> {
    if (this.shell) return Promise.resolve(this.shell);
    if (!this.opening) {
      this.opening = this.open(size).then(
        (shell) => {
          this.shell = shell;
          this.opening = null;
          this.paused = false;
          shell.stream.on('data', (chunk: Buffer) => this.onOutput(chunk));
          const ended = () => void this.onShellEnd(shell);
          shell.stream.once('end', ended);
          shell.stream.once('close', ended);
          shell.stream.on('error', () => {});
          return shell;
        },
        (err: unknown) => {
          this.opening = null;
          throw err;
        },
      );
    }
    return this.opening;
  }

  private onOutput(chunk: Buffer): void {
    this.ring.push(chunk);
    if (chunk.includes(PROMPT_MARK)) this.emit('prompt');
    for (const o of this.observers) o.sendOutput(chunk);
    if (this.peer) {
      this.sent += chunk.length;
      this.peer.sendOutput(chunk);
      this.updateFlow();
    }
  }

  private async onShellEnd(shell: Shell): Promise<void> {
    if (this.shell !== shell) return;
    this.shell = null;
    const code = await shell.exitCode();
    // A shell that did not end by itself (exec failed: 126, or no code) may be
    // the first sign of a dying sandbox; give the engine a moment to say so.
    if (code !== 0) await new Promise((r) => setTimeout(r, 1000));
    // If the sandbox died, the page hears "sandbox gone" from the session, not "exit".
    if (!(await this.sandboxAlive())) return;
    this.peer?.shellExited(code);
  }

  /** Ends the shell (the session is over). */
  close(): void {
    this.shell?.stream.destroy();
    this.shell = null;
    this.peer = null;
    this.observers.clear();
  }
}
