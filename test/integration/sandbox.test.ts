/**
 * The sandbox world on the real engine: network isolation (proved from
 * state and route lookups, never by sending a packet to an outside
 * address), limits, the simulated upstream, the warm pool, TTL reaping, and
 * a sandbox dying behind the server's back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

let server: TestServer;
let containerId: string;
const sh = async (script: string) => {
  const r = await server.engine.exec(containerId, ['bash', '-c', script], { timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${script}\n${r.stdout}${r.stderr}`);
  return r.stdout;
};

beforeAll(async () => {
  server = await startTestServer();
  const learner = new Learner(server.url);
  const info = await learner.startSession();
  containerId = server.sessions.find(info.sessionId)!.hosts.get('sandbox')!.containerId;
  // An inner container, so its namespace is part of the proof too.
  await sh('docker run -d --name probe busybox sleep 600 >/dev/null');
});

afterAll(async () => {
  await server?.close();
});

describe('network isolation', () => {
  it('runs the sandbox with no network from the engine', async () => {
    const info = await server.engine.docker.getContainer(containerId).inspect();
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual(['none']);
    expect(info.HostConfig.Privileged).toBe(false);
  });

  it('has only loopback, veth and bridge interfaces in every namespace of the sandbox', async () => {
    const kinds = await sh(`
      list() { ip -d -o link | awk '{ kind = "phys"; for (i = 1; i <= NF; i++) if ($i == "veth" || $i == "bridge" || $i == "vxlan" || $i == "dummy") kind = $i; if ($0 ~ /LOOPBACK/) kind = "lo"; sub(/@.*/, "", $2); print kind, $2 }'; }
      echo "[sandbox]"; list
      for ns in $(ip netns list | awk '{print $1}'); do echo "[$ns]"; ip netns exec "$ns" sh -c "$(declare -f list); list"; done
      pid=$(docker inspect -f '{{.State.Pid}}' probe); echo "[probe]"; nsenter -t "$pid" -n sh -c "$(declare -f list); list"
    `);
    const physical = kinds.split('\n').filter((l) => l.startsWith('phys'));
    expect(physical).toEqual([]);
    expect(kinds).toContain('[upstream-router]');
    expect(kinds).toContain('[probe]');
  });

  it('routes every outside address to the upstream router, which has no route onward', async () => {
    // `ip route get` asks the kernel's routing table; it sends no packet.
    expect(await sh('ip route get 1.1.1.1')).toMatch(/via 192\.0\.2\.1 dev eth0/);
    expect(await sh('ip netns exec upstream-web ip route get 1.1.1.1')).toMatch(/via 198\.51\.100\.1 dev eth0/);
    const pid = (await sh(`docker inspect -f '{{.State.Pid}}' probe`)).trim();
    expect(await sh(`nsenter -t ${pid} -n ip route get 1.1.1.1`)).toMatch(/via 172\.17\.0\.1 dev eth0/);
    for (const addr of ['1.1.1.1', '10.0.0.1', '172.16.0.1', '192.168.1.1', '8.8.8.8']) {
      const r = await server.engine.exec(containerId, ['ip', 'netns', 'exec', 'upstream-router', 'ip', 'route', 'get', addr]);
      expect(r.exitCode, addr).not.toBe(0);
      expect(r.stderr, addr).toMatch(/unreachable/i);
    }
    expect(await sh('ip netns exec upstream-router ip -o route')).not.toMatch(/default/);
  });

  it('serves the simulated upstream inside the sandbox', async () => {
    expect(await sh('curl -s -m 5 http://198.51.100.10/')).toBe('Hello from 198.51.100.10. You came from 192.0.2.10\n');
    expect(await sh('docker exec probe ping -c 1 -W 2 192.0.2.1')).toMatch(/1 packets received/);
    expect(await sh('tail -n 1 /var/log/upstream/access.log')).toMatch(/192\.0\.2\.10 "GET \/ HTTP\/1\.1" 200/);
  });
});

describe('limits and kernel surfaces', () => {
  it('applies memory, pids and cpu limits, visible in the sandbox', async () => {
    const info = await server.engine.docker.getContainer(containerId).inspect();
    expect(info.HostConfig.Memory).toBe(512 * 1024 ** 2);
    expect(info.HostConfig.PidsLimit).toBe(512);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect((await sh('cat /sys/fs/cgroup/memory/memory.limit_in_bytes')).trim()).toBe(String(512 * 1024 ** 2));
    expect((await sh('cat /sys/fs/cgroup/pids/pids.max')).trim()).toBe('512');
  });

  it('lets the learner change network sysctls but not kernel ones', async () => {
    // Write back the value already there: a probe, never a change.
    await sh('v=$(cat /proc/sys/net/ipv4/ip_forward); echo "$v" > /proc/sys/net/ipv4/ip_forward');
    const kernel = await server.engine.exec(containerId, ['bash', '-c', 'v=$(cat /proc/sys/kernel/panic); echo "$v" > /proc/sys/kernel/panic']);
    expect(kernel.exitCode).not.toBe(0);
    expect(kernel.stderr).toMatch(/Read-only file system/);
    // sysrq-trigger is masked: not writable, and we never write to it.
    const sysrq = await sh('if [ -e /proc/sysrq-trigger ] && [ -w /proc/sysrq-trigger ] && ! grep -q " /proc/sysrq-trigger .*\\bro\\b" /proc/self/mounts; then echo writable; else echo protected; fi');
    expect(sysrq.trim()).toBe('protected');
  });

  it('shows the sandbox only its own cgroup subtree', async () => {
    // Private cgroup namespace: the root of the sandbox's view is its own cgroup.
    expect((await sh('cat /proc/self/cgroup | grep memory')).trim()).toMatch(/:memory:\/$/);
    expect(await sh('ls /sys/fs/cgroup/memory')).not.toMatch(/release_agent/);
  });
});

describe('lifecycle', () => {
  it('tells an attached terminal when its sandbox is removed behind the server', async () => {
    const learner = new Learner(server.url);
    const info = await learner.startSession();
    const term = await learner.openTerminal(info.sessionId);
    await term.waitForReady();
    const victim = server.sessions.find(info.sessionId)!.hosts.get('sandbox')!;
    await server.engine.docker.getContainer(victim.containerId).remove({ force: true });
    const msg = await term.waitForMessage('error');
    expect(msg).toMatchObject({ code: 'sandbox-gone', fatal: true });
    expect(await term.waitForClose()).toBe(4410);
    const after = await learner.request('GET', `/api/sessions/${info.sessionId}`);
    expect(after.json).toMatchObject({ state: 'gone' });
    // Starting again gives a fresh sandbox and ends the dead session.
    const again = await learner.startSession();
    expect(again.sessionId).not.toBe(info.sessionId);
    expect(again.state).toBe('ready');
    await learner.endSession(again.sessionId);
  });
});
