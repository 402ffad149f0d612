/**
 * The escape battery: what a learner, root in a sandbox started the way
 * `npm start` starts it, tries against the machine; and the same against the
 * checker beside it, run the way checks run. Every probe is in
 * test/support/escape-probes.ts: it probes, never fires (write-backs of the
 * value just read; nothing loaded, mounted from the machine or rebooted). A
 * probe that cannot run fails the test. The fork bomb, memory hog and disk
 * fill run only under the sandbox's pids, memory and disk limits (the disk is
 * a 96 MiB tmpfs), with a timeout. (Network isolation is probed in
 * sandbox.test.ts; terminal floods in terminal.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckExecutor } from '../../lab-server/checks/lab-runner';
import type { Sandbox } from '../../lab-server/sandbox/sandbox-engine';
import { ADJTIMEX, BLOCK_DEVICE, DMESG, HOST_BACKED_MOUNTS, HOST_DISK_DEVICE, KERNEL_SETTINGS, MODULES, OWN_LIMITS, RELEASE_AGENT, SHOCKER, verdicts } from '../support/escape-probes';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;
let sandboxA: Sandbox;
let a: string;
let b: string;
let checker: CheckExecutor;
const sh = async (id: string, script: string, timeoutMs = 30_000) => server.engine.exec(id, ['bash', '-c', script], { timeoutMs });
/** A script in the sandbox as the learner's shell runs it (root there). */
const inSandbox = async (script: string, ...args: string[]) => {
  const r = await server.engine.exec(a, ['bash', '-c', script, 'probe', ...args], { timeoutMs: 60_000 });
  return r.stdout + r.stderr;
};
/** The same script in the checker, the way checks run there. */
const inChecker = async (script: string, ...args: string[]) => {
  const r = await checker.exec(sandboxA, ['bash', '-c', script, 'probe', ...args], 60_000);
  return r.stdout + r.stderr;
};
const perlIn = async (where: 'sandbox' | 'checker', script: string, args: string[]) => {
  const run = ['perl', '-e', script, ...args];
  if (where === 'sandbox') {
    const r = await server.engine.exec(a, run, { timeoutMs: 30_000 });
    return r.stdout + r.stderr;
  }
  const r = await checker.exec(sandboxA, run, 30_000);
  return r.stdout + r.stderr;
};

/** Every attempt refused, at least one made, none unable to run. */
function expectContained(output: string, minAttempts = 1): void {
  const v = verdicts(output);
  expect(v.escaped, output).toEqual([]);
  expect(v.cannot, output).toEqual([]);
  expect(v.refused.length, output).toBeGreaterThanOrEqual(minAttempts);
}

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_PIDS: '256', VETHLAB_MEMORY: '384m', VETHLAB_DISK: '96m' });
  const la = new Learner(server.url);
  const lb = new Learner(server.url);
  const [sa, sb] = await Promise.all([la.startSession(), lb.startSession()]);
  sandboxA = server.sessions.find(sa.sessionId)!.hosts.get('sandbox')!;
  a = sandboxA.containerId;
  b = server.sessions.find(sb.sessionId)!.hosts.get('sandbox')!.containerId;
  checker = new CheckExecutor(server.engine);
});

afterAll(async () => {
  await server?.close();
});

describe('the machine, from a sandbox and from its checker', () => {
  it('runs the sandbox as an unprivileged uid of the machine, and the checker with no capabilities', async () => {
    const sandboxMap = (await sh(a, 'cat /proc/self/uid_map')).stdout.trim().split(/\s+/);
    expect(sandboxMap[0]).toBe('0');
    expect(Number(sandboxMap[1])).toBeGreaterThanOrEqual(65536);
    const pid = await server.engine.sandboxPid(sandboxA);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${sandboxMap[1]}\\s`, 'm'));
    const checkerInfo = await server.engine.docker.getContainer(`${sandboxA.name}-checker`).inspect();
    expect(checkerInfo.HostConfig.CapDrop).toEqual(['ALL']);
    expect(checkerInfo.HostConfig.CapAdd ?? []).toEqual([]);
    expect(checkerInfo.HostConfig.SecurityOpt?.some((o: string) => o.startsWith('seccomp=') && o !== 'seccomp=unconfined')).toBe(true);
    const cap = execFileSync('awk', ['/^CapEff/ { print $2 }', `/proc/${checkerInfo.State.Pid}/status`]).toString().trim();
    expect(cap).toBe('0000000000000000');
  });

  it('cannot read the machine’s disk through a file handle (the "shocker" escape)', async () => {
    const sandboxMounts = (await inSandbox(HOST_BACKED_MOUNTS)).split('\n').filter(Boolean);
    // docker-init, and /etc/hosts, hostname and resolv.conf (under the /etc overlay) are host-backed.
    expect(sandboxMounts.length, 'host-backed mounts in the sandbox').toBeGreaterThan(0);
    expectContained(await perlIn('sandbox', SHOCKER, sandboxMounts));
    const checkerMounts = (await inChecker(HOST_BACKED_MOUNTS)).split('\n').filter(Boolean);
    expect(checkerMounts.length, 'host-backed mounts in the checker').toBeGreaterThan(0);
    expectContained(await perlIn('checker', SHOCKER, checkerMounts));
  });

  it('cannot write a kernel setting of the machine, whatever it remounts or mounts afresh', async () => {
    expectContained(await inSandbox(KERNEL_SETTINGS));
    expectContained(await inChecker(KERNEL_SETTINGS));
  });

  it('cannot do it from a --privileged container inside the sandbox either', async () => {
    const r = await sh(a, `docker run --rm --privileged busybox sh -c 'v=$(cat /proc/sys/vm/swappiness); if echo "$v" > /proc/sys/vm/swappiness; then echo "ESCAPED inner privileged wrote swappiness"; else echo "REFUSED inner privileged swappiness"; fi' 2>&1; echo "exit $?"`, 60_000);
    // On this machine kind an inner --privileged container does not start at all
    // ("unable to apply caps"); where it does, its write must be refused.
    expect(r.stdout).not.toMatch(/ESCAPED/);
    expect(r.stdout).toMatch(/REFUSED|unable to apply caps|operation not permitted|exit [1-9]/i);
  });

  it('cannot set the machine’s clock', async () => {
    expectContained(await perlIn('sandbox', ADJTIMEX, []));
    expectContained(await perlIn('checker', ADJTIMEX, []));
  });

  it('cannot read the machine’s kernel log', async () => {
    expectContained(await inSandbox(DMESG));
    expectContained(await inChecker(DMESG));
  });

  it('cannot raise its own memory, pids or cpu limit', async () => {
    expectContained(await inSandbox(OWN_LIMITS), 3);
    // The checker enters the sandbox's namespaces as checks do: not the machine's root there either.
    expectContained(await inChecker(OWN_LIMITS.replaceAll('/sys/fs/cgroup', `/proc/$VETHLAB_SANDBOX_PID/root/sys/fs/cgroup`)), 3);
  });

  it('cannot open the machine’s disk as a block device', async () => {
    const dev = (await inSandbox(HOST_DISK_DEVICE)).trim();
    expect(dev).toMatch(/^\d+:\d+$/);
    expectContained(await inSandbox(BLOCK_DEVICE, dev));
    const ls = await inSandbox('ls /dev');
    expect(ls).not.toMatch(/\b(sd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|loop\d|dm-\d)\b/);
  });

  it('cannot load a kernel module', async () => {
    expectContained(await inSandbox(MODULES), 2);
  });

  it('cannot set a release_agent of the machine', async () => {
    const out = await inSandbox(RELEASE_AGENT);
    expect(verdicts(out).escaped, out).toEqual([]);
    // The sysfs anchor shows the machine's cgroup roots: each release_agent there was tried.
    expect(verdicts(out).refused.length, out).toBeGreaterThan(0);
  });

  it('reaches neither the lab-server, nor any engine’s socket but its own', async () => {
    const port = new URL(server.url).port;
    const r = await inSandbox(`curl -s -m 3 http://127.0.0.1:${port}/api/health && echo "ESCAPED reached the lab-server" || echo "REFUSED lab-server port"
      ls /run/vethlab-engine /var/run/vethlab-engine 2>/dev/null | grep -q . && echo "ESCAPED sees the sandbox engine's files" || echo "REFUSED no sandbox engine files"
      docker info -f '{{.ID}}'`);
    expectContained(r, 2);
    const outer = await server.engine.docker.info();
    expect(r).not.toContain((outer as { ID: string }).ID);
  });

  it('cannot lead the lab-server to a socket of the machine through its terminal’s socket', async () => {
    // A socket of the machine's, as the engine's own is: the lab-server must never connect to it for a learner.
    const trapPath = path.join(os.tmpdir(), `vethlab-trap-${randomBytes(4).toString('hex')}.sock`);
    let connections = 0;
    const trap = net.createServer((c) => {
      connections++;
      c.destroy();
    });
    await new Promise<void>((r) => trap.listen(trapPath, r));
    try {
      const learner = new Learner(server.url);
      const info = await learner.startSession();
      const term = await learner.openTerminal(info.sessionId);
      await term.waitForReady();
      expect((await term.run('echo alive-$((1+1))')).trim()).toContain('alive-2');
      // Its own terminal's socket becomes a symlink to the machine's socket path, and its shell ends without
      // dtach tidying up: the next attach must find the symlink.
      term.type(`ln -sfn ${trapPath} /run/vethlab/t.new && mv -fT /run/vethlab/t.new /run/vethlab/terminal-main.sock && pkill -9 -x dtach\r`);
      await term.waitForMessage('exit', 20_000);
      const again = await learner.openTerminal(info.sessionId);
      await again.waitForReady();
      expect((await again.run('echo fresh-$((2+2)); readlink /run/vethlab/terminal-main.sock || echo not-a-link')).trim()).toMatch(/fresh-4[\s\S]*not-a-link/);
      expect(connections).toBe(0);
      again.close();
      await learner.endSession(info.sessionId);
    } finally {
      trap.close();
      rmSync(trapPath, { force: true });
    }
  });
});

describe('other learners and the limits', () => {
  it('sees neither another sandbox’s processes nor its files', async () => {
    await sh(b, 'nohup sleep 4242 >/dev/null 2>&1 & echo secret-of-b > /root/secret');
    const ps = await sh(a, 'ps -eo args');
    expect(ps.stdout).not.toContain('sleep 4242');
    const found = await sh(a, 'grep -rls "secret-of-b" /root /tmp /var/lib/docker/volumes 2>/dev/null; cat /proc/mounts');
    expect(found.stdout).not.toContain('secret-of-b');
    expect(found.stdout).not.toContain((await server.engine.docker.getContainer(b).inspect()).Name.slice(1));
  });

  it('sees only its own cgroup subtree as its cgroups', async () => {
    const r = await sh(a, 'cat /proc/1/cgroup');
    expect(r.stdout).toMatch(/:memory:\/$/m);
  });

  it('holds a fork bomb at the pids limit and leaves other learners unaffected', async () => {
    const bomb = await sh(a, 'for i in $(seq 1 1000); do sleep 30 >/dev/null 2>&1 & done 2>&1 | tail -n 1; cat /sys/fs/cgroup/pids/pids.current; pkill -f "sleep 30"; true', 60_000);
    expect(Number(bomb.stdout.trim().split('\n').at(-1))).toBeLessThanOrEqual(256);
    expect(bomb.stdout + bomb.stderr).toMatch(/Resource temporarily unavailable|retry/);
    const other = await sh(b, 'echo still-fine; docker info --format "{{.ServerVersion}}"');
    expect(other.stdout).toMatch(/still-fine\n\d+\./);
    await expect.poll(async () => (await sh(a, 'echo recovered')).stdout.trim(), { timeout: 40_000 }).toBe('recovered');
  });

  it('holds a memory hog at the memory limit', async () => {
    // tail keeps a line that never ends in memory: it grows until the limit stops it.
    const hog = await sh(a, 'head -c 2000m /dev/zero | tail >/dev/null; echo "exit ${PIPESTATUS[1]}"; cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes', 120_000);
    const [status, peak] = hog.stdout.trim().split('\n');
    expect(status).not.toBe('exit 0');
    expect(Number(peak)).toBeLessThanOrEqual(384 * 1024 ** 2);
    expect((await sh(a, 'echo alive')).stdout.trim()).toBe('alive');
    expect((await sh(b, 'echo other-alive')).stdout.trim()).toBe('other-alive');
  });

  it('stops a disk fill at the quota wherever the learner writes, and nothing reaches the machine’s disk', async () => {
    // 128 MiB asked for against the 96 MiB disk, one place at a time (each file removed after).
    const fill = await sh(
      a,
      `for f in /root/fill /tmp/fill /var/lib/docker/fill /etc/fill /usr/local/fill; do
         dd if=/dev/zero of=$f bs=1M count=128 2>&1 | grep -c 'No space left on device'; rm -f $f
       done
       touch /fill /usr/bin/fill 2>&1 | grep -c 'Read-only file system'
       df -B1 --output=size /vethlab/disk | tail -n 1`,
      120_000,
    );
    const lines = fill.stdout.trim().split('\n');
    expect(lines.slice(0, 5)).toEqual(['1', '1', '1', '1', '1']);
    expect(lines[5]).toBe('2');
    expect(Number(lines[6])).toBe(96 * 1024 ** 2);
    // The container's own layer on the machine's disk stayed (nearly) empty.
    const upper = ((await server.engine.docker.getContainer(a).inspect()).GraphDriver.Data as unknown as Record<string, string> | undefined)?.UpperDir;
    expect(upper).toBeTruthy();
    expect(Number(execFileSync('du', ['-sb', upper!]).toString().split('\t')[0])).toBeLessThan(1024 ** 2);
    expect((await sh(a, 'echo x > /root/after && cat /root/after')).stdout.trim()).toBe('x');
  });

  it('sees no process of its checker, and can write into no process’s root', async () => {
    const checkerPid = (await server.engine.docker.getContainer(`${sandboxA.name}-checker`).inspect()).State.Pid;
    const sandboxPid = await server.engine.sandboxPid(sandboxA);
    const pidns = (pid: number | string) => execFileSync('readlink', [`/proc/${pid}/ns/pid`]).toString().trim();
    // The checker is in the machine's PID namespace; the sandbox's is a child of it and cannot see its parent.
    expect(pidns(checkerPid)).toBe(pidns('self'));
    expect(pidns(sandboxPid)).not.toBe(pidns(checkerPid));
    const r = await sh(
      a,
      `for p in $(ls /proc | grep -E '^[0-9]+$'); do
         if echo x 2>/dev/null > /proc/$p/root/usr/bin/vethlab-probe || echo x 2>/dev/null > /proc/$p/root/vethlab-probe; then echo "wrote via $p"; fi
       done; echo checked`,
    );
    expect(r.stdout).not.toContain('wrote via');
    expect(r.stdout).toContain('checked');
  });
});
