/**
 * The page side of one terminal: finds or starts the learner's lab session
 * over the REST API, then keeps a WebSocket to the terminal alive (hello,
 * replay from the last byte seen, acknowledgements for flow control,
 * heartbeat, reconnect with backoff) and feeds the output into a sink (an
 * xterm.js Terminal). No React and no Docusaurus here: the widget passes in
 * the sink, the texts and the addresses.
 *
 * Output offsets: `received` is the offset just past the last output byte
 * that arrived, `rendered` the offset just past the last byte the sink has
 * drawn, `acked` the last offset acknowledged to the server. The server
 * pauses the shell while too much is sent but unacknowledged, so a flood of
 * output cannot run ahead of what the page can draw.
 */
import { ApiError, ApiErrorCode, SessionInfo } from '../../../protocol/api';
import { emitLab, onLab, sessionStorageKey } from '../lab-bus';
import {
  ACK_EVERY_BYTES,
  CloseCode,
  ErrorCode,
  MAX_CLIENT_FRAME_BYTES,
  MAX_COLS,
  MAX_ROWS,
  ServerMessage,
  helloMessage,
  TERMINAL_WS_PATH,
  type ClientMessage,
} from '../../../protocol/terminal';

export type ConnectionState = 'connecting' | 'connected' | 'closed';

/** Why the connection stopped and will not come back by itself; the page offers the matching action. */
export type StopReason =
  /** A newer page took this terminal over. Action: reconnect here. */
  | { kind: 'taken-over' }
  /** The sandbox stopped or was removed. Action: start a new sandbox. */
  | { kind: 'sandbox-gone' }
  /** The shell ended. Action: reconnect (the server starts a new shell). */
  | { kind: 'exit'; code: number | null }
  /** The session belongs to someone else. Action: start a new sandbox. */
  | { kind: 'forbidden'; message: string }
  /** Anything else that retrying will not fix by itself. Action: try again. */
  | { kind: 'failed'; message: string };

export type ConnectionPhase =
  /** Asking the API for a session (or starting a sandbox). */
  | 'session'
  /** Opening the WebSocket and waiting for `ready`. */
  | 'attaching'
  /** Attached: output flows. */
  | 'attached'
  /** Waiting before the next attempt. */
  | 'waiting'
  | 'stopped';

export interface ConnectionStatus {
  state: ConnectionState;
  phase: ConnectionPhase;
  /** While `waiting`: seconds until the next attempt. */
  retryInSeconds?: number;
  /** While `waiting`: the last attempt could not reach the lab server at all. */
  unreachable?: boolean;
  /** While `stopped`. */
  stop?: StopReason;
}

/** What the connection needs from the terminal emulator (an xterm.js Terminal fits). */
export interface TerminalSink {
  readonly cols: number;
  readonly rows: number;
  write(data: string | Uint8Array, callback?: () => void): void;
  reset(): void;
}

/** Lines the connection prints into the terminal itself; the widget passes translated ones. */
export interface ConnectionTexts {
  takenOver: string;
  sandboxGone: string;
  shellEnded: (code: number | null) => string;
  /** The API answered with something that is not the lab-server's JSON. */
  unexpectedAnswer: (status: number, statusText: string) => string;
}

export const defaultTexts: ConnectionTexts = {
  takenOver: 'This terminal was opened in another tab.',
  sandboxGone: 'Your sandbox is gone. Start a new sandbox to continue.',
  shellEnded: (code) => (code === null ? 'The shell ended.' : `The shell ended (exit code ${code}).`),
  unexpectedAnswer: (status, statusText) =>
    `The lab server did not answer as expected (HTTP ${status}${statusText ? ` ${statusText}` : ''}). Is it running?`,
};

export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export interface ConnectionOptions {
  lab: string;
  terminalId: string;
  sink: TerminalSink;
  /** Origin of the lab-server, e.g. "https://labs.example.org" or the page's own origin. */
  baseUrl: string;
  onStatus: (status: ConnectionStatus) => void;
  texts?: ConnectionTexts;
  storage?: KeyValueStorage | null;
  /** Test seams; the browser's own by default. */
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
  now?: () => number;
}

/** Application heartbeat: a ping this often, and the link is dead after this long without any frame. */
export const PING_EVERY_MS = 10_000;
export const DEAD_AFTER_MS = 25_000;
const HEARTBEAT_TICK_MS = 2_500;
/** Reconnect delays: 0.5 s, 1 s, 2 s, 4 s, then 5 s. */
export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 5_000;
/** When output goes quiet, what was rendered is acknowledged after this pause (keeps keystroke echo from costing an ack each). */
export const ACK_IDLE_MS = 200;
/** Input is sent in pieces of at most this many UTF-16 units (JSON-escaped, well under MAX_CLIENT_FRAME_BYTES). */
const INPUT_CHUNK = Math.floor(MAX_CLIENT_FRAME_BYTES / 8);

export { sessionStorageKey };

/** The visible line for a message from vethlab itself (not from the shell). */
export function noticeLine(message: string, colour: 'red' | 'yellow' = 'red'): string {
  const sgr = colour === 'red' ? '1;31' : '1;33';
  return `\r\n\x1b[${sgr}m[vethlab] ${message}\x1b[0m\r\n`;
}

class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The lab-server's code; undefined when the answer was not the lab-server's (network, proxy). */
    readonly code: ApiErrorCode | undefined,
    /** True when waiting and trying again may help (the server is down or restarting). */
    readonly retry: boolean,
  ) {
    super(message);
  }
}

/**
 * Sessions are per lab, shared by every terminal of that lab on the page: the
 * first terminal that needs one starts it, the others wait for that answer.
 */
const pendingSessions = new Map<string, Promise<string>>();

export class TerminalConnection {
  private readonly texts: ConnectionTexts;
  private readonly fetchImpl: typeof fetch;
  private readonly WebSocketImpl: typeof WebSocket;
  private readonly now: () => number;

  private status: ConnectionStatus = { state: 'connecting', phase: 'session' };
  private sessionId: string | null = null;
  private ws: WebSocket | null = null;
  /** Bumped for every attempt; late answers of an older attempt are ignored. */
  private attempt = 0;
  private failures = 0;
  private stopped: StopReason | null = null;
  private disposed = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private lastFrameAt = 0;
  private lastPingAt = 0;

  /** Sent hello on the current socket (input and resize may flow). */
  private helloSent = false;
  /** Got `ready` on the current socket. */
  private attached = false;
  /** The page holds a copy of this terminal's output (so it can name lastSeq). */
  private hasCopy = false;
  private received = 0;
  private rendered = 0;
  private acked = 0;
  /** Bumped on every `ready`: write callbacks of an older stream do not count. */
  private stream = 0;
  private lastSize: { cols: number; rows: number } | null = null;
  /** The server did not know our session once already during this attempt series. */
  private renewedSession = false;
  private lastQueueMessage = '';
  private offBus: (() => void) | null = null;
  /** The workshop's instructor reset this lab: the coming "sandbox gone" is followed by a new sandbox, not a stop. */
  private followReset = false;

  private readonly onOnline = () => {
    if (this.retryTimer && !this.stopped) this.retryNow();
  };

  constructor(private readonly opts: ConnectionOptions) {
    this.texts = opts.texts ?? defaultTexts;
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.WebSocketImpl = opts.WebSocket ?? globalThis.WebSocket;
    this.now = opts.now ?? (() => Date.now());
  }

  get currentStatus(): ConnectionStatus {
    return this.status;
  }

  get session(): string | null {
    return this.sessionId;
  }

  /** Offsets, for tests and debugging. */
  get offsets(): { received: number; rendered: number; acked: number } {
    return { received: this.received, rendered: this.rendered, acked: this.acked };
  }

  start(): void {
    globalThis.addEventListener?.('online', this.onOnline);
    // The lab panel started the lab over in a new session: follow it.
    this.offBus = onLab(this.opts.lab, (e) => {
      if (e.kind === 'replace-session' && e.sessionId !== this.sessionId) this.useSession(e.sessionId);
    });
    this.connect();
  }

  /** Switch to another session of this lab (after a reset): a fresh screen. */
  useSession(id: string): void {
    if (this.disposed) return;
    this.storeSession(id);
    this.sessionId = id;
    this.hasCopy = false;
    this.opts.sink.reset();
    this.connect();
  }

  /** (Re)connect now: the "Reconnect here", "Open a new shell" and "Try again" actions. */
  connect(): void {
    if (this.disposed) return;
    this.stopped = null;
    this.failures = 0;
    this.renewedSession = false;
    this.retryNow();
  }

  /** Forget the current session and start a new sandbox: the "Start a new sandbox" action. */
  startNewSandbox(): void {
    if (this.disposed) return;
    this.forgetSession(this.sessionId);
    this.sessionId = null;
    this.hasCopy = false;
    this.opts.sink.reset();
    this.connect();
  }

  /** Keystrokes from the terminal (xterm.js onData). Dropped while not attached to a shell. */
  sendInput(data: string): void {
    if (!this.helloSent || data.length === 0) return;
    for (let i = 0; i < data.length; ) {
      let end = Math.min(i + INPUT_CHUNK, data.length);
      // Never split a surrogate pair across two frames.
      if (end < data.length && /[\uD800-\uDBFF]/.test(data.charAt(end - 1))) end -= 1;
      this.send({ type: 'input', data: data.slice(i, end) });
      i = end;
    }
  }

  /** The terminal's size changed (xterm.js onResize). */
  resize(cols: number, rows: number): void {
    const size = clampSize(cols, rows);
    if (this.lastSize && this.lastSize.cols === size.cols && this.lastSize.rows === size.rows) return;
    if (!this.helloSent) return; // hello carries the size
    this.lastSize = size;
    this.send({ type: 'resize', ...size });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    this.offBus?.();
    this.attempt++;
    this.clearTimers();
    this.dropSocket(1000, 'page closed');
  }

  // ---- attempts -----------------------------------------------------------

  private retryNow(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.run(++this.attempt);
  }

  /** One attempt: a session (found or started), then a socket. */
  private async run(attempt: number): Promise<void> {
    this.dropSocket(1000, 'reconnecting');
    const current = () => attempt === this.attempt && !this.disposed;

    if (!this.sessionId) {
      this.setStatus({ state: 'connecting', phase: 'session' });
      try {
        const id = await this.findOrStartSession();
        if (!current()) return;
        this.sessionId = id;
        emitLab(this.opts.lab, { kind: 'session', sessionId: id });
      } catch (err) {
        if (!current()) return;
        // A full machine: say where the learner is in line (once per change) and keep asking.
        if (err instanceof ApiFailure && err.code === ApiErrorCode.enum.full && err.message !== this.lastQueueMessage) {
          this.lastQueueMessage = err.message;
          this.opts.sink.write(noticeLine(err.message, 'yellow'));
        }
        if (err instanceof ApiFailure && !err.retry) {
          this.opts.sink.write(noticeLine(err.message));
          return this.stop({ kind: 'failed', message: err.message });
        }
        return this.scheduleRetry(true);
      }
    }
    this.setStatus({ state: 'connecting', phase: 'attaching' });
    this.openSocket(attempt);
  }

  private scheduleRetry(unreachable: boolean): void {
    if (this.disposed || this.stopped) return;
    const delay = Math.min(BACKOFF_FIRST_MS * 2 ** this.failures, BACKOFF_MAX_MS);
    this.failures++;
    this.setStatus({
      state: 'connecting',
      phase: 'waiting',
      retryInSeconds: Math.max(1, Math.round(delay / 1000)),
      unreachable,
    });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.run(++this.attempt);
    }, delay);
  }

  private stop(reason: StopReason): void {
    this.stopped = reason;
    this.clearTimers();
    // The server closes the socket after a fatal error or an exit; do not wait for it.
    this.dropSocket(1000, 'stopped');
    this.setStatus({ state: 'closed', phase: 'stopped', stop: reason });
  }

  // ---- REST API -----------------------------------------------------------

  /**
   * Not abortable on purpose: a session being started is wanted by every
   * terminal of the lab; an attempt that is no longer current ignores the answer.
   */
  private findOrStartSession(): Promise<string> {
    const key = `${this.opts.baseUrl}|${this.opts.lab}`;
    let pending = pendingSessions.get(key);
    if (!pending) {
      pending = this.resolveSession().finally(() => pendingSessions.delete(key));
      pendingSessions.set(key, pending);
    }
    return pending;
  }

  private async resolveSession(): Promise<string> {
    const stored = this.readStoredSession();
    if (stored) {
      const found = await this.api('GET', `/api/sessions/${encodeURIComponent(stored)}`).catch((err: unknown) => {
        // The server does not know it (any more), or it is someone else's: start a new one.
        if (err instanceof ApiFailure && (err.code === ApiErrorCode.enum['unknown-session'] || err.code === ApiErrorCode.enum.forbidden)) return null;
        throw err;
      });
      const info = found === null ? null : SessionInfo.safeParse(found);
      if (info?.success && info.data.state !== 'gone') return info.data.sessionId;
      this.forgetSession(stored);
    }
    const created = await this.api('POST', '/api/sessions', { lab: this.opts.lab });
    const info = SessionInfo.safeParse(created);
    if (!info.success) throw new ApiFailure(this.texts.unexpectedAnswer(200, ''), 200, undefined, false);
    this.storeSession(info.data.sessionId);
    return info.data.sessionId;
  }

  private async api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await this.fetchImpl(new URL(path, this.opts.baseUrl).toString(), {
        method,
        credentials: this.crossOrigin() ? 'include' : 'same-origin',
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      // Network error: the server is down or restarting, or the machine is offline.
      throw new ApiFailure((err as Error).message || 'network error', 0, undefined, true);
    }
    const text = await res.text().catch(() => '');
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) return json;
    const problem = ApiError.safeParse(json);
    if (problem.success) {
      // The lab-server itself answered: its message is meant for the learner.
      // `full`: the machine is full and the learner is in line; asking again is the way in.
      throw new ApiFailure(problem.data.error, res.status, problem.data.code, problem.data.code === ApiErrorCode.enum.full);
    }
    // Not the lab-server's answer: a proxy in front of a server that is (re)starting, or no lab-server at all.
    const gateway = res.status === 502 || res.status === 503 || res.status === 504;
    throw new ApiFailure(this.texts.unexpectedAnswer(res.status, res.statusText), res.status, undefined, gateway);
  }

  private crossOrigin(): boolean {
    const here = globalThis.location?.origin;
    return here !== undefined && new URL(this.opts.baseUrl).origin !== here;
  }

  private readStoredSession(): string | null {
    try {
      return this.opts.storage?.getItem(sessionStorageKey(this.opts.lab)) ?? null;
    } catch {
      return null;
    }
  }

  private storeSession(id: string): void {
    try {
      this.opts.storage?.setItem(sessionStorageKey(this.opts.lab), id);
    } catch {
      // Storage full or disabled: the session still works for this page.
    }
  }

  /** Removes the stored session id, unless another terminal already stored a newer one. */
  private forgetSession(id: string | null): void {
    try {
      const stored = this.opts.storage?.getItem(sessionStorageKey(this.opts.lab));
      if (stored && (id === null || stored === id)) this.opts.storage?.removeItem(sessionStorageKey(this.opts.lab));
    } catch {
      // ignore
    }
  }

  // ---- WebSocket ----------------------------------------------------------

  private socketUrl(): string {
    const url = new URL(TERMINAL_WS_PATH, this.opts.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }

  private openSocket(attempt: number): void {
    let ws: WebSocket;
    try {
      ws = new this.WebSocketImpl(this.socketUrl());
    } catch (err) {
      return this.stop({ kind: 'failed', message: (err as Error).message });
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.helloSent = false;
    this.attached = false;
    let opened = false;
    this.lastFrameAt = this.now();
    this.startHeartbeat();

    ws.onopen = () => {
      if (this.ws !== ws || attempt !== this.attempt) return;
      opened = true;
      this.lastFrameAt = this.now();
      const size = clampSize(this.opts.sink.cols, this.opts.sink.rows);
      this.lastSize = size;
      this.helloSent = true;
      this.send(
        helloMessage({ sessionId: this.sessionId!, terminalId: this.opts.terminalId, cols: size.cols, rows: size.rows, lastSeq: this.hasCopy ? this.received : undefined }),
      );
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = this.now();
      if (typeof event.data === 'string') this.onControl(event.data);
      else if (event.data instanceof ArrayBuffer) this.onOutput(event.data);
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.dropSocket();
      this.onClosed(event.code, opened);
    };
    ws.onerror = () => {
      // A close event follows; it decides what happens next.
    };
  }

  private onControl(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return;
    }
    const parsed = ServerMessage.safeParse(json);
    if (!parsed.success) return; // a newer server's message we do not know: ignore it
    const msg = parsed.data;
    switch (msg.type) {
      case 'ready': {
        if (msg.reset) this.opts.sink.reset();
        this.stream++;
        this.received = this.rendered = this.acked = msg.from;
        if (this.ackTimer) clearTimeout(this.ackTimer);
        this.ackTimer = null;
        this.hasCopy = true;
        this.attached = true;
        this.failures = 0;
        this.renewedSession = false;
        this.setStatus({ state: 'connected', phase: 'attached' });
        return;
      }
      case 'pong':
        return;
      case 'tasks':
        emitLab(this.opts.lab, { kind: 'tasks', tasks: msg.tasks, finished: msg.finished });
        return;
      case 'notice':
        this.opts.sink.write(noticeLine(msg.message, msg.code === 'engine-down' ? 'red' : 'yellow'));
        emitLab(this.opts.lab, { kind: 'notice', code: msg.code, host: msg.host, message: msg.message });
        return;
      case 'room':
        // The instructor is starting this lab over: when this sandbox goes, follow to the new one by itself.
        if (msg.event.kind === 'reset') this.followReset = true;
        emitLab(this.opts.lab, { kind: 'room', event: msg.event });
        return;
      case 'exit':
        this.opts.sink.write(noticeLine(this.texts.shellEnded(msg.code), 'yellow'));
        return this.stop({ kind: 'exit', code: msg.code });
      case 'error':
        return this.onServerError(msg);
    }
  }

  private onServerError(msg: Extract<ServerMessage, { type: 'error' }>): void {
    if (!msg.fatal) {
      this.opts.sink.write(noticeLine(msg.message));
      return;
    }
    switch (msg.code) {
      case ErrorCode.enum['taken-over']:
        this.opts.sink.write(noticeLine(this.texts.takenOver, 'yellow'));
        return this.stop({ kind: 'taken-over' });
      case ErrorCode.enum['sandbox-gone']:
        this.opts.sink.write(noticeLine(msg.message || this.texts.sandboxGone));
        this.forgetSession(this.sessionId);
        if (this.followReset) {
          this.followReset = false;
          return this.startNewSandbox();
        }
        return this.stop({ kind: 'sandbox-gone' });
      case ErrorCode.enum['forbidden']:
        this.opts.sink.write(noticeLine(msg.message));
        return this.stop({ kind: 'forbidden', message: msg.message });
      case ErrorCode.enum['unknown-session']:
        // The server forgot the session (it restarted, or the session expired):
        // start a new one once, then attach again. A second time in a row is a real problem.
        if (!this.renewedSession) {
          this.renewedSession = true;
          this.forgetSession(this.sessionId);
          this.sessionId = null;
          this.hasCopy = false;
          return;
        }
        this.opts.sink.write(noticeLine(msg.message));
        return this.stop({ kind: 'failed', message: msg.message });
      case ErrorCode.enum['unknown-terminal']:
        this.opts.sink.write(noticeLine(msg.message));
        return this.stop({ kind: 'failed', message: msg.message });
      default:
        // server-shutdown, internal, protocol errors: say so, then reconnect with backoff.
        this.opts.sink.write(noticeLine(msg.message, msg.code === ErrorCode.enum['server-shutdown'] ? 'yellow' : 'red'));
        return;
    }
  }

  private onOutput(data: ArrayBuffer): void {
    if (!this.attached) return;
    const bytes = new Uint8Array(data);
    const n = bytes.byteLength;
    this.received += n;
    const stream = this.stream;
    this.opts.sink.write(bytes, () => {
      if (stream !== this.stream) return;
      this.rendered += n;
      this.maybeAck();
    });
  }

  private maybeAck(): void {
    const unacked = this.rendered - this.acked;
    if (unacked <= 0) return;
    if (unacked >= ACK_EVERY_BYTES) return this.sendAck();
    // Output went quiet and everything is drawn: acknowledge after a short pause.
    if (this.rendered === this.received && !this.ackTimer) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = null;
        this.sendAck();
      }, ACK_IDLE_MS);
    }
  }

  private sendAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (!this.attached || this.rendered <= this.acked) return;
    this.acked = this.rendered;
    this.send({ type: 'ack', seq: this.rendered });
  }

  private onClosed(code: number, opened: boolean): void {
    if (this.disposed || this.stopped) return;
    // An error frame normally says what happened; the close code is the fallback.
    switch (code) {
      case CloseCode.takenOver:
        this.opts.sink.write(noticeLine(this.texts.takenOver, 'yellow'));
        return this.stop({ kind: 'taken-over' });
      case CloseCode.sandboxGone:
        this.opts.sink.write(noticeLine(this.texts.sandboxGone));
        return this.stop({ kind: 'sandbox-gone' });
      case CloseCode.forbidden:
        return this.stop({ kind: 'forbidden', message: '' });
      case CloseCode.unknownSession:
        // No error frame came first (it would have handled this): treat it the same way.
        if (this.sessionId !== null) {
          this.onServerError({ type: 'error', code: ErrorCode.enum['unknown-session'], message: 'This session is unknown to the lab server.', fatal: true });
          if (this.stopped) return;
        }
        break;
    }
    if (this.sessionId === null && this.renewedSession) {
      // unknown-session: a new session, right away.
      void this.run(++this.attempt);
      return;
    }
    this.scheduleRetry(!opened);
  }

  private send(msg: ClientMessage): void {
    const ws = this.ws;
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  }

  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.lastPingAt = 0;
    this.heartbeat = setInterval(() => {
      if (!this.ws) return;
      const now = this.now();
      // A ping is outstanding while nothing at all has come since it was sent.
      const outstanding = this.lastPingAt > this.lastFrameAt;
      // Dead: not open after DEAD_AFTER_MS, or a ping unanswered for DEAD_AFTER_MS.
      // (Judging by an unanswered ping rather than by silence keeps a background
      // tab, whose timers the browser slows to once a minute, from reconnecting for nothing.)
      const dead = this.helloSent
        ? outstanding && now - this.lastPingAt >= DEAD_AFTER_MS
        : now - this.lastFrameAt >= DEAD_AFTER_MS;
      if (dead) {
        const opened = this.helloSent;
        this.dropSocket(4000, 'heartbeat timeout');
        this.onClosed(1006, opened);
        return;
      }
      if (this.helloSent && !outstanding && now - this.lastPingAt >= PING_EVERY_MS) {
        this.lastPingAt = now;
        this.send({ type: 'ping', t: now });
      }
    }, HEARTBEAT_TICK_MS);
  }

  /** Detaches from the current socket (its late events are ignored) and closes it. */
  private dropSocket(code?: number, reason?: string): void {
    const ws = this.ws;
    this.ws = null;
    this.helloSent = false;
    this.attached = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (code !== undefined && (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  private setStatus(status: ConnectionStatus): void {
    this.status = status;
    if (!this.disposed) this.opts.onStatus(status);
  }
}

function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const c = Number.isFinite(cols) ? Math.round(cols) : 80;
  const r = Number.isFinite(rows) ? Math.round(rows) : 24;
  return { cols: Math.min(Math.max(c, 2), MAX_COLS), rows: Math.min(Math.max(r, 1), MAX_ROWS) };
}
