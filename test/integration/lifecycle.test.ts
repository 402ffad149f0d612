/**
 * Sandbox lifecycle across the server's life: the warm pool, TTL reaping,
 * and a lab-server killed with SIGKILL and started again, which re-adopts
 * the learner's sandbox and shell.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectDocker } from '../../lab-server/sandbox/docker';
import { afterAll, describe, expect, it } from 'vitest';
import { checkerName } from '../../lab-server/sandbox/sandbox-engine';
import { Learner } from '../support/terminal-client';
import { ROOT, startTestServer, testInstance } from '../support/lab-server';

const docker = connectDocker();
const exists = async (id: string) => {
  try {
    await docker.getContainer(id).inspect();
    return true;
  } catch {
    return false;
  }
};

describe('warm pool', () => {
  it('hands a learner a ready sandbox from the pool and refills it', async () => {
    const server = await startTestServer({ VETHLAB_POOL_SIZE: '1' });
    try {
      await expect.poll(() => server.pool.size, { timeout: 60_000, interval: 200 }).toBe(1);
      const pooled = (await server.engine.list()).find((s) => s.pool)!;
      const state = async (id: string) => (await server.engine.docker.getContainer(id).inspect()).State;
      // Waiting in the pool, it is frozen: no CPU while a room works.
      expect((await state(pooled.containerId)).Paused).toBe(true);
      const learner = new Learner(server.url);
      const info = await learner.startSession();
      expect(info.sessionId).toBe(pooled.sessionId);
      expect((await state(pooled.containerId)).Paused).toBe(false);
      const term = await learner.openTerminal(info.sessionId);
      await term.waitForReady();
      expect((await term.run('docker images --format "{{.Repository}}" | sort')).trim()).toBe('busybox\nnginx');
      term.close();
      // The pool refills in the background.
      await expect.poll(() => server.pool.size, { timeout: 60_000, interval: 200 }).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('TTL', () => {
  it('removes an expired session’s sandbox and its checker', async () => {
    const server = await startTestServer({ VETHLAB_TTL: '3s' }, { reapIntervalMs: 250 });
    try {
      const learner = new Learner(server.url);
      const info = await learner.startSession();
      const sandbox = server.sessions.find(info.sessionId)!.hosts.get('sandbox')!;
      expect(await exists(sandbox.containerId)).toBe(true);
      expect(await exists(checkerName(sandbox.name))).toBe(true);
      await expect.poll(() => exists(sandbox.containerId), { timeout: 30_000, interval: 250 }).toBe(false);
      await expect.poll(() => exists(checkerName(sandbox.name)), { timeout: 10_000, interval: 250 }).toBe(false);
      expect((await learner.request('GET', `/api/sessions/${info.sessionId}`)).status).toBe(404);
      expect(server.store.getSession(info.sessionId)?.endReason).toBe('expired');
    } finally {
      await server.close();
    }
  });
});

describe('restart', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vethlab-restart-'));
  const instance = testInstance();
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    // A clean stop of a fresh server removes what the test left.
    const server = await startTestServer({ VETHLAB_DATA_DIR: dataDir, VETHLAB_INSTANCE: instance });
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });

  async function startChild(port: number): Promise<ChildProcess> {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'lab-server/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), VETHLAB_DATA_DIR: dataDir, VETHLAB_INSTANCE: instance, VETHLAB_POOL_SIZE: '0', VETHLAB_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (b: Buffer) => (out += b));
    proc.stderr!.on('data', (b: Buffer) => (out += b));
    await expect
      .poll(
        async () => {
          if (proc.exitCode !== null) throw new Error(`lab-server exited: ${out}`);
          return fetch(`http://127.0.0.1:${port}/api/health`).then((r) => r.ok, () => false);
        },
        { timeout: 60_000, interval: 200 },
      )
      .toBe(true);
    return proc;
  }

  it('re-adopts the sandbox and shell after the server is killed', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = await startChild(port);
    const learner = new Learner(base);
    const info = await learner.startSession();
    let term = await learner.openTerminal(info.sessionId);
    await term.waitForReady();
    await term.run('cd /tmp && export VETHLAB_MARK=still-the-same-shell');
    const [before] = (await docker.listContainers({ filters: { label: [`vethlab.session=${info.sessionId}`] } })).map((c) => c.Id);

    // The server saves recent output every 2 s; wait until this screen is on disk.
    await expect
      .poll(() => readdirSync(path.join(dataDir, 'replay')).some((f) => readFileSync(path.join(dataDir, 'replay', f)).includes('still-the-same-shell')), { timeout: 10_000 })
      .toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    await term.waitForClose();
    expect(await exists(before!)).toBe(true);

    child = await startChild(port);
    const again = await learner.request('GET', `/api/sessions/${info.sessionId}`);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ sessionId: info.sessionId, state: 'ready' });
    // A reloaded page gets the screen the killed server had saved, then the same shell.
    term = await learner.openTerminal(info.sessionId);
    const ready = await term.waitForReady();
    expect(ready.reset).toBe(true);
    await term.waitForText(/export VETHLAB_MARK=still-the-same-shell/);
    expect((await term.run('echo "$VETHLAB_MARK $PWD"')).trim()).toBe('still-the-same-shell /tmp');
    const [after] = (await docker.listContainers({ filters: { label: [`vethlab.session=${info.sessionId}`] } })).map((c) => c.Id);
    expect(after).toBe(before);
    term.close();

    // Ctrl-C (SIGINT) stops cleanly and leaves no sandbox behind.
    child.kill('SIGINT');
    expect(await new Promise((r) => child!.once('exit', r))).toBe(0);
    expect(await exists(before!)).toBe(false);
  });
});
