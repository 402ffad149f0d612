/**
 * A Node client for the lab-server, speaking the real HTTP API and the real
 * terminal WebSocket protocol, as the page does. Used by the integration
 * tests, the benchmarks and the load driver.
 */
import WebSocket from 'ws';
import { LEARNER_COOKIE, type SessionInfo } from '../../protocol/api';
import { performance } from 'node:perf_hooks';
import { ACK_EVERY_BYTES, helloMessage, TERMINAL_WS_PATH, type ClientMessage, type ServerMessage } from '../../protocol/terminal';

/** A learner: a cookie jar for one lab-server. */
export class Learner {
  cookie: string | undefined;

  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.cookie ? { cookie: this.cookie } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const setCookie = res.headers.get('set-cookie');
    const m = setCookie && new RegExp(`${LEARNER_COOKIE}=([^;]+)`).exec(setCookie);
    if (m) this.cookie = `${LEARNER_COOKIE}=${m[1]}`;
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
  }

  async startSession(lab = 'network-stack'): Promise<SessionInfo> {
    const { status, json } = await this.request('POST', '/api/sessions', { lab });
    if (status !== 201) throw new Error(`start session: ${status} ${JSON.stringify(json)}`);
    return json as SessionInfo;
  }

  async endSession(id: string): Promise<void> {
    await this.request('DELETE', `/api/sessions/${id}`);
  }

  openTerminal(sessionId: string, opts: Partial<TerminalOptions> = {}): Promise<TerminalConnection> {
    return TerminalConnection.open(this.baseUrl, this.cookie, sessionId, opts);
  }
}

/**
 * How output is acknowledged: `frame` as it arrives (a page that renders
 * instantly), `page` as the page does (every ACK_EVERY_BYTES, or
 * ACK_IDLE_MS after output goes quiet), `never` (a page that stopped
 * rendering).
 */
export type AckPolicy = 'frame' | 'page' | 'never';

export interface TerminalOptions {
  terminalId: string;
  cols: number;
  rows: number;
  lastSeq: number | undefined;
  ack: AckPolicy;
  /** Keep every byte as text in `output` (tests); off, only `tail` is kept (benchmarks measure the server, not the client). */
  keepOutput: boolean;
  origin: string | undefined;
}

/** As the page (src/components/Terminal/connection.ts): acknowledge this long after output goes quiet. */
const ACK_IDLE_MS = 200;
/** Bytes of output kept in `tail` for prompt and marker detection. */
const TAIL_BYTES = 4096;

/** A client that acknowledges as the page does and keeps only the tail: it measures the server, not itself (benchmarks). */
export const LEAN_TERMINAL: Partial<TerminalOptions> = { ack: 'page', keepOutput: false };

/** The sandbox's shell prompt, as the tail of the screen shows it. */
export const PROMPT = 'root@sandbox:~# ';

/** Terminal output without escape sequences (CSI, OSC, charset selection). */
export function plain(text: string): string {
  return text
    .replace(/\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g, '')
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[()][0-9A-B]/g, '')
    .replace(/\x1b[=>]/g, '');
}

/**
 * One terminal WebSocket, speaking protocol/terminal.ts as the page does:
 * the one client of the integration tests, the benchmarks and the load
 * driver (the page's own, with reconnection and rendering, is
 * src/components/Terminal/connection.ts).
 */
export class TerminalConnection {
  readonly ws: WebSocket;
  /** Everything received since `ready`, decoded (only with keepOutput). */
  output = '';
  /** Output bytes received since `ready`. */
  bytes = 0;
  /** Offset of the next byte (ready.from + bytes). */
  seq = 0;
  /** The last TAIL_BYTES bytes of output. */
  tail: Buffer = Buffer.alloc(0);
  ready: Extract<ServerMessage, { type: 'ready' }> | undefined;
  /** performance.now() when the socket opened, and when `ready` arrived. */
  openedAt = 0;
  readyAt = 0;
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  acksSent = 0;
  /** Called for every output frame (with its arrival time), before waiters are checked. */
  onOutput: ((chunk: Buffer, at: number) => void) | null = null;
  private lastAck = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<() => boolean>();
  private readonly decoder = new TextDecoder();

  private constructor(
    ws: WebSocket,
    readonly opts: TerminalOptions,
  ) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const at = performance.now();
        const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        this.bytes += chunk.length;
        this.seq += chunk.length;
        this.pushTail(chunk);
        if (this.opts.keepOutput) this.output += this.decoder.decode(chunk, { stream: true });
        this.onOutput?.(chunk, at);
        this.maybeAck();
      } else {
        const msg = JSON.parse(String(data)) as ServerMessage;
        this.messages.push(msg);
        if (msg.type === 'ready') {
          this.ready = msg;
          this.readyAt = performance.now();
          this.seq = this.lastAck = msg.from;
        }
      }
      this.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      if (this.ackTimer) clearTimeout(this.ackTimer);
      this.notify();
    });
    ws.on('error', () => {});
  }

  static open(baseUrl: string, cookie: string | undefined, sessionId: string, partial: Partial<TerminalOptions> = {}): Promise<TerminalConnection> {
    const opts: TerminalOptions = { terminalId: 'main', cols: 120, rows: 40, lastSeq: undefined, ack: 'frame', keepOutput: true, origin: undefined, ...partial };
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + TERMINAL_WS_PATH, {
      headers: { ...(cookie ? { cookie } : {}), ...(opts.origin ? { origin: opts.origin } : {}) },
      perMessageDeflate: false,
    });
    const conn = new TerminalConnection(ws, opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('terminal WebSocket did not open within 10 s'));
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        conn.openedAt = performance.now();
        conn.send(helloMessage({ sessionId, terminalId: opts.terminalId, cols: opts.cols, rows: opts.rows, lastSeq: opts.lastSeq }));
        resolve(conn);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
    });
  }

  send(msg: ClientMessage | Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Keystrokes, as the page sends them. */
  type(text: string): void {
    this.send({ type: 'input', data: text });
  }

  /** Acknowledges everything received so far. */
  ack(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    if (this.seq <= this.lastAck) return;
    this.lastAck = this.seq;
    this.acksSent++;
    this.send({ type: 'ack', seq: this.seq });
  }

  private maybeAck(): void {
    if (this.opts.ack === 'never') return;
    if (this.opts.ack === 'frame' || this.seq - this.lastAck >= ACK_EVERY_BYTES) return this.ack();
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = null;
      this.ack();
    }, ACK_IDLE_MS);
  }

  private pushTail(chunk: Buffer): void {
    if (chunk.length >= TAIL_BYTES) this.tail = Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES));
    else this.tail = Buffer.concat([this.tail.subarray(Math.max(0, this.tail.length - (TAIL_BYTES - chunk.length))), chunk]);
  }

  /** The tail of the output as text without escape sequences. */
  tailText(): string {
    return plain(this.tail.toString('utf8'));
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** The output the waiters' error messages show. */
  private lastOutput(): string {
    return this.opts.keepOutput ? this.output.slice(-1500) : this.tailText().slice(-300);
  }

  /**
   * Resolves once `predicate` holds (checked on every frame), or rejects
   * after timeoutMs, or when the socket closes first.
   */
  waitFor<T>(predicate: () => T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = (): boolean => {
        const v = predicate();
        if (v) {
          cleanup();
          resolve(v);
          return true;
        }
        if (this.closeCode !== undefined) {
          cleanup();
          reject(new Error(`terminal closed (${this.closeCode}) while waiting for ${what}; last output:\n${this.lastOutput()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last output:\n${this.lastOutput()}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  waitForReady(timeoutMs = 30_000): Promise<Extract<ServerMessage, { type: 'ready' }>> {
    return this.waitFor(() => this.ready, timeoutMs, 'ready');
  }

  /** Waits until the output ends with the shell prompt. */
  waitForPrompt(timeoutMs = 60_000): Promise<true> {
    return this.waitFor(() => this.tailText().endsWith(PROMPT) || undefined, timeoutMs, 'the prompt');
  }

  /** Raw output since `from` (an index into `output`) matching the pattern. */
  waitForOutput(pattern: RegExp, from = 0, timeoutMs = 20_000): Promise<RegExpExecArray> {
    return this.waitFor(() => pattern.exec(this.output.slice(from)) ?? undefined, timeoutMs, String(pattern));
  }

  /** Like waitForOutput, on the text without escape sequences. */
  waitForText(pattern: RegExp, from = 0, timeoutMs = 20_000): Promise<RegExpExecArray> {
    return this.waitFor(() => pattern.exec(plain(this.output.slice(from))) ?? undefined, timeoutMs, String(pattern));
  }

  waitForMessage<T extends ServerMessage['type']>(type: T, timeoutMs = 10_000): Promise<Extract<ServerMessage, { type: T }>> {
    return this.waitFor(() => this.messages.find((m): m is Extract<ServerMessage, { type: T }> => m.type === type), timeoutMs, `${type} message`);
  }

  waitForClose(timeoutMs = 10_000): Promise<number> {
    return this.waitFor(() => this.closeCode, timeoutMs, 'close');
  }

  /**
   * Types a command and resolves with what it printed, using unique markers
   * so the echo of the command line itself is not mistaken for its output.
   */
  async run(command: string, timeoutMs = 30_000): Promise<string> {
    const id = Math.random().toString(36).slice(2, 8);
    const from = this.output.length;
    // The markers are split in the typed line so only the printed ones match.
    this.type(`echo "<<${id}""-start>>"; ${command}; echo "<<${id}""-end:$?>>"\r`);
    const m = await this.waitForText(new RegExp(`<<${id}-start>>\\r?\\n([\\s\\S]*?)<<${id}-end:(\\d+)>>`), from, timeoutMs);
    return m[1]!.replace(/\r\n/g, '\n');
  }

  /** Closes the socket; resolves once it has closed (bounded). */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closeCode !== undefined) return;
    this.ws.close();
    await this.waitFor(() => this.closeCode !== undefined || undefined, timeoutMs, 'close').catch(() => this.ws.terminate());
  }
}
