/**
 * One page's WebSocket to one terminal: parses and validates frames (shared
 * protocol in protocol/terminal.ts), attaches to the terminal's slot after a
 * valid `hello`, and answers every bad frame with an error instead of
 * failing. Fatal conditions (unknown session, takeover, sandbox gone) are
 * reported, then the socket is closed with an application close code.
 */
import type { RawData, WebSocket } from 'ws';
import {
  ClientMessage,
  CloseCode,
  MAX_CLIENT_FRAME_BYTES,
  type ErrorCode,
  type ServerMessage,
} from '../../protocol/terminal';
import type { Logger } from '../log';
import { SessionError, type SessionManager } from '../sessions/session-manager';
import type { TerminalRegistry } from './terminal-registry';
import type { TerminalPeer, TerminalSlot } from './terminal-slot';

const HELLO_TIMEOUT_MS = 10_000;
const MAX_ERRORS = 50;
const REPLAY_FRAME_BYTES = 64 * 1024;
/** Input frames (and their bytes) kept while the shell opens; more is refused, not queued. */
export const MAX_PENDING_FRAMES = 64;
export const MAX_PENDING_BYTES = 64 * 1024;
/** Keystrokes per terminal: this many bytes a second on average, in bursts up to INPUT_BURST_BYTES (a paste). */
export const INPUT_BYTES_PER_SEC = 64 * 1024;
export const INPUT_BURST_BYTES = 256 * 1024;
/** Output queued in the server for a page that does not read it: past this, the page is dropped (it reconnects and replays). */
export const MAX_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export interface TerminalSocketContext {
  learner: string;
  sessions: SessionManager;
  registry: TerminalRegistry;
  log: Logger;
  /** Sees each input frame the learner types (workshop rooms that record command lines). */
  onInput?: (sessionId: string, terminalId: string, data: string) => void;
}


/**
 * A client's text frame as JSON, within the size limit; undefined after
 * `fail` has answered a binary, oversized or unparsable one. Every socket
 * of the server (terminal, dashboard, shadow) reads its frames this way.
 */
export function parseClientFrame(data: RawData, isBinary: boolean, fail: (code: 'bad-frame' | 'too-large', message: string) => void): unknown {
  if (isBinary) return fail('bad-frame', 'Binary frames are not accepted; send JSON text frames.');
  const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (buf.byteLength > MAX_CLIENT_FRAME_BYTES) return fail('too-large', `Frame of ${buf.byteLength} bytes is over the ${MAX_CLIENT_FRAME_BYTES}-byte limit; it was dropped.`);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return fail('bad-frame', 'Frame is not valid JSON.');
  }
}
export function serveTerminalSocket(ws: WebSocket, ctx: TerminalSocketContext): void {
  let slot: TerminalSlot | null = null;
  let sessionId: string | null = null;
  let attaching = false;
  let errors = 0;
  let unsubscribe: (() => void) | null = null;
  const pending: Exclude<ClientMessage, { type: 'hello' | 'ping' }>[] = [];
  let pendingBytes = 0;
  // Input is read from the socket only while the shell takes it and the rate allows: a
  // sender faster than either waits in its own TCP buffer, not in this server's memory.
  let inputTokens = INPUT_BURST_BYTES;
  let tokensAt = Date.now();
  let holds = 0;
  let resumeTimer: NodeJS.Timeout | null = null;
  const hold = () => {
    if (holds++ === 0) ws.pause();
  };
  const release = () => {
    if (--holds === 0 && ws.readyState === ws.OPEN) ws.resume();
  };

  const send = (msg: ServerMessage) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const fail = (code: ErrorCode, message: string, close?: number) => {
    send({ type: 'error', code, message, fatal: close !== undefined });
    if (close !== undefined) ws.close(close, code);
    else if (++errors > MAX_ERRORS) {
      send({ type: 'error', code: 'bad-frame', message: 'Too many bad frames; closing.', fatal: true });
      ws.close(CloseCode.protocolError, 'too many errors');
    }
  };

  const peer: TerminalPeer = {
    begin(from, reset, replay) {
      send({ type: 'ready', from, reset, terminalId: slot!.terminalId });
      for (let i = 0; i < replay.length; i += REPLAY_FRAME_BYTES) {
        ws.send(replay.subarray(i, i + REPLAY_FRAME_BYTES), { binary: true });
      }
    },
    sendMessage(msg) {
      send(msg);
    },
    sendOutput(bytes) {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_SOCKET_BUFFER_BYTES) {
        return fail('too-large', 'This page is not reading its output; reconnect to continue where it left off.', CloseCode.protocolError);
      }
      ws.send(bytes, { binary: true });
    },
    takenOver() {
      slot = null;
      fail('taken-over', 'This terminal was opened in another window or tab.', CloseCode.takenOver);
    },
    shellExited(code) {
      send({ type: 'exit', code });
      slot = null;
      ws.close(1000, 'shell exited');
    },
  };

  const helloTimer = setTimeout(() => {
    if (!slot && !attaching) fail('not-attached', `No hello within ${HELLO_TIMEOUT_MS / 1000} s.`, CloseCode.protocolError);
  }, HELLO_TIMEOUT_MS);

  // A throw in a 'message' listener would escape into ws's parser and end the process.
  ws.on('message', (data, isBinary) => {
    try {
      onMessage(data, isBinary);
    } catch (err) {
      ctx.log.error({ err }, 'terminal frame failed');
      fail('internal', 'The server could not handle that frame; the log has the details.');
    }
  });

  function onMessage(data: RawData, isBinary: boolean): void {
    const json = parseClientFrame(data, isBinary, fail);
    if (json === undefined) return;
    const type = (json as { type?: unknown } | null)?.type;
    const parsed = ClientMessage.safeParse(json);
    if (!parsed.success) {
      if (typeof type !== 'string' || !['hello', 'input', 'resize', 'ack', 'ping'].includes(type)) {
        return fail('unknown-type', `Unknown message type ${JSON.stringify(type)}.`);
      }
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join('.') || type}: ${issue.message}` : type;
      return fail(type === 'resize' ? 'bad-resize' : 'bad-frame', `Invalid ${type} message (${where}).`);
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'ping':
        return send({ type: 'pong', t: msg.t });
      case 'hello': {
        if (slot || attaching) return fail('bad-frame', 'Already attached; hello is sent once.');
        let session;
        try {
          session = ctx.sessions.get(msg.sessionId, ctx.learner);
        } catch (err) {
          if (err instanceof SessionError && err.code === 'forbidden') return fail('forbidden', err.message, CloseCode.forbidden);
          return fail('unknown-session', (err as Error).message, CloseCode.unknownSession);
        }
        if (session.state === 'gone') {
          return fail('sandbox-gone', 'Your sandbox has stopped. Start a new sandbox to continue.', CloseCode.sandboxGone);
        }
        const target = ctx.registry.slot(session, msg.terminalId);
        if (!target) return fail('unknown-terminal', `This session has no terminal "${msg.terminalId}".`, CloseCode.unknownSession);
        attaching = true;
        sessionId = session.id;
        unsubscribe = ctx.registry.onSessionClosed(session.id, (reason) => {
          slot = null;
          if (reason === 'sandbox-gone') fail('sandbox-gone', 'Your sandbox has stopped. Start a new sandbox to continue.', CloseCode.sandboxGone);
          else fail('sandbox-gone', 'This lab session has ended.', CloseCode.sandboxGone);
        });
        ctx.sessions.touch(session.id);
        slot = target;
        target.attach(peer, msg.lastSeq, { cols: msg.cols, rows: msg.rows }).then(
          () => {
            attaching = false;
            if (ws.readyState !== ws.OPEN) return target.detach(peer);
            pendingBytes = 0;
            for (const m of pending.splice(0)) if (slot) apply(slot, m);
          },
          (err: unknown) => {
            attaching = false;
            slot = null;
            ctx.log.error({ err, session: session.id }, 'could not open a shell');
            fail('sandbox-gone', `Could not open a shell in your sandbox: ${(err as Error).message}`, CloseCode.sandboxGone);
          },
        );
        return;
      }
      default:
        // Keystrokes typed while the shell opens are kept, not dropped.
        if (attaching) {
          const size = msg.type === 'input' ? Buffer.byteLength(msg.data) : 0;
          if (pending.length >= MAX_PENDING_FRAMES || pendingBytes + size > MAX_PENDING_BYTES) {
            return fail('too-large', 'Too much input before the shell opened; this frame was dropped.');
          }
          pendingBytes += size;
          return void pending.push(msg);
        }
        if (!slot) return fail('not-attached', `Send hello before ${msg.type}.`);
        apply(slot, msg);
    }
  }

  function apply(target: TerminalSlot, msg: Exclude<ClientMessage, { type: 'hello' | 'ping' }>): void {
    if (msg.type === 'input') {
      if (!target.write(msg.data)) {
        hold();
        target.whenDrained(release);
      }
      throttle(Buffer.byteLength(msg.data));
      if (sessionId) ctx.sessions.touch(sessionId);
      if (sessionId) ctx.onInput?.(sessionId, target.terminalId, msg.data);
    } else if (msg.type === 'resize') target.resize(msg.cols, msg.rows).catch((err: unknown) => ctx.log.debug({ err }, 'resize failed'));
    else target.ack(peer, msg.seq);
  }

  /** Token bucket: over the rate, stop reading until the bucket has refilled. */
  function throttle(bytes: number): void {
    const now = Date.now();
    inputTokens = Math.min(INPUT_BURST_BYTES, inputTokens + ((now - tokensAt) * INPUT_BYTES_PER_SEC) / 1000);
    tokensAt = now;
    inputTokens -= bytes;
    if (inputTokens >= 0 || resumeTimer) return;
    hold();
    resumeTimer = setTimeout(() => {
      resumeTimer = null;
      release();
    }, Math.ceil((-inputTokens * 1000) / INPUT_BYTES_PER_SEC));
  }

  ws.on('close', () => {
    if (resumeTimer) clearTimeout(resumeTimer);
    clearTimeout(helloTimer);
    unsubscribe?.();
    slot?.detach(peer);
    slot = null;
  });
  ws.on('error', (err) => ctx.log.debug({ err }, 'terminal socket error'));
}
