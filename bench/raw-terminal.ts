/**
 * A lean terminal WebSocket client for the benchmarks. It speaks the same
 * protocol as the page (protocol/terminal.ts) and acknowledges output the
 * way the page does (every ACK_EVERY_BYTES, or ACK_IDLE_MS after output goes
 * quiet), but only counts bytes and keeps a small tail of the output: it
 * never builds a string of everything received, so it measures the server,
 * not itself.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { ACK_EVERY_BYTES, helloMessage, TERMINAL_WS_PATH, type ClientMessage, type ServerMessage } from '../protocol/terminal';
import { plain } from '../test/support/terminal-client';

/** Bytes of output kept for prompt and marker detection. */
const TAIL_BYTES = 4096;
/** As the page (src/components/Terminal/connection.ts): acknowledge this long after output goes quiet. */
const ACK_IDLE_MS = 200;

export const PROMPT = 'root@sandbox:~# ';

export interface RawTerminalOptions {
  terminalId: string;
  cols: number;
  rows: number;
  lastSeq: number | undefined;
  /** Acknowledge once this many bytes are unacknowledged. */
  ackEvery: number;
}

export class RawTerminal {
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

  private constructor(
    readonly ws: WebSocket,
    readonly opts: RawTerminalOptions,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const at = performance.now();
        const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        this.bytes += chunk.length;
        this.seq += chunk.length;
        this.pushTail(chunk);
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

  static open(baseUrl: string, cookie: string | undefined, sessionId: string, partial: Partial<RawTerminalOptions> = {}): Promise<RawTerminal> {
    const opts: RawTerminalOptions = { terminalId: 'main', cols: 120, rows: 40, lastSeq: undefined, ackEvery: ACK_EVERY_BYTES, ...partial };
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + TERMINAL_WS_PATH, {
      headers: cookie ? { cookie } : {},
      perMessageDeflate: false,
    });
    const term = new RawTerminal(ws, opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('terminal WebSocket did not open within 10 s'));
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        term.openedAt = performance.now();
        term.send(helloMessage({ sessionId, terminalId: opts.terminalId, cols: opts.cols, rows: opts.rows, lastSeq: opts.lastSeq }));
        resolve(term);
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

  send(msg: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  input(data: string): void {
    this.send({ type: 'input', data });
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
    if (this.seq - this.lastAck >= this.opts.ackEvery) return this.ack();
    if (!this.ackTimer) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = null;
        this.ack();
      }, ACK_IDLE_MS);
    }
  }

  private pushTail(chunk: Buffer): void {
    if (chunk.length >= TAIL_BYTES) this.tail = Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES));
    else {
      const keep = this.tail.subarray(Math.max(0, this.tail.length - (TAIL_BYTES - chunk.length)));
      this.tail = Buffer.concat([keep, chunk]);
    }
  }

  /** The tail of the output as text without escape sequences. */
  tailText(): string {
    return plain(this.tail.toString('utf8'));
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves once `predicate` holds (checked on every frame), or rejects after timeoutMs or when the socket closes. */
  waitFor<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
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
          reject(new Error(`terminal closed (${this.closeCode}) while waiting for ${what}; last output: ${JSON.stringify(this.tailText().slice(-300))}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last output: ${JSON.stringify(this.tailText().slice(-300))}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }

  /** Waits until the output ends with the shell prompt. */
  waitForPrompt(timeoutMs = 60_000): Promise<true> {
    return this.waitFor(() => this.tailText().endsWith(PROMPT) || undefined, timeoutMs, 'the prompt');
  }

  /** Closes the socket and waits (bounded) for the close to complete. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closeCode !== undefined) return;
    this.ws.close();
    await this.waitFor(() => this.closeCode !== undefined || undefined, timeoutMs, 'close').catch(() => this.ws.terminate());
  }
}
