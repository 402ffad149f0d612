/**
 * Escape and abuse attempts from inside a sandbox, as a learner would make
 * them. They probe, never fire: nothing writes to sysrq-trigger, loads a
 * module or mounts a device; the fork bomb, the memory hog and the disk fill
 * run only under the sandbox's pids, memory and disk limits (the disk is a
 * 96 MiB tmpfs: the fill never touches the machine's disk), with a timeout. (Network isolation,
 * sysctls and sysrq are probed in sandbox.test.ts; terminal floods in
 * terminal.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;
let a: string;
let b: string;
const sh = async (id: string, script: string, timeoutMs = 30_000) => server.engine.exec(id, ['bash', '-c', script], { timeoutMs });

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_PIDS: '256', VETHLAB_MEMORY: '384m', VETHLAB_DISK: '96m' });
  const la = new Learner(server.url);
  const lb = new Learner(server.url);
  const [sa, sb] = await Promise.all([la.startSession(), lb.startSession()]);
  a = server.sessions.find(sa.sessionId)!.hosts.get('sandbox')!.containerId;
  b = server.sessions.find(sb.sessionId)!.hosts.get('sandbox')!.containerId;
});

afterAll(async () => {
  await server?.close();
});

describe('escape attempts', () => {
  it('cannot reach a host block device', async () => {
    const r = await sh(a, 'ls /dev; echo ---; cat /sys/fs/cgroup/devices/devices.list');
    const [devs, rules] = r.stdout.split('---');
    expect(devs).not.toMatch(/\b(sd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|loop\d|dm-\d)\b/);
    // The devices cgroup allows "all" nothing, and no block device read or write (mknod only).
    expect(rules).not.toMatch(/^a /m);
    expect(rules).not.toMatch(/^b \S+ \w*[rw]/m);
  });

  it('cannot load a kernel module', async () => {
    const capBnd = (await sh(a, "awk '/^CapBnd/ {print $2}' /proc/self/status")).stdout.trim();
    const CAP_SYS_MODULE = 16n;
    expect((BigInt(`0x${capBnd}`) >> CAP_SYS_MODULE) & 1n).toBe(0n);
    expect((await sh(a, 'ls /lib/modules 2>&1')).stdout).toMatch(/No such file|^$/);
  });

  it('sees neither another sandbox’s processes nor its files', async () => {
    await sh(b, 'nohup sleep 4242 >/dev/null 2>&1 & echo secret-of-b > /root/secret');
    const ps = await sh(a, 'ps -eo args');
    expect(ps.stdout).not.toContain('sleep 4242');
    const found = await sh(a, 'grep -rls "secret-of-b" /root /tmp /var/lib/docker/volumes 2>/dev/null; cat /proc/mounts');
    expect(found.stdout).not.toContain('secret-of-b');
    expect(found.stdout).not.toContain((await server.engine.docker.getContainer(b).inspect()).Name.slice(1));
  });

  it('sees only its own cgroup subtree, without the host’s release_agent', async () => {
    const r = await sh(a, 'cat /proc/1/cgroup; ls /sys/fs/cgroup/memory; find /sys/fs/cgroup -maxdepth 2 -name release_agent');
    expect(r.stdout).toMatch(/:memory:\/$/m);
    expect(r.stdout).not.toMatch(/release_agent/);
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

  it('cannot write into the checker beside it, though it sees the checker’s processes', async () => {
    // Every process the learner sees, the checker's among them: their roots are read-only.
    const r = await sh(
      a,
      `for p in $(pgrep -x sleep); do
         if echo x 2>/dev/null > /proc/$p/root/usr/bin/vethlab-probe || echo x 2>/dev/null > /proc/$p/root/vethlab-probe; then echo "wrote via $p"; fi
       done; echo checked $(pgrep -x sleep | wc -l)`,
    );
    expect(r.stdout).not.toContain('wrote via');
    expect(Number(/checked (\d+)/.exec(r.stdout)?.[1])).toBeGreaterThanOrEqual(2);
  });
});
