/**
 * Node clients for workshop rooms, speaking the real HTTP API and the real
 * dashboard and shadow WebSockets (protocol/room.ts, protocol/shadow.ts) as
 * the dashboard page does. Used by the integration tests and the load driver.
 */
import WebSocket from 'ws';
import { INSTRUCTOR_SIGN_IN_PAGE } from '../../protocol/api';
import { DASHBOARD_WS_PATH, SHADOW_WS_PATH, type DashboardServerMessage, type LearnerRow, type RoomInfo } from '../../protocol/room';
import type { ShadowServerMessage } from '../../protocol/shadow';
import { TERMINAL_PROTOCOL_VERSION } from '../../protocol/terminal';

/** The instructor or an assistant, signed in with a token (cookie kept). */
export class Staff {
  cookie = '';

  constructor(readonly baseUrl: string) {}

  static async signIn(baseUrl: string, token: string): Promise<Staff> {
    const s = new Staff(baseUrl);
    const res = await fetch(`${baseUrl}/api/instructor/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
      redirect: 'manual',
    });
    if (res.status !== 303) throw new Error(`sign-in: ${res.status} ${await res.text()}`);
    const c = res.headers.getSetCookie().find((x) => x.startsWith('vethlab_instructor='));
    if (!c) throw new Error(`sign-in gave no cookie (${INSTRUCTOR_SIGN_IN_PAGE})`);
    s.cookie = c.split(';')[0]!;
    return s;
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
    const send = () =>
      fetch(this.baseUrl + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.cookie ? { cookie: this.cookie } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    // A kept-alive socket the server closed after its idle timeout, just as this request reused it, resets
    // before the request is read: sent once more on a fresh socket.
    const res = await send().catch((err: Error & { cause?: { code?: string } }) => {
      if (err.cause?.code === 'ECONNRESET') return send();
      throw err;
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json, text };
  }

  async createRoom(body: Record<string, unknown>): Promise<RoomInfo> {
    const r = await this.request('POST', '/api/rooms', body);
    if (r.status !== 201) throw new Error(`create room: ${r.status} ${r.text}`);
    return r.json as RoomInfo;
  }

  openDashboard(room: string): Promise<DashboardClient> {
    return DashboardClient.open(this.baseUrl, this.cookie, room);
  }

  openShadow(hello: { room: string; learner: string; lab: string; lastSeq?: number }): Promise<ShadowClient> {
    return ShadowClient.open(this.baseUrl, this.cookie, hello);
  }
}

function wsUrl(base: string, path: string): string {
  return base.replace(/^http/, 'ws') + path;
}

/** Waits until a predicate over received state holds (no timing assertion: a hang guard only). */
class Waiters {
  private readonly waiters = new Set<() => boolean>();
  notify(): void {
    for (const w of [...this.waiters]) if (w()) this.waiters.delete(w);
  }
  waitFor<T>(get: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        const v = get();
        if (v === undefined || v === false) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
  }
}

export class DashboardClient {
  readonly messages: DashboardServerMessage[] = [];
  readonly rows = new Map<string, LearnerRow>();
  /** When each row message arrived (performance.now()), for the load driver. */
  onRow: ((row: LearnerRow, at: number) => void) | null = null;
  room: RoomInfo | undefined;
  closeCode: number | undefined;
  private readonly w = new Waiters();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as DashboardServerMessage;
      this.messages.push(msg);
      if (msg.type === 'snapshot') {
        this.room = msg.room;
        for (const r of msg.rows) this.rows.set(r.learner, r);
      } else if (msg.type === 'row') {
        this.rows.set(msg.row.learner, msg.row);
        this.onRow?.(msg.row, performance.now());
      } else if (msg.type === 'room') this.room = msg.room;
      this.w.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.w.notify();
    });
  }

  static open(baseUrl: string, cookie: string, room: string): Promise<DashboardClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(baseUrl, DASHBOARD_WS_PATH), { headers: cookie ? { cookie } : {} });
      const client = new DashboardClient(ws);
      ws.once('open', () => {
        ws.send(JSON.stringify({ type: 'watch', room }));
        resolve(client);
      });
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`dashboard refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  waitFor<T>(get: () => T | undefined | false, what: string, timeoutMs = 60_000): Promise<T> {
    return this.w.waitFor(get, timeoutMs, what);
  }

  close(): void {
    this.ws.close();
  }
}

export class ShadowClient {
  readonly messages: ShadowServerMessage[] = [];
  output = '';
  closeCode: number | undefined;
  private readonly w = new Waiters();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.output += Buffer.from(data as Buffer).toString('utf8');
      else this.messages.push(JSON.parse(data.toString()) as ShadowServerMessage);
      this.w.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.w.notify();
    });
  }

  static open(baseUrl: string, cookie: string, hello: { room: string; learner: string; lab: string; lastSeq?: number }): Promise<ShadowClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(baseUrl, SHADOW_WS_PATH), { headers: cookie ? { cookie } : {} });
      const client = new ShadowClient(ws);
      ws.once('open', () => {
        ws.send(JSON.stringify({ type: 'shadow', v: TERMINAL_PROTOCOL_VERSION, cols: 100, rows: 30, ...hello }));
        resolve(client);
      });
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`shadow refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  waitFor<T>(get: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
    return this.w.waitFor(get, timeoutMs, what);
  }

  waitForMessage<T extends ShadowServerMessage['type']>(type: T, pred: (m: Extract<ShadowServerMessage, { type: T }>) => boolean = () => true): Promise<Extract<ShadowServerMessage, { type: T }>> {
    return this.waitFor(() => this.messages.find((m): m is Extract<ShadowServerMessage, { type: T }> => m.type === type && pred(m as Extract<ShadowServerMessage, { type: T }>)), `a ${type} frame`);
  }

  close(): void {
    this.ws.close();
  }
}
