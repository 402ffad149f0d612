/**
 * A learner's terminal, end to end: real lab-server, real sandbox on the real
 * engine, real WebSocket, real TTY shell.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLOW_HIGH_WATER } from '../../lab-server/terminal/terminal-slot';
import { Learner, plain, type TerminalConnection } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;
let learner: Learner;
let sessionId: string;
let term: TerminalConnection;

beforeAll(async () => {
  server = await startTestServer();
  learner = new Learner(server.url);
  const session = await learner.startSession();
  sessionId = session.sessionId;
  expect(session.terminals).toEqual([{ id: 'main', host: 'sandbox' }]);
  term = await learner.openTerminal(sessionId);
  await term.waitForReady();
  await term.waitForText(/root@sandbox:~# /);
});

afterAll(async () => {
  term?.close();
  await server?.close();
});

describe('terminal', () => {
  it('runs docker in the sandbox and reads a container veth peer index', async () => {
    const id = await term.run('docker run -d --name nginx-1 nginx');
    expect(id.trim()).toMatch(/^[0-9a-f]{64}$/);
    const iflink = await term.run('docker exec nginx-1 cat /sys/class/net/eth0/iflink');
    const peer = Number.parseInt(iflink.trim(), 10);
    expect(peer).toBeGreaterThan(1);
    // The host side of that peer index is a veth on docker0.
    const link = await term.run(`ip -o link | grep "^${peer}:"`);
    expect(link).toMatch(/veth\w+@if\d+:.*master docker0/);
  });

  it('resizes the TTY', async () => {
    term.send({ type: 'resize', cols: 97, rows: 31 });
    await expect.poll(async () => (await term.run('stty size')).trim(), { timeout: 10_000 }).toBe('31 97');
  });

  it('carries UTF-8 both ways', async () => {
    expect((await term.run('echo 你好，容器网络')).trim()).toBe('你好，容器网络');
  });

  it('interrupts a running command with Ctrl-C', async () => {
    const from = term.output.length;
    term.type('echo "sleep""ing"; sleep 300; echo "not-""interrupted"\r');
    await term.waitForText(/^sleeping\r?$/m, from);
    // A ^C that lands between bash's echo and its fork of sleep is lost (a
    // bash race, as at any terminal): press it again, as a person would.
    for (let attempt = 0; ; attempt++) {
      term.type('\x03');
      try {
        await term.waitForText(/\^C[\s\S]*root@sandbox:~# $/, from, 3000);
        break;
      } catch (err) {
        if (attempt >= 4) throw err;
      }
    }
    expect(plain(term.output.slice(from))).not.toMatch(/^not-interrupted/m);
  });

  it('runs full-screen programs (vi, top, less) and returns to the prompt', async () => {
    for (const [cmd, screen, quit] of [
      ['vi /etc/motd', /\x1b\[\?1049h[\s\S]*Welcome to your vethlab sandbox/, ':q\r'],
      ['top', /load average[\s\S]*PID USER/, 'q'],
      ['less /etc/motd', /\x1b\[\?1049h[\s\S]*Welcome to your vethlab sandbox/, 'q'],
    ] as const) {
      const from = term.output.length;
      term.type(`${cmd}\r`);
      await term.waitForOutput(screen, from);
      const drawn = term.output.length;
      term.type(quit);
      await term.waitForText(/root@sandbox:~# $/, drawn);
    }
  });

  it('replays missed output to a reconnecting page, and the recent screen after a reload', async () => {
    const marker = `replay-${Date.now()}`;
    await term.run(`echo ${marker}`);
    const lastSeq = term.seq;
    term.close();
    await term.waitForClose();
    // Output produced while no page is attached lands in the replay buffer.
    const other = await learner.openTerminal(sessionId, { lastSeq });
    const ready = await other.waitForReady();
    expect(ready).toMatchObject({ reset: false, from: lastSeq });
    const after = await other.run('echo after-reconnect');
    expect(after.trim()).toBe('after-reconnect');
    other.close();
    await other.waitForClose();

    // A reloaded page has no copy: it gets a reset and the recent screen.
    const reloaded = await learner.openTerminal(sessionId);
    const r2 = await reloaded.waitForReady();
    expect(r2.reset).toBe(true);
    await reloaded.waitForOutput(new RegExp(marker));
    await reloaded.waitForOutput(/after-reconnect/);
    term = reloaded;
  });

  it('hands a terminal to the newest page and tells the old one', async () => {
    const newer = await learner.openTerminal(sessionId, { lastSeq: term.seq });
    await newer.waitForReady();
    const msg = await term.waitForMessage('error');
    expect(msg).toMatchObject({ code: 'taken-over', fatal: true });
    expect(await term.waitForClose()).toBe(4409);
    term = newer;
    expect((await term.run('echo still-here')).trim()).toBe('still-here');
  });

  it('pauses a flood of output while the page has not rendered it, then resumes', async () => {
    const slow = await learner.openTerminal(sessionId, { lastSeq: term.seq, ack: 'never' });
    await slow.waitForReady();
    await term.waitForClose();
    const from = slow.output.length;
    slow.type('yes vethlab-flood | head -c 10000000; echo "flood-""done"\r');
    const slot = server.registry.slot(server.sessions.find(sessionId)!, 'main')!;
    await expect.poll(() => slot.isPaused, { timeout: 20_000 }).toBe(true);
    const received = slow.bytes;
    // Paused: the page is not sent more than the high-water mark beyond its acks (plus one read).
    await new Promise((r) => setTimeout(r, 500));
    expect(slow.bytes - received).toBeLessThan(FLOW_HIGH_WATER);
    expect(slow.bytes).toBeLessThan(FLOW_HIGH_WATER * 3);
    expect(slot.ring.end - slot.ring.start).toBeLessThanOrEqual(slot.ring.capacity);
    // Rendering (acks) lets it run to the end.
    const ackTimer = setInterval(() => slow.send({ type: 'ack', seq: slow.seq }), 20);
    try {
      // head -c cuts mid-line; the typed command’s echo is 10 MB back, out of this window.
      await slow.waitFor(() => /flood-done\r\n/.test(slow.output.slice(-4096)), 60_000, 'flood-done');
    } finally {
      clearInterval(ackTimer);
    }
    expect(slow.bytes).toBeGreaterThan(10_000_000);
    slow.send({ type: 'ack', seq: slow.seq });
    term = slow;
  });
});
