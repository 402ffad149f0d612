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
import { LEARNER_COOKIE, LabId, StartSessionRequest, type ApiError } from '../../protocol/api';
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
const LEARNER_RE = /^[A-Za-z0-9_-]{22,64}$/;

export interface ApiServerOptions {
  sessions: SessionManager;
  registry: TerminalRegistry;
  labs: LabService;
  store: Store;
  instructorToken: string;
  siteDir: string;
  allowedOrigins: string[];
  log: Logger;
  health: () => Record<string, unknown>;
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

/** The learner's token from the cookie, or undefined if absent or malformed. */
export function learnerOf(req: IncomingMessage): string | undefined {
  const token = parseCookies(req.headers.cookie)[LEARNER_COOKIE];
  return token && LEARNER_RE.test(token) ? token : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
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

async function readBody<T>(req: IncomingMessage, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }): Promise<T> {
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

  constructor(private readonly opts: ApiServerOptions) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.opts.log.error({ err }, 'request guard failed'));
    });
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
    if (url.pathname !== TERMINAL_WS_PATH) throw new RequestError('not-found', `No WebSocket endpoint at ${url.pathname}.`);
    if (!originAllowed(req, this.opts.allowedOrigins)) throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
    const learner = learnerOf(req);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // Bad frames (bad opcode, unmasked, over maxPayload) arrive as 'error' events: without a listener they end the process.
      ws.on('error', (err) => this.opts.log.debug({ err }, 'terminal socket error'));
      if (!learner) {
        ws.send(JSON.stringify({ type: 'error', code: 'forbidden', message: 'No learner cookie: load the course page first.', fatal: true }));
        ws.close(CloseCode.forbidden, 'no learner');
        return;
      }
      this.alive.add(ws);
      ws.on('pong', () => this.alive.add(ws));
      serveTerminalSocket(ws, { learner, sessions: this.opts.sessions, registry: this.opts.registry, log: this.opts.log });
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

  /** The learner of this request, giving a new learner a cookie. */
  private learner(req: IncomingMessage, res: ServerResponse): string {
    const known = learnerOf(req);
    if (known) return known;
    const token = randomBytes(24).toString('base64url');
    res.setHeader('set-cookie', `${LEARNER_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000`);
    return token;
  }

  /** The guard: every request ends here in an answer, whatever it contained. */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = parseTarget(req.url);
      if (url.pathname.startsWith('/api/')) await this.api(req, res, url);
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
    if (parts[1] === 'labs' && (parts.length === 3 || (parts.length === 4 && parts[3] === 'grade')) && method === 'GET') {
      const id = LabId.safeParse(parts[2]);
      const lab = id.success ? this.opts.labs.catalog.get(id.data) : undefined;
      if (!lab) throw new RequestError('unknown-lab', `There is no lab called "${parts[2]}".`);
      if (parts.length === 3) return sendJson(res, 200, labInfo(lab, localeOf(url)));
      const learner = this.learner(req, res);
      const progress = this.opts.store.labProgress(learner, lab.id);
      if (!progress) throw new RequestError('not-started', 'You have not started this lab yet.');
      return sendJson(res, 200, grade(lab, progress, this.opts.store.tasks(learner, lab.id)));
    }
    if (parts[1] === 'sessions') {
      if (method !== 'GET' && !originAllowed(req, this.opts.allowedOrigins)) {
        throw new RequestError('bad-origin', `Origin ${req.headers.origin} is not allowed.`);
      }
      const learner = this.learner(req, res);
      if (parts.length === 2 && method === 'POST') {
        const body = await readBody(req, StartSessionRequest);
        const session = await this.opts.sessions.start(learner, body.lab);
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
          const fresh = await this.opts.sessions.restart(session.id, learner);
          this.opts.labs.runner(fresh.id)?.reset(fresh.hosts);
          return sendJson(res, 201, this.opts.sessions.info(fresh));
        }
      }
      throw new RequestError('bad-method', `${method} ${url.pathname} is not supported.`);
    }
    throw new RequestError('not-found', `No API endpoint at ${url.pathname}.`);
  }

  /** Instructors: every learner's grade in a lab, as JSON or CSV (Bearer token or ?token=). */
  private grades(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const auth = req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? url.searchParams.get('token');
    if (auth !== this.opts.instructorToken) throw new RequestError('instructor-only', 'Grade export needs the instructor token (printed by the server at start).');
    const labId = url.searchParams.get('lab');
    const labs = labId ? [this.opts.labs.catalog.get(labId)] : this.opts.labs.catalog.all();
    if (labs.some((l) => !l)) throw new RequestError('unknown-lab', `There is no lab called "${labId}".`);
    const grades = labs.flatMap((lab) => this.opts.store.labRuns(lab!.id).map((r) => grade(lab!, r.progress, r.tasks)));
    const format = url.searchParams.get('format') ?? 'json';
    if (format === 'csv') {
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="vethlab-grades${labId ? '-' + labId : ''}.csv"` });
      res.end(gradesCsv(grades));
      return;
    }
    if (format !== 'json') throw new RequestError('bad-format', 'format is json or csv.');
    sendJson(res, 200, grades);
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
