/**
 * The lab-server's front door: the built course site, the REST API and the
 * terminal WebSockets on one HTTP server. Identifies the learner by cookie,
 * validates every input (zod) and answers bad input with a 4xx and a message
 * a person can act on. One guard wraps every request and every upgrade:
 * nothing a client sends can throw past it (a throw would end the process
 * and every learner's terminal with it).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import serveHandler from 'serve-handler';
import { WebSocketServer, type WebSocket } from 'ws';
import { INSTRUCTOR_SIGN_IN_PAGE, LEARNER_COOKIE, LabId, SetNameRequest, StartSessionRequest, type ApiError } from '../../protocol/api';
import { INSTRUCTOR_COOKIE, INSTRUCTOR_SESSION_MS, type Identity, type StaffRole } from './identity';
import { DASHBOARD_PAGE, DASHBOARD_WS_PATH, SHADOW_WS_PATH } from '../../protocol/room';
import type { RoomApi } from '../rooms/room-api';
import { RequestError } from '../errors';
import { AnswerRequest, HintRequest } from '../../protocol/lab';
import { grade, gradesCsv } from '../labs/grading';
import { labInfo, type LabService } from '../labs/lab-service';
import { CloseCode, TERMINAL_WS_PATH } from '../../protocol/terminal';
import type { Logger } from '../log';
import type { Store } from '../store/store';
import type { SessionManager } from '../sessions/session-manager';
import type { TerminalRegistry } from '../terminal/terminal-registry';
import { serveTerminalSocket } from '../terminal/terminal-socket';

const MAX_BODY_BYTES = 16 * 1024;
const HEARTBEAT_MS = 20_000;
/** Wrong instructor tokens one address may try per window, before it must wait. */
export const MAX_SIGN_IN_FAILURES = 10;
const SIGN_IN_WINDOW_MS = 10 * 60_000;
/** A form post of the sign-in page: small. */
const MAX_FORM_BYTES = 4 * 1024;

export interface ApiServerOptions {
  sessions: SessionManager;
  registry: TerminalRegistry;
  labs: LabService;
  store: Store;
  identity: Identity;
  /** Mark cookies Secure (the public URL is https). */
  secureCookies: boolean;
  siteDir: string;
  allowedOrigins: string[];
  log: Logger;
  health: () => Record<string, unknown>;
  /** Workshop rooms (/api/rooms/..., the dashboard and shadow sockets). */
  rooms?: RoomApi;
}

/** Longest request target logged with a refusal (a fuzzer's 80 KB URL is not worth keeping). */
const LOGGED_TARGET_CHARS = 200;

/** Cookies by name; a value that is not valid percent-encoding is kept as sent (it then matches nothing). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const raw = part.slice(i + 1).trim();
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // not percent-encoding: keep the raw text
    }
    out[part.slice(0, i).trim()] = value;
  }
  return out;
}

/**
 * The request target as a URL. Only origin-form ("/path?query") is served:
 * absolute-form is for proxies, authority-form for CONNECT, and "//host"
 * would be read as a host by URL parsers.
 */
export function parseTarget(target: string | undefined): URL {
  const raw = target ?? '/';
  if (!raw.startsWith('/') || raw.startsWith('//')) throw new RequestError('bad-request', 'The request target must be a path such as /api/health.');
  try {
    return new URL(raw, 'http://vethlab.invalid');
  } catch {
    throw new RequestError('bad-request', 'The request target is not a valid path.');
  }
}

/** The learner's cookie value (not yet verified). */
function learnerCookie(req: IncomingMessage): string | undefined {
  return parseCookies(req.headers.cookie)[LEARNER_COOKIE];
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) throw new RequestError('too-large', `Request body over ${MAX_BODY_BYTES} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw new RequestError('too-large', `Request body over ${MAX_BODY_BYTES} bytes.`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof RequestError) throw err;
    throw new RequestError('bad-request', 'The request body ended before its declared length.');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) throw new RequestError('bad-json', 'Request body is empty; send a JSON object.');
  try {
    return JSON.parse(text);
  } catch {
    throw new RequestError('bad-json', 'Request body is not valid JSON.');
  }
}

export async function readBody<T>(req: IncomingMessage, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }): Promise<T> {
  const body = schema.safeParse(await readJson(req));
  if (!body.success) {
    const issue = body.error.issues[0]!;
    throw new RequestError('bad-request', `Invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return body.data;
}

const LOCALES = new Set(['en', 'zh-Hans']);
function localeOf(url: URL): string {
  const l = url.searchParams.get('locale') ?? 'en';
  if (!LOCALES.has(l)) throw new RequestError('bad-locale', `Unknown locale "${l}" (en, zh-Hans).`);
  return l;
}

/** Same-origin pages, or the configured extra origins (e.g. the dev server). */
export function originAllowed(req: IncomingMessage, allowed: string[]): boolean {
  const origin = req.headers.origin;
  if (!origin) return true; // not a browser: no ambient credentials to abuse
  if (allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** The peer's address, for per-address limits (behind a proxy: the proxy's). */
function addressOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** The token from the sign-in form (urlencoded) or a JSON body {"token": "..."}. */
async function readSignInToken(req: IncomingMessage): Promise<string | undefined> {
  if (Number(req.headers['content-length']) > MAX_FORM_BYTES) throw new RequestError('too-large', `Sign-in body over ${MAX_FORM_BYTES} bytes.`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_FORM_BYTES) throw new RequestError('too-large', `Sign-in body over ${MAX_FORM_BYTES} bytes.`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof RequestError) throw err;
    throw new RequestError('bad-request', 'The request body ended before its declared length.');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
    try {
      const token = (JSON.parse(text) as { token?: unknown } | null)?.token;
      return typeof token === 'string' ? token : undefined;
    } catch {
      throw new RequestError('bad-json', 'Request body is not valid JSON.');
    }
  }
  return new URLSearchParams(text).get('token') ?? undefined;
}

const PAGE_STYLE = 'body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}input{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}button{font:inherit;margin-top:.6rem;padding:.3rem 1rem}';

/** A page of its own (no site build needed, no script): sign in with the token, then the export links. */
function signInHtml(role: StaffRole | undefined, assistantToken: string | undefined): string {
  const body = role === 'assistant'
    ? `<h1>Assistant</h1><p>You are signed in as an assistant (view and shadow only) for 12 hours, in this browser.</p>
<ul><li><a href="${DASHBOARD_PAGE}">Workshop dashboard</a></li></ul>
<form method="post" action="/api/instructor/sign-out"><button>Sign out</button></form>`
    : role === 'instructor'
    ? `<h1>Instructor</h1><p>You are signed in (for 12 hours, in this browser).</p>
<ul><li><a href="${DASHBOARD_PAGE}">Workshops: create a room, live dashboard</a></li><li><a href="/api/grades?format=csv">All grades (CSV)</a></li><li><a href="/api/grades">All grades (JSON)</a></li></ul>
<p>Learners appear under a pseudonym, and their name if they gave one.</p>
<p>Assistants (view and shadow only) sign in here with this token: <code>${assistantToken ?? ''}</code></p>
<form method="post" action="/api/instructor/sign-out"><button>Sign out</button></form>`
    : `<h1>Instructor sign-in</h1><p>The token is in the server's data folder (<code>instructor-token</code>), or what <code>VETHLAB_INSTRUCTOR_TOKEN</code> says.</p>
<form method="post" action="/api/instructor/sign-in"><label>Token <input name="token" type="password" autocomplete="current-password" required autofocus></label><button>Sign in</button></form>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>vethlab: instructor</title><meta name="viewport" content="width=device-width,initial-scale=1"><style>${PAGE_STYLE}</style></head><body>${body}</body></html>`;
}

/** Answers a socket outside Node's response machinery (a refused upgrade, an unreadable request) and closes it. */
function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  // Destroyed once written: a half-open socket whose unread input keeps it alive would leak (and stall close()).
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\n${message}\n`);
}

export class ApiServer {
  readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly alive = new WeakSet<WebSocket>();
  /** Failed instructor sign-ins and bearer tokens, by address. */
  private readonly signInFailures = new Map<string, number[]>();

  constructor(private readonly opts: ApiServerOptions) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.opts.log.error({ err }, 'request guard failed'));
    });
    // A client that trickles its headers or body (slowloris) holds a socket for at most this long.
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 60_000;
    // Bytes Node's HTTP parser cannot read (bad request line, huge headers): a 4xx, a log line, no crash.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      opts.log.info({ code: err.code }, 'unreadable request refused');
      rejectUpgrade(socket, status, 'The request could not be read.');
    });
    // maxPayload well above the protocol limit, so oversize frames get a protocol error, not a dropped socket.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node stops watching an upgraded socket's errors: a reset here must not become an uncaught error.
      socket.on('error', (err) => opts.log.debug({ err }, 'upgrade socket error'));
      try {
        this.upgrade(req, socket, head);
      } catch (err) {
        const known = err instanceof RequestError ? err : undefined;
        if (known) opts.log.info({ code: known.code, url: req.url?.slice(0, LOGGED_TARGET_CHARS) }, 'upgrade refused');
        else opts.log.error({ err, url: req.url?.slice(0, LOGGED_TARGET_CHARS) }, 'upgrade failed');
        rejectUpgrade(socket, known ? known.status : 500, known ? known.message : 'Internal error; the server log has the details.');
      }
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = parseTarget(req.url);
    const rooms = this.opts.rooms;
    if (rooms && (url.pathname === DASHBOARD_WS_PATH || url.pathname === SHADOW_WS_PATH)) {
      if (!originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
      // Signed-in staff only, by cookie (a browser cannot set headers on a WebSocket; no token in the URL).
      const role = this.opts.identity.roleOfCookie(parseCookies(req.headers.cookie)[INSTRUCTOR_COOKIE]);
      if (!role) throw new RequestError('staff-only', `The workshop dashboard is for the instructor and assistants: sign in at ${INSTRUCTOR_SIGN_IN_PAGE}.`);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', (err) => this.opts.log.debug({ err }, 'room socket error'));
        this.alive.add(ws);
        ws.on('pong', () => this.alive.add(ws));
        if (url.pathname === DASHBOARD_WS_PATH) rooms.serveDashboard(ws, role);
        else rooms.serveShadow(ws, role);
      });
      return;
    }
    if (url.pathname !== TERMINAL_WS_PATH) throw new RequestError('not-found', `No WebSocket endpoint at ${url.pathname}.`);
    if (!originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
    const learner = this.opts.identity.learnerOf(learnerCookie(req));
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // Bad frames (bad opcode, unmasked, over maxPayload) arrive as 'error' events: without a listener they end the process.
      ws.on('error', (err) => this.opts.log.debug({ err }, 'terminal socket error'));
      if (!learner) {
        ws.send(JSON.stringify({ type: 'error', code: 'forbidden', message: 'No learner cookie this server issued: reload the course page.', fatal: true }));
        ws.close(CloseCode.forbidden, 'no learner');
        return;
      }
      this.alive.add(ws);
      ws.on('pong', () => this.alive.add(ws));
      serveTerminalSocket(ws, { learner, sessions: this.opts.sessions, registry: this.opts.registry, log: this.opts.log, ...(this.opts.rooms ? { onInput: this.opts.rooms.inputListener() } : {}) });
    });
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    // Drop sockets that stop answering pings (a laptop lid closed mid-lab).
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients) {
        if (!this.alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.alive.delete(ws);
        ws.ping();
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    return this.server.address() as AddressInfo;
  }

  /** Tells every page the server is going away, then closes. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const ws of this.wss.clients) {
      ws.send(JSON.stringify({ type: 'error', code: 'server-shutdown', message: 'The lab server is restarting; reconnecting…', fatal: true }));
      ws.close(CloseCode.shutdown, 'shutdown');
    }
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The learner of this request; one without a cookie this server issued gets a new identity. */
  private learner(req: IncomingMessage, res: ServerResponse): string {
    const known = this.opts.identity.learnerOf(learnerCookie(req));
    if (known) return known;
    const fresh = this.opts.identity.newLearner();
    res.setHeader('set-cookie', this.cookie(LEARNER_COOKIE, fresh.cookie, 31_536_000, 'Lax', '/'));
    return fresh.id;
  }

  private cookie(name: string, value: string, maxAgeSec: number, sameSite: 'Lax' | 'Strict', path: string): string {
    return `${name}=${value}; Path=${path}; HttpOnly; SameSite=${sameSite}; Max-Age=${maxAgeSec}${this.opts.secureCookies ? '; Secure' : ''}`;
  }

  /** Instructor requests: the sign-in cookie (browsers) or `Authorization: Bearer <token>` (scripts). */
  private isInstructor(req: IncomingMessage): boolean {
    return this.staffRole(req) === 'instructor';
  }

  /** The instructor or an assistant: their sign-in cookie, or a bearer token (scripts). */
  private staffRole(req: IncomingMessage): StaffRole | undefined {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) return this.tryToken(req, bearer);
    return this.opts.identity.roleOfCookie(parseCookies(req.headers.cookie)[INSTRUCTOR_COOKIE]);
  }

  /** Compares a presented token; an address that keeps guessing wrong must wait (a short VETHLAB_INSTRUCTOR_TOKEN is guessable). */
  private tryToken(req: IncomingMessage, token: string | undefined): StaffRole | undefined {
    const address = addressOf(req);
    const now = Date.now();
    const recent = (this.signInFailures.get(address) ?? []).filter((t) => t > now - SIGN_IN_WINDOW_MS);
    if (recent.length >= MAX_SIGN_IN_FAILURES) {
      throw new RequestError('rate-limited', 'Too many wrong instructor tokens from this address; wait a few minutes.', { afterSec: Math.ceil((recent[0]! + SIGN_IN_WINDOW_MS - now) / 1000) });
    }
    const role = this.opts.identity.roleOfToken(token);
    if (role) return role;
    this.opts.log.warn({ address }, 'wrong instructor token');
    // Bounded however many addresses guess: the oldest entry goes first.
    if (this.signInFailures.size >= 10_000 && !this.signInFailures.has(address)) this.signInFailures.delete(this.signInFailures.keys().next().value!);
    this.signInFailures.set(address, [...recent, now]);
    return undefined;
  }

  /** The guard: every request ends here in an answer, whatever it contained. */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = parseTarget(req.url);
      if (url.pathname.startsWith('/api/')) await this.api(req, res, url);
      else if (url.pathname === INSTRUCTOR_SIGN_IN_PAGE && req.method === 'GET') this.signInPage(req, res);
      else await this.site(req, res, url);
    } catch (err) {
      this.refuse(req, res, err);
    }
  }

  private refuse(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const url = req.url?.slice(0, LOGGED_TARGET_CHARS);
    const known = err instanceof RequestError ? err : undefined;
    if (known) this.opts.log.info({ code: known.code, method: req.method, url }, 'request refused');
    else this.opts.log.error({ err, method: req.method, url }, 'request failed');
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (!known) return sendJson(res, 500, { error: 'Internal error; the server log has the details.', code: 'internal' } satisfies ApiError);
    if (known.retry) res.setHeader('retry-after', String(known.retry.afterSec));
    sendJson(res, known.status, { error: known.message, code: known.code, ...(known.retry?.position ? { position: known.retry.position } : {}) } satisfies ApiError);
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean); // ['api', ...]
    if (parts[1] === 'health' && parts.length === 2 && method === 'GET') {
      return sendJson(res, 200, { ok: true, ...this.opts.health() });
    }
    if (parts[1] === 'grades' && parts.length === 2 && method === 'GET') return this.grades(req, res, url);
    if (parts[1] === 'instructor' && parts.length === 3) return this.instructor(req, res, parts[2]!, method);
    if (parts[1] === 'rooms' && this.opts.rooms) {
      if (method !== 'GET' && !originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
      return this.opts.rooms.handle(req, res, url, parts.slice(2), {
        learner: () => this.learner(req, res),
        knownLearner: () => this.opts.identity.learnerOf(learnerCookie(req)),
        role: () => this.staffRole(req),
        address: addressOf(req),
      });
    }
    if (parts[1] === 'me' && parts.length === 2 && method === 'PUT') {
      if (!originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
      const learner = this.learner(req, res);
      const body = await readBody(req, SetNameRequest);
      this.opts.store.setName(learner, body.name);
      return sendJson(res, 200, { name: body.name });
    }
    if (parts[1] === 'labs' && (parts.length === 3 || (parts.length === 4 && parts[3] === 'grade')) && method === 'GET') {
      const id = LabId.safeParse(parts[2]);
      const lab = id.success ? this.opts.labs.catalog.get(id.data) : undefined;
      if (!lab) throw new RequestError('unknown-lab', `There is no lab called "${parts[2]}".`);
      if (parts.length === 3) return sendJson(res, 200, labInfo(lab, localeOf(url)));
      const learner = this.learner(req, res);
      const progress = this.opts.store.labProgress(learner, lab.id);
      if (!progress) throw new RequestError('not-started', 'You have not started this lab yet.');
      return sendJson(res, 200, grade(lab, progress, this.opts.store.tasks(learner, lab.id), this.who(learner)));
    }
    if (parts[1] === 'sessions') {
      if (method !== 'GET' && !originAllowed(req, this.opts.allowedOrigins)) {
        throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
      }
      const learner = this.learner(req, res);
      if (parts.length === 2 && method === 'POST') {
        const body = await readBody(req, StartSessionRequest);
        const session = await this.opts.sessions.start(learner, body.lab, addressOf(req));
        return sendJson(res, 201, this.opts.sessions.info(session));
      }
      if (parts.length >= 3) {
        const session = this.opts.sessions.get(parts[2]!, learner);
        const action = parts.length === 4 ? parts[3] : parts.length === 3 ? '' : undefined;
        if (action === '' && method === 'GET') return sendJson(res, 200, this.opts.sessions.info(session));
        if (action === '' && method === 'DELETE') {
          await this.opts.sessions.end(session.id, 'ended-by-learner');
          res.writeHead(204).end();
          return;
        }
        const runner = this.opts.labs.runner(session.id);
        if (action === 'lab' && method === 'GET') {
          if (!runner) throw new RequestError('no-lab', 'This session runs no lab.');
          return sendJson(res, 200, runner.status(localeOf(url)));
        }
        if (action === 'check' && method === 'POST') {
          if (!runner) throw new RequestError('no-lab', 'This session runs no lab.');
          await runner.check('manual');
          return sendJson(res, 200, runner.status(localeOf(url)));
        }
        if (action === 'hint' && method === 'POST') {
          const body = await readBody(req, HintRequest);
          const hints = runner?.revealHint(body.task, body.locale ?? 'en');
          if (!hints) throw new RequestError('unknown-task', `This lab has no task "${body.task}".`);
          return sendJson(res, 200, { task: body.task, hints });
        }
        if (action === 'answer' && method === 'POST') {
          const body = await readBody(req, AnswerRequest);
          const status = await runner?.answer(body.task, body.answer.trim());
          if (!status) throw new RequestError('unknown-task', `This lab has no question task "${body.task}".`);
          return sendJson(res, 200, status);
        }
        if (action === 'reset' && method === 'POST') {
          const fresh = await this.opts.sessions.restart(session.id, learner, addressOf(req));
          this.opts.labs.runner(fresh.id)?.reset(fresh.hosts);
          return sendJson(res, 201, this.opts.sessions.info(fresh));
        }
      }
      throw new RequestError('bad-method', `${method} ${url.pathname} is not supported.`);
    }
    throw new RequestError('not-found', `No API endpoint at ${url.pathname}.`);
  }

  private who(learner: string): { learnerId: string; name?: string | undefined } {
    return { learnerId: this.opts.identity.pseudonym(learner), name: this.opts.store.nameOf(learner) };
  }

  /** Instructors: every learner's grade in a lab, as JSON or CSV (sign-in cookie or bearer token, never a URL). */
  private grades(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (!this.isInstructor(req)) {
      throw new RequestError('instructor-only', `Grade export is for instructors: sign in at ${INSTRUCTOR_SIGN_IN_PAGE}, or send Authorization: Bearer <token>.`);
    }
    const labId = url.searchParams.get('lab');
    const labs = labId ? [this.opts.labs.catalog.get(labId)] : this.opts.labs.catalog.all();
    if (labs.some((l) => !l)) throw new RequestError('unknown-lab', `There is no lab called "${labId}".`);
    const grades = labs.flatMap((lab) => this.opts.store.labRuns(lab!.id).map((r) => grade(lab!, r.progress, r.tasks, this.who(r.progress.learner))));
    const format = url.searchParams.get('format') ?? 'json';
    if (format === 'csv') {
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="vethlab-grades${labId ? '-' + labId : ''}.csv"` });
      res.end(gradesCsv(grades));
      return;
    }
    if (format !== 'json') throw new RequestError('bad-format', 'format is json or csv.');
    sendJson(res, 200, grades);
  }

  /** Sign in (a form post of the token), sign out, or ask whether signed in. */
  private async instructor(req: IncomingMessage, res: ServerResponse, action: string, method: string): Promise<void> {
    if (action === 'status' && method === 'GET') {
      const role = this.staffRole(req);
      return sendJson(res, 200, { signedIn: role === 'instructor', ...(role ? { role } : {}) });
    }
    if (method !== 'POST' || (action !== 'sign-in' && action !== 'sign-out')) throw new RequestError('bad-method', `${method} /api/instructor/${action} is not supported.`);
    if (!originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
    if (action === 'sign-out') {
      res.setHeader('set-cookie', this.cookie(INSTRUCTOR_COOKIE, '', 0, 'Strict', '/'));
      res.writeHead(303, { location: INSTRUCTOR_SIGN_IN_PAGE }).end();
      return;
    }
    const token = await readSignInToken(req);
    const role = this.tryToken(req, token);
    if (!role) {
      throw new RequestError('instructor-only', 'That is not the instructor token. It is in the data folder (instructor-token) or VETHLAB_INSTRUCTOR_TOKEN.');
    }
    this.opts.log.info({ address: addressOf(req), role }, 'staff signed in');
    res.setHeader('set-cookie', this.cookie(INSTRUCTOR_COOKIE, this.opts.identity.staffCookie(role), INSTRUCTOR_SESSION_MS / 1000, 'Strict', '/'));
    res.writeHead(303, { location: INSTRUCTOR_SIGN_IN_PAGE }).end();
  }

  /** The sign-in page: a form when signed out, the export links when signed in. */
  private signInPage(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'" });
    const role = this.staffRole(req);
    res.end(signInHtml(role, role === 'instructor' ? this.opts.identity.assistantToken() : undefined));
  }

  private async site(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new RequestError('bad-method', `${req.method} is not supported for pages; use GET.`);
    // Names no page has (NUL, control bytes, broken %-escapes) make fs calls throw: refuse them first.
    let name: string;
    try {
      name = decodeURIComponent(url.pathname);
    } catch {
      throw new RequestError('bad-request', 'The path is not valid percent-encoding.');
    }
    if (/[\x00-\x1f\x7f\\]/.test(name)) throw new RequestError('not-found', 'There is no page at this path.');
    if (!existsSync(this.opts.siteDir)) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`The course site is not built (${this.opts.siteDir} is missing). Run \`npm start\`, which builds it.\n`);
      return;
    }
    await serveHandler(req, res, { public: this.opts.siteDir, cleanUrls: true, directoryListing: false });
  }
}
