/**
 * A Node client for the lab-server, speaking the real HTTP API and the real
 * terminal WebSocket protocol, as the page does. Used by the integration
 * tests, the benchmarks and (later) the load driver.
 */
import WebSocket from 'ws';
import { LEARNER_COOKIE, type SessionInfo } from '../../protocol/api';
import { helloMessage, TERMINAL_WS_PATH, type ClientMessage, type ServerMessage } from '../../protocol/terminal';

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

export interface TerminalOptions {
  terminalId: string;
  cols: number;
  rows: number;
  lastSeq: number | undefined;
  /** Acknowledge output as it arrives (a page that renders instantly). */
  autoAck: boolean;
  origin: string | undefined;
}

/** Terminal output without escape sequences (CSI, OSC, charset selection). */
export function plain(text: string): string {
  return text
    .replace(/\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g, '')
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[()][0-9A-B]/g, '')
    .replace(/\x1b[=>]/g, '');
}

export class TerminalConnection {
  readonly ws: WebSocket;
  /** Everything received since `ready`, decoded. */
  output = '';
  bytes = 0;
  /** Offset of the next byte (from + bytes received). */
  seq = 0;
  ready: Extract<ServerMessage, { type: 'ready' }> | undefined;
  readonly messages: ServerMessage[] = [];
  closeCode: number | undefined;
  private waiters = new Set<() => void>();
  private decoder = new TextDecoder();

  private constructor(ws: WebSocket, readonly opts: TerminalOptions) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const buf = data as Buffer;
        this.bytes += buf.length;
        this.seq += buf.length;
        this.output += this.decoder.decode(buf, { stream: true });
        if (this.opts.autoAck) this.send({ type: 'ack', seq: this.seq });
      } else {
        const msg = JSON.parse((data as Buffer).toString('utf8')) as ServerMessage;
        this.messages.push(msg);
        if (msg.type === 'ready') {
          this.ready = msg;
          this.seq = msg.from;
        }
      }
      this.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.notify();
    });
  }

  static open(baseUrl: string, cookie: string | undefined, sessionId: string, partial: Partial<TerminalOptions>): Promise<TerminalConnection> {
    const opts: TerminalOptions = { terminalId: 'main', cols: 120, rows: 40, lastSeq: undefined, autoAck: true, origin: undefined, ...partial };
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + TERMINAL_WS_PATH, {
      headers: { ...(cookie ? { cookie } : {}), ...(opts.origin ? { origin: opts.origin } : {}) },
    });
    const conn = new TerminalConnection(ws, opts);
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        conn.send(helloMessage({ sessionId, terminalId: opts.terminalId, cols: opts.cols, rows: opts.rows, lastSeq: opts.lastSeq }));
        resolve(conn);
      });
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  send(msg: ClientMessage | Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  type(text: string): void {
    this.send({ type: 'input', data: text });
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves once `predicate` holds (checked on every frame), or rejects after timeoutMs. */
  waitFor<T>(predicate: () => T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = predicate();
        if (v) {
          cleanup();
          resolve(v);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; last output:\n${this.output.slice(-1500)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      if (!check()) this.waiters.add(check);
    });
  }

  waitForReady(timeoutMs = 30_000): Promise<Extract<ServerMessage, { type: 'ready' }>> {
    return this.waitFor(() => this.ready, timeoutMs, 'ready');
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

  close(): void {
    this.ws.close();
  }
}
