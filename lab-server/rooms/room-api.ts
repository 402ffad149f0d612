/**
 * The rooms' HTTP endpoints (/api/rooms/...) and their two WebSockets (the
 * live dashboard and terminal shadowing). Authorisation is decided here, on
 * the server, for every request: learners join, read their own room and
 * answer a take-over; the instructor does everything; assistants view and
 * shadow only. Every body is validated by the zod schemas of
 * protocol/room.ts; a bad one is a RequestError with a code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import {
  BroadcastRequest,
  CreateRoomRequest,
  DashboardClientMessage,
  ExtendRequest,
  JoinRoomRequest,
  LearnerLabRequest,
  PushHintRequest,
  RoomCode,
  TakeoverAnswer,
  type DashboardServerMessage,
} from '../../protocol/room';
import { ShadowClientMessage, type ShadowServerMessage } from '../../protocol/shadow';
import { CloseCode } from '../../protocol/terminal';
import { readBody, sendJson } from '../api/http-server';
import type { StaffRole } from '../api/identity';
import { RequestError } from '../errors';
import type { Logger } from '../log';
import type { SessionManager } from '../sessions/session-manager';
import type { TerminalRegistry } from '../terminal/terminal-registry';
import { parseClientFrame } from '../terminal/terminal-socket';
import type { TerminalPeer, TerminalSlot } from '../terminal/terminal-slot';
import { gradesReportHtml, roomGradesCsv } from './room-report';
import type { RoomService } from './room-service';

/** What the HTTP server knows of the asker. */
export interface Asker {
  /** The learner (a new identity and cookie if they had none). */
  learner(): string;
  /** The learner if their cookie is one this server issued; never creates one. */
  knownLearner(): string | undefined;
  role(): StaffRole | undefined;
  address: string;
}

const MAX_BAD_FRAMES = 50;
const HELLO_TIMEOUT_MS = 10_000;
/** A dashboard that stops reading is dropped past this (it reconnects and gets a fresh snapshot). */
const MAX_VIEWER_BUFFER_BYTES = 4 * 1024 * 1024;

export class RoomApi {
  constructor(
    private readonly rooms: RoomService,
    private readonly sessions: SessionManager,
    private readonly registry: TerminalRegistry,
    private readonly log: Logger,
  ) {}

  /** For the terminal sockets: learners' input, for rooms that record command lines. */
  inputListener(): (sessionId: string, terminalId: string, data: string) => void {
    return (sessionId, terminalId, data) => this.rooms.recordInput(sessionId, terminalId, data);
  }

  private staff(who: Asker): StaffRole {
    const role = who.role();
    if (!role) throw new RequestError('staff-only', 'This is for the workshop instructor and assistants: sign in at /instructor.');
    return role;
  }

  private instructor(who: Asker): StaffRole {
    const role = this.staff(who);
    if (role !== 'instructor') throw new RequestError('forbidden', 'Assistants can view the dashboard and shadow terminals; this action is the instructor’s.');
    return role;
  }

  private code(raw: string): string {
    const c = RoomCode.safeParse(raw);
    if (!c.success) throw new RequestError('unknown-room', 'A room code is 6 letters and digits.');
    return c.data;
  }

  /** /api/rooms/<rest...> */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, rest: string[], who: Asker): Promise<void> {
    const method = req.method ?? 'GET';
    const [first, action, extra] = rest;
    if (extra !== undefined) throw new RequestError('not-found', `No API endpoint at ${url.pathname}.`);
    // Learners.
    if (first === 'join' && !action && method === 'POST') {
      const body = await readBody(req, JoinRoomRequest);
      return sendJson(res, 200, this.rooms.join(who.learner(), body.code, body.name));
    }
    if (first === 'mine' && !action && method === 'GET') {
      const learner = who.knownLearner();
      const mine = learner ? this.rooms.mine(learner) : undefined;
      if (!mine) throw new RequestError('not-in-room', 'You have not joined a workshop room.');
      return sendJson(res, 200, mine);
    }
    if (first === 'mine' && action === 'takeover' && method === 'POST') {
      const learner = who.knownLearner();
      if (!learner) throw new RequestError('not-in-room', 'You have not joined a workshop room.');
      const body = await readBody(req, TakeoverAnswer);
      return sendJson(res, 200, { state: this.rooms.answerTakeover(learner, body.accept) });
    }
    // Staff.
    if (first === undefined) {
      if (method === 'GET') {
        this.staff(who);
        return sendJson(res, 200, this.rooms.list());
      }
      if (method === 'POST') {
        const role = this.instructor(who);
        const body = await readBody(req, CreateRoomRequest);
        return sendJson(res, 201, this.rooms.create(body, role));
      }
      throw new RequestError('bad-method', `${method} /api/rooms is not supported.`);
    }
    const code = this.code(first);
    if (method === 'GET') {
      const role = this.staff(who);
      if (!action) return sendJson(res, 200, this.rooms.info(this.rooms.room(code)));
      if (action === 'audit') return sendJson(res, 200, this.rooms.auditLog(code));
      if (action === 'grades' || action === 'report') {
        if (role !== 'instructor') throw new RequestError('forbidden', 'Grades are the instructor’s.');
        const grades = this.rooms.grades(code);
        if (action === 'report') {
          res.writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
          });
          res.end(gradesReportHtml(grades, url.searchParams.get('locale') === 'zh-Hans' ? 'zh-Hans' : 'en'));
          return;
        }
        const format = url.searchParams.get('format') ?? 'json';
        if (format === 'csv') {
          res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="vethlab-room-${code}.csv"`, 'cache-control': 'no-store' });
          res.end(roomGradesCsv(grades));
          return;
        }
        if (format !== 'json') throw new RequestError('bad-format', 'format is json or csv.');
        return sendJson(res, 200, grades);
      }
      throw new RequestError('not-found', `No API endpoint at ${url.pathname}.`);
    }
    if (method !== 'POST') throw new RequestError('bad-method', `${method} ${url.pathname} is not supported.`);
    const role = this.instructor(who);
    switch (action) {
      case 'close':
        return sendJson(res, 200, await this.rooms.close(code, role));
      case 'reopen':
        return sendJson(res, 200, this.rooms.reopen(code, role));
      case 'end':
        return sendJson(res, 200, await this.rooms.end(code, role));
      case 'broadcast': {
        const body = await readBody(req, BroadcastRequest);
        return sendJson(res, 200, { sent: this.rooms.broadcast(code, role, body.message) });
      }
      case 'hint': {
        const body = await readBody(req, PushHintRequest);
        return sendJson(res, 200, { sent: this.rooms.pushHint(code, role, body.lab, body.task, body.learner) });
      }
      case 'reset': {
        const body = await readBody(req, LearnerLabRequest);
        await this.rooms.reset(code, role, body.learner, body.lab);
        return sendJson(res, 200, { reset: true });
      }
      case 'extend': {
        const body = await readBody(req, ExtendRequest);
        return sendJson(res, 200, { until: this.rooms.extend(code, role, body.minutes, body.learner) });
      }
      case 'takeover': {
        const body = await readBody(req, LearnerLabRequest);
        this.rooms.requestTakeover(code, role, body.learner, body.lab);
        return sendJson(res, 200, { state: 'requested' });
      }
      default:
        throw new RequestError('not-found', `No API endpoint at ${url.pathname}.`);
    }
  }

  /** The live dashboard: `watch` a room, then a snapshot and every change, pushed. */
  serveDashboard(ws: WebSocket, role: StaffRole): void {
    let dispose: (() => void) | null = null;
    let errors = 0;
    const send = (msg: DashboardServerMessage) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_VIEWER_BUFFER_BYTES) return void ws.close(CloseCode.protocolError, 'not reading');
      ws.send(JSON.stringify(msg));
    };
    const fail = (code: string, message: string, fatal = false) => {
      send({ type: 'error', code, message, fatal });
      if (fatal || ++errors > MAX_BAD_FRAMES) ws.close(CloseCode.protocolError, code);
      return undefined;
    };
    const timer = setTimeout(() => !dispose && fail('not-attached', 'No watch frame in time.', true), HELLO_TIMEOUT_MS);
    ws.on('message', (data, isBinary) => {
      try {
        const json = parseClientFrame(data, isBinary, fail);
        if (json === undefined) return;
        const msg = DashboardClientMessage.safeParse(json);
        if (!msg.success) return void fail('bad-frame', `Invalid frame: ${msg.error.issues[0]?.message ?? 'unknown shape'}`);
        if (msg.data.type === 'ping') return send({ type: 'pong', t: msg.data.t });
        if (dispose) return void fail('bad-frame', 'Already watching a room; open another socket for another room.');
        try {
          dispose = this.rooms.view(msg.data.room, { role, send });
        } catch (err) {
          if (err instanceof RequestError) return void fail(err.code, err.message, true);
          throw err;
        }
      } catch (err) {
        this.log.error({ err }, 'dashboard frame failed');
        fail('internal', 'The server could not handle that frame.');
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      dispose?.();
    });
  }

  /** A read-only view of a learner's terminal (protocol/shadow.ts). */
  serveShadow(ws: WebSocket, role: StaffRole): void {
    let slot: TerminalSlot | null = null;
    let stopWatching: (() => void) | null = null;
    let unsubscribe: (() => void) | null = null;
    let attaching = false;
    let errors = 0;
    let canType = false;
    let lab = '';
    let terminalId = 'main';
    let watcher: { learner: string; sessionId: string } | null = null;
    const send = (msg: ShadowServerMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
    };
    const fail = (code: string, message: string, close?: number) => {
      send({ type: 'error', code: code as 'bad-frame', message, fatal: close !== undefined });
      if (close !== undefined) ws.close(close, code);
      else if (++errors > MAX_BAD_FRAMES) ws.close(CloseCode.protocolError, 'too many errors');
      return undefined;
    };
    const peer: TerminalPeer = {
      begin(from, reset, replay) {
        send({ type: 'ready', from, reset, terminalId });
        for (let i = 0; i < replay.length; i += 64 * 1024) ws.send(replay.subarray(i, i + 64 * 1024), { binary: true });
      },
      sendOutput(bytes) {
        if (ws.readyState !== ws.OPEN) return;
        // A viewer never holds the learner's shell back: one that falls behind is dropped (it reconnects and replays).
        if (ws.bufferedAmount > MAX_VIEWER_BUFFER_BYTES) return void fail('too-large', 'This view fell behind; reconnect to continue.', CloseCode.protocolError);
        ws.send(bytes, { binary: true });
      },
      sendMessage: (msg) => send(msg),
      takenOver() {},
      shellExited: (code) => send({ type: 'exit', code }),
    };
    const timer = setTimeout(() => !slot && !attaching && fail('not-attached', 'No shadow hello in time.', CloseCode.protocolError), HELLO_TIMEOUT_MS);
    const hello = (msg: Extract<ShadowClientMessage, { type: 'shadow' }>) => {
      const room = this.rooms.room(msg.room);
      this.rooms.labOf(room, msg.lab);
      const member = this.rooms.member(room, msg.learner);
      const session = this.rooms.sessionOf(member.learner, msg.lab);
      if (!session || session.state !== 'ready') return void fail('sandbox-gone', 'This learner has no live sandbox for that lab.', CloseCode.sandboxGone);
      const target = this.registry.slot(session, msg.terminalId ?? [...this.sessions.info(session).terminals][0]!.id);
      if (!target) return void fail('unknown-terminal', `That session has no terminal "${msg.terminalId}".`, CloseCode.unknownSession);
      attaching = true;
      lab = msg.lab;
      terminalId = target.terminalId;
      watcher = { learner: member.learner, sessionId: session.id };
      unsubscribe = this.registry.onSessionClosed(session.id, () => {
        slot?.unobserve(peer);
        slot = null;
        fail('sandbox-gone', 'The learner’s sandbox was replaced or ended; open the view again.', CloseCode.sandboxGone);
      });
      target.observe(peer, msg.lastSeq, { cols: msg.cols, rows: msg.rows }).then(
        () => {
          attaching = false;
          if (ws.readyState !== ws.OPEN) return target.unobserve(peer);
          slot = target;
          stopWatching = this.rooms.watch(msg.room, {
            role,
            learner: member.learner,
            sessionId: session.id,
            control: (state) => {
              canType = state === 'granted';
              send({ type: 'control', state });
            },
          }, msg.lab);
        },
        (err: unknown) => {
          attaching = false;
          fail('sandbox-gone', `Could not open the learner's terminal: ${(err as Error).message}`, CloseCode.sandboxGone);
        },
      );
    };
    ws.on('message', (data, isBinary) => {
      try {
        const json = parseClientFrame(data, isBinary, fail);
        if (json === undefined) return;
        const parsed = ShadowClientMessage.safeParse(json);
        if (!parsed.success) return void fail('bad-frame', `Invalid frame: ${parsed.error.issues[0]?.message ?? 'unknown shape'}`);
        const msg = parsed.data;
        if (msg.type === 'ping') return send({ type: 'pong', t: msg.t });
        if (msg.type === 'shadow') {
          if (slot || attaching) return void fail('bad-frame', 'Already attached; the shadow hello is sent once.');
          try {
            return hello(msg);
          } catch (err) {
            if (err instanceof RequestError) return void fail(err.code === 'not-in-room' || err.code === 'unknown-room' || err.code === 'unknown-lab' ? 'forbidden' : 'internal', err.message, CloseCode.forbidden);
            throw err;
          }
        }
        if (msg.type === 'hello') return void fail('bad-frame', 'A shadow view starts with a "shadow" frame, not "hello".');
        if (!slot) return void fail('not-attached', `Send the shadow hello before ${msg.type}.`);
        if (msg.type === 'input') {
          // Read-only unless the learner accepted a take-over by this instructor.
          if (!canType || !watcher || !this.rooms.mayType({ role, ...watcher, control() {} }, lab)) return void fail('forbidden', 'This view is read-only: the learner has not accepted a take-over.');
          slot.write(msg.data, 'instructor');
        }
        // ack and resize: the learner's page owns flow control and the terminal's size.
      } catch (err) {
        this.log.error({ err }, 'shadow frame failed');
        fail('internal', 'The server could not handle that frame.');
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      unsubscribe?.();
      slot?.unobserve(peer);
      slot = null;
      stopWatching?.();
    });
  }
}
