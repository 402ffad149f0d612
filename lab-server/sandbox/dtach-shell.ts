/**
 * A terminal shell reached without the Docker engine in the data path: the
 * lab-server speaks dtach's client protocol straight to the shell's master
 * socket inside the sandbox. A `docker exec` stream costs dockerd and the
 * containerd shim a core's worth of CPU at full speed; this path is one unix
 * socket. The shell itself stays where it was started (inside the sandbox,
 * with its cgroups, seccomp profile and capabilities).
 *
 * The socket lives in a file system the learner controls, so it is opened
 * one path component at a time with O_PATH|O_NOFOLLOW from the sandbox's
 * root: no symlink a learner plants can point the lab-server at a socket of
 * the machine (the sandbox engine's, say). The worst a learner can do is
 * answer in place of their own shell.
 *
 * dtach's protocol (dtach.h): the client sends 10-byte packets {type, len,
 * 8 bytes}; the master sends the terminal's output as a plain byte stream.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';

const MSG = { push: 0, attach: 1, detach: 2, winch: 3, redraw: 4 } as const;
const REDRAW_WINCH = 3;
const PACKET_BYTES = 10;
const PAYLOAD_BYTES = 8;
const O_PATH = 0o10000000;

function packet(type: number, len: number, payload?: Buffer): Buffer {
  const p = Buffer.alloc(PACKET_BYTES);
  p[0] = type;
  p[1] = len;
  payload?.copy(p, 2, 0, PAYLOAD_BYTES);
  return p;
}

/** struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel } */
function winsize(cols: number, rows: number): Buffer {
  const ws = Buffer.alloc(PAYLOAD_BYTES);
  ws.writeUInt16LE(Math.max(1, Math.min(rows, 0xffff)), 0);
  ws.writeUInt16LE(Math.max(1, Math.min(cols, 0xffff)), 2);
  return ws;
}

/** Keystrokes as MSG_PUSH packets, eight bytes each. */
export function pushPackets(data: Buffer): Buffer {
  const count = Math.ceil(data.length / PAYLOAD_BYTES);
  const out = Buffer.alloc(count * PACKET_BYTES);
  for (let i = 0; i < count; i++) {
    const chunk = data.subarray(i * PAYLOAD_BYTES, (i + 1) * PAYLOAD_BYTES);
    out[i * PACKET_BYTES] = MSG.push;
    out[i * PACKET_BYTES + 1] = chunk.length;
    chunk.copy(out, i * PACKET_BYTES + 2);
  }
  return out;
}

export class UnsafeSocketPathError extends Error {
  constructor(what: string) {
    super(`refusing the terminal socket: ${what}`);
    this.name = 'UnsafeSocketPathError';
  }
}

/**
 * Opens `components` (e.g. ['run', 'vethlab', 'terminal-main.sock']) under a
 * process's root, never following a symlink, and returns an O_PATH fd of the
 * socket. ENOENT when it is not there.
 */
export function openSocketInRoot(pid: number, components: string[]): number {
  let fd = openSync(`/proc/${pid}/root`, O_PATH | constants.O_DIRECTORY);
  try {
    for (const [i, name] of components.entries()) {
      if (!name || name === '.' || name === '..' || name.includes('/')) throw new UnsafeSocketPathError(`bad path component ${JSON.stringify(name)}`);
      const last = i === components.length - 1;
      const next = openSync(`/proc/self/fd/${fd}/${name}`, O_PATH | constants.O_NOFOLLOW | (last ? 0 : constants.O_DIRECTORY));
      closeSync(fd);
      fd = next;
    }
    if (!fstatSync(fd).isSocket()) throw new UnsafeSocketPathError(`${components.join('/')} is not a socket`);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Connects to the dtach master at `components` under the process's root. */
export async function connectDtach(pid: number, components: string[]): Promise<net.Socket> {
  const fd = openSocketInRoot(pid, components);
  try {
    return await new Promise<net.Socket>((resolve, reject) => {
      // connect(2) through the O_PATH fd's /proc link reaches exactly the inode opened above.
      const socket = net.connect({ path: `/proc/self/fd/${fd}` });
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * The shell's byte stream: what is written goes to the shell as keystrokes,
 * what is read is its output. pause()/resume() stop reading the socket, which
 * stops dtach reading the shell's terminal once the socket buffer is full.
 */
export class DtachStream extends Duplex {
  constructor(private readonly socket: net.Socket) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.once('close', () => this.destroy());
    socket.on('error', (err) => this.destroy(err));
  }

  attach(cols: number, rows: number): void {
    this.socket.write(packet(MSG.attach, 0));
    // Sets the size and sends SIGWINCH: readline redraws its prompt and line.
    this.socket.write(packet(MSG.redraw, REDRAW_WINCH, winsize(cols, rows)));
  }

  resize(cols: number, rows: number): void {
    if (!this.socket.destroyed) this.socket.write(packet(MSG.winch, 0, winsize(cols, rows)));
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    if (this.socket.write(pushPackets(bytes))) done();
    else this.socket.once('drain', () => done());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}
