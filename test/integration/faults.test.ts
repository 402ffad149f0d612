/**
 * Faults a workshop meets: the network drops mid-output, a sandbox dies
 * behind the server's back, the disk under the progress store fills up.
 * Nothing a learner has done may be lost.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../protocol/lab';
import { Learner, plain } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

describe('the WebSocket drops mid-output', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('loses and duplicates nothing within the replay buffer, and the terminal works at once', async () => {
    const learner = new Learner(server.url);
    const { sessionId } = await learner.startSession();
    const first = await learner.openTerminal(sessionId);
    await first.waitForReady();
    await first.waitForText(/root@sandbox:~# $/);
    const from = first.output.length;
    // ~60 KB of numbered lines, slowly enough that the drop lands mid-stream.
    first.type('for i in $(seq 1 6000); do echo "line-$i"; [ $((i % 500)) = 0 ] && sleep 0.1; done; echo "seq-""done"\r');
    await first.waitForText(/line-1500\r?\n/, from);
    first.ws.terminate(); // no close handshake: a network drop
    const seqAtDrop = first.seq;
    const received = first.output.slice(from);
    const second = await learner.openTerminal(sessionId, { lastSeq: seqAtDrop });
    const ready = await second.waitForReady();
    expect(ready).toMatchObject({ reset: false, from: seqAtDrop });
    await second.waitForText(/^seq-done/m, 0, 30_000);
    const lines = plain(received + second.output)
      .split(/\r?\n|\r/)
      .filter((l) => /^line-\d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: 6000 }, (_, i) => `line-${i + 1}`));
    expect((await second.run('echo usable')).trim()).toBe('usable');
    second.close();
  });
});

describe('a sandbox removed behind the server’s back', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('tells the learner, who starts again in one step and keeps the tasks already passed', async () => {
    const learner = new Learner(server.url);
    const { sessionId } = await learner.startSession('network-stack');
    const box = server.sessions.find(sessionId)!.hosts.get('sandbox')!;
    await server.engine.exec(box.containerId, ['bash', '-c', 'ip netns add lab1 && ip netns exec lab1 ip link set lo up']);
    const passed = (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
    expect(passed.tasks.find((t) => t.id === 'own-netns')!.status).toBe('passed');
    const term = await learner.openTerminal(sessionId);
    await term.waitForReady();
    await server.engine.docker.getContainer(box.containerId).remove({ force: true });
    expect(await term.waitForMessage('error')).toMatchObject({ code: 'sandbox-gone' });
    const again = await learner.startSession('network-stack');
    const st = (await learner.request('GET', `/api/sessions/${again.sessionId}/lab`)).json as LabStatus;
    expect(st.tasks.find((t) => t.id === 'own-netns')!.status).toBe('passed');
    await learner.endSession(again.sessionId);
  });
});

describe('the learner kills the sandbox’s Docker engine', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({}, { checkIntervalMs: 1000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('tells the page, and a reset gives a working sandbox', async () => {
    const learner = new Learner(server.url);
    const { sessionId } = await learner.startSession();
    const term = await learner.openTerminal(sessionId);
    await term.waitForReady();
    await term.run('pkill -x dockerd; pkill -x containerd; true');
    const notice = await term.waitForMessage('notice', 30_000);
    expect(notice).toMatchObject({ code: 'engine-down', host: 'sandbox' });
    expect(notice.message).toMatch(/Reset the lab/);
    const reset = await learner.request('POST', `/api/sessions/${sessionId}/reset`);
    expect(reset.status).toBe(201);
    const fresh = await learner.openTerminal((reset.json as { sessionId: string }).sessionId);
    await fresh.waitForReady();
    expect((await fresh.run('docker info --format "{{.ServerVersion}}"')).trim()).toMatch(/^\d+\./);
    fresh.close();
  });
});

describe('the disk under the progress store is full', () => {
  const mount = mkdtempSync(path.join(os.tmpdir(), 'vethlab-full-'));
  let server: TestServer;
  beforeAll(async () => {
    // A bounded store: a 4 MB tmpfs made for this test, never the machine's disk.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
    server = await startTestServer({ VETHLAB_DATA_DIR: mount });
  });
  afterAll(async () => {
    await server?.close();
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  });

  it('refuses new sessions with a clear message, keeps what was stored, and recovers', async () => {
    const learner = new Learner(server.url);
    const kept = await learner.startSession();
    await learner.endSession(kept.sessionId);
    // Fill the tmpfs (bounded by its size).
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(mount, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // "No space left on device" is the point.
    }
    const other = new Learner(server.url);
    const refused = await other.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'unavailable' });
    expect((refused.json as { error: string }).error).toMatch(/progress store cannot be written/);
    const health = await other.request('GET', '/api/health');
    expect(health.json).toMatchObject({ storeWritable: false });
    await expect(server.engine.list()).resolves.toHaveLength(0);
    // What was stored is intact.
    const copy = new Database(path.join(mount, 'vethlab.sqlite'), { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT id FROM sessions WHERE id = ?').get(kept.sessionId)).toBeTruthy();
    copy.close();
    rmSync(path.join(mount, 'filler'));
    writeFileSync(path.join(mount, 'probe'), 'x');
    const later = await other.startSession();
    expect(later.state).toBe('ready');
    await other.endSession(later.sessionId);
  });
});
