/**
 * Terminal wire protocol, shared by the browser (src/components/Terminal) and
 * the lab-server (lab-server/terminal). No DOM or Node types here.
 *
 * One WebSocket per terminal at TERMINAL_WS_PATH. Text frames carry JSON
 * control messages (below); binary frames from the server carry raw terminal
 * output bytes. Every output byte has an offset ("seq") in the terminal's
 * output stream; the page counts the bytes it has received, acknowledges what
 * xterm.js has rendered (flow control) and names its last offset in `hello`
 * when it reconnects, so the server replays exactly what was missed.
 */
import { z } from 'zod';
import { TaskStatus } from './lab';
import { RoomEvent } from './room';

export const TERMINAL_PROTOCOL_VERSION = 1;
export const TERMINAL_WS_PATH = '/api/terminal';

/** Largest text frame the server accepts before answering `too-large`. */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;
export const MAX_COLS = 1000;
export const MAX_ROWS = 500;
/** The page acknowledges rendered output at least this often (bytes). */
export const ACK_EVERY_BYTES = 32 * 1024;

const SessionId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'a session id is 8-64 letters, digits, _ or -');
const TerminalId = z.string().regex(/^[a-z0-9-]{1,32}$/, 'a terminal id is 1-32 lowercase letters, digits or -');
const Cols = z.number().int().min(2).max(MAX_COLS);
const Rows = z.number().int().min(1).max(MAX_ROWS);
const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const ClientMessage = z.discriminatedUnion('type', [
  /** First frame: which terminal, where the page's copy of the output ends. */
  z.object({
    type: z.literal('hello'),
    v: z.literal(TERMINAL_PROTOCOL_VERSION),
    sessionId: SessionId,
    terminalId: TerminalId,
    lastSeq: Seq.optional(),
    cols: Cols,
    rows: Rows,
  }),
  /** Keystrokes (UTF-8 text, as xterm.js onData gives it). */
  z.object({ type: z.literal('input'), data: z.string().max(MAX_CLIENT_FRAME_BYTES) }),
  z.object({ type: z.literal('resize'), cols: Cols, rows: Rows }),
  /** Cumulative offset of output the page has rendered. */
  z.object({ type: z.literal('ack'), seq: Seq }),
  /** Application heartbeat: browsers cannot see WebSocket pings. */
  z.object({ type: z.literal('ping'), t: z.number() }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

/** The first frame of every client; `lastSeq` only when it holds a copy of the output to continue. */
export function helloMessage(h: { sessionId: string; terminalId: string; cols: number; rows: number; lastSeq?: number | undefined }): ClientMessage {
  const { lastSeq, ...rest } = h;
  return { type: 'hello', v: TERMINAL_PROTOCOL_VERSION, ...rest, ...(lastSeq !== undefined ? { lastSeq } : {}) };
}

export const ErrorCode = z.enum([
  'bad-frame', // not JSON, or not an object with a known shape
  'unknown-type',
  'too-large',
  'bad-resize',
  'not-attached', // a frame other than hello before hello
  'unknown-session',
  'unknown-terminal',
  'forbidden', // the session belongs to another learner
  'taken-over', // a newer page attached to this terminal
  'sandbox-gone', // the sandbox container stopped or was removed
  'server-shutdown',
  'internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ServerMessage = z.discriminatedUnion('type', [
  /**
   * Attached. Output continues at offset `from`; if `reset`, the page's copy
   * could not be continued (too old or from another shell) and it must clear
   * the screen first; the replay that follows redraws it.
   */
  z.object({ type: z.literal('ready'), from: Seq, reset: z.boolean(), terminalId: TerminalId }),
  z.object({ type: z.literal('pong'), t: z.number() }),
  /** The shell ended (the learner typed exit). */
  z.object({ type: z.literal('exit'), code: z.number().int().nullable() }),
  /** The session's lab task status changed (pushed to every terminal of the session). */
  z.object({ type: z.literal('tasks'), lab: z.string(), tasks: z.array(TaskStatus), finished: z.boolean() }),
  /**
   * Something about the sandbox the learner should know and can fix with a
   * reset: its Docker engine stopped answering (engine-down), or answers again.
   */
  z.object({ type: z.literal('notice'), code: z.enum(['engine-down', 'engine-up']), host: z.string(), message: z.string() }),
  /** Something the learner's workshop room says (protocol/room.ts): a broadcast, "you are being watched"... */
  z.object({ type: z.literal('room'), event: RoomEvent }),
  /** `fatal` errors are followed by the server closing the socket. */
  z.object({ type: z.literal('error'), code: ErrorCode, message: z.string(), fatal: z.boolean() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** WebSocket close codes the server uses (4000-4999 is the application range). */
export const CloseCode = {
  protocolError: 4400,
  forbidden: 4403,
  unknownSession: 4404,
  takenOver: 4409,
  sandboxGone: 4410,
  shutdown: 4503,
} as const;
