/**
 * Sandboxes across a Docker Swarm (SwarmDriver): a swarm of three real node
 * engines on this machine, each in a network namespace of its own joined
 * only by a bridge in another (test/support/swarm.ts; nothing reaches the
 * machine's network), and a real lab-server placing learners on it through
 * the real API. A node joining takes learners without a restart, placement
 * spreads, a multi-host lab shares a node, a sandbox
 * there is contained as a local one, a paused or drained node takes nothing
 * new, a node lost mid-lab gives the learner the "sandbox gone" path and a
 * new sandbox elsewhere with passed tasks kept, lesson 1 passes on a worker,
 * and a node lacking a setting is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../protocol/lab';
import { LabCatalog, parseLab } from '../../lab-server/labs/catalog';
import type { SwarmDriver } from '../../lab-server/sandbox/swarm-driver';
import { NODE_READY_LABEL } from '../../lab-server/sandbox/swarm-driver';
import { checkNode } from '../../lab-server/sandbox/swarm-node-check';
import { DMESG, HOST_BACKED_MOUNTS, KERNEL_SETTINGS, OWN_LIMITS, RELEASE_AGENT, SHOCKER, verdicts } from '../support/escape-probes';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';
import { TestSwarm, type SwarmNode } from '../support/swarm';

const twoHosts = parseLab(
  'two-hosts.lab.yaml',
  `
id: two-hosts
title: Two hosts
hosts: [host-a, host-b]
tasks:
  - id: link
    title: host-a reaches host-b over link0
    check: { kind: ping, from: { host: host-a }, to: 192.168.56.11 }
solution:
  - { host: host-a, run: "true" }
`,
);

let swarm: TestSwarm;
let server: TestServer;
const catalog = LabCatalog.of([...LabCatalog.load().all(), twoHosts]);

beforeAll(async () => {
  // The third machine joins during the first test.
  swarm = await TestSwarm.start({ joined: 2 });
  server = await startTestServer({ VETHLAB_SWARM: swarm.managerEndpoint, VETHLAB_MAX_SANDBOXES: '40' }, { catalog, checkIntervalMs: 1000 });
}, 300_000);

afterAll(async () => {
  await server?.close();
  await swarm?.dispose();
});

const driver = () => server.engine as SwarmDriver;
/** The node a session's host runs on, as Swarm says (the task's node), checked against the node's own engine. */
async function nodeOf(sessionId: string, host = 'sandbox'): Promise<SwarmNode> {
  const sandbox = server.sessions.find(sessionId)!.hosts.get(host)!;
  const n = await swarm.nodeOf(sandbox.containerId);
  expect(n, 'a node engine runs the sandbox').toBeDefined();
  expect(sandbox.node).toBe(n!.id);
  return n!;
}
const byName = (name: string) => swarm.nodes.find((n) => n.name === name)!;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('sandboxes across a swarm', () => {
  it('checks every node before it takes sandboxes, and adds a node that joins without a restart', async () => {
    expect(driver().nodeStatus().map((n) => n.state)).toEqual(['ready', 'ready']);
    const joining = byName('n3');
    await swarm.join(joining);
    await waitFor('the joining node to be checked', async () => {
      await driver().refresh();
      return driver().nodeStatus().find((n) => n.id === joining.id)?.state === 'ready';
    }, 240);
    const nodes = (await swarm.manager.docker.listNodes()) as { Spec: { Labels?: Record<string, string> } }[];
    expect(nodes).toHaveLength(3);
    for (const n of nodes) expect(n.Spec.Labels?.[NODE_READY_LABEL]).toBe(swarm.image.split(':').pop());
    // It takes learners: with the other two paused, the next one lands there.
    const others = swarm.nodes.filter((n) => n !== joining);
    for (const n of others) await swarm.setAvailability(n, 'pause');
    const learner = new Learner(server.url);
    const info = await learner.startSession();
    for (const n of others) await swarm.setAvailability(n, 'active');
    expect((await nodeOf(info.sessionId)).name).toBe(joining.name);
    await learner.endSession(info.sessionId);
  });

  it('spreads learners over the nodes, and each sandbox is as contained as a local one', async () => {
    const learners = [new Learner(server.url), new Learner(server.url), new Learner(server.url)];
    const sessions = [];
    for (const l of learners) sessions.push(await l.startSession());
    const nodes = await Promise.all(sessions.map((s) => nodeOf(s.sessionId)));
    expect(new Set(nodes.map((n) => n.name)).size).toBe(3);

    // Containment on a node: user namespace, the project's seccomp, only its own network, the escape probes refused.
    const sandbox = server.sessions.find(sessions[1]!.sessionId)!.hosts.get('sandbox')!;
    const sh = async (script: string, ...args: string[]) => {
      const r = await server.engine.exec(sandbox.containerId, ['bash', '-c', script, 'probe', ...args], { timeoutMs: 60_000 });
      return r.stdout + r.stderr;
    };
    expect((await sh('cat /proc/self/uid_map')).trim().split(/\s+/).slice(0, 2)).toEqual(['0', '100000']);
    expect(await sh('grep ^Seccomp: /proc/1/status')).toMatch(/Seccomp:\s+2/);
    expect((await sh('grep memory /proc/self/cgroup')).trim()).toMatch(/:memory:\/$/);
    // Interfaces: loopback, the uplink to its own simulated router, and its inner engine's docker0; nothing of the node's.
    expect((await sh("ip -o link | awk -F': ' '{ print $2 }' | cut -d@ -f1 | sort | tr '\\n' ' '")).trim()).toBe('docker0 eth0 lo');
    expect(await sh('ip -d -o link show eth0')).toMatch(/link-netns upstream-router/);
    expect(await sh('ip route get 203.0.113.1')).toMatch(/via 192\.0\.2\.1 dev eth0/);
    expect((await sh('touch /root/x.sh && chmod +x /root/x.sh && echo "echo ran" > /root/x.sh && /root/x.sh')).trim()).toBe('ran');
    for (const probe of [KERNEL_SETTINGS, DMESG, OWN_LIMITS, RELEASE_AGENT]) {
      const out = await sh(probe);
      const v = verdicts(out);
      expect(v.escaped, out).toEqual([]);
      expect(v.cannot, out).toEqual([]);
    }
    const mounts = (await sh(HOST_BACKED_MOUNTS)).split('\n').filter(Boolean);
    expect(mounts.length).toBeGreaterThan(0);
    const shocker = await server.engine.exec(sandbox.containerId, ['perl', '-e', SHOCKER, ...mounts], { timeoutMs: 30_000 });
    const v = verdicts(shocker.stdout);
    expect(v.escaped, shocker.stdout).toEqual([]);
    expect(v.refused.length, shocker.stdout).toBeGreaterThan(0);
    // An inner docker run works under the node's seccomp default (no "unable to join session keyring").
    expect((await sh('docker run --rm busybox echo inner-ok')).trim()).toContain('inner-ok');

    for (const [i, l] of learners.entries()) await l.endSession(sessions[i]!.sessionId);
  });

  it('keeps a multi-host lab on one node, joined by link0', async () => {
    const learner = new Learner(server.url);
    const info = await learner.startSession('two-hosts');
    const [a, b] = [await nodeOf(info.sessionId, 'host-a'), await nodeOf(info.sessionId, 'host-b')];
    expect(a.name).toBe(b.name);
    const status = (await learner.request('POST', `/api/sessions/${info.sessionId}/check`)).json as LabStatus;
    expect(status.tasks[0]!.status).toBe('passed');
    await learner.endSession(info.sessionId);
  });

  it('places nothing new on a paused node and leaves its learner working; a drained node takes nothing new either', async () => {
    const learner = new Learner(server.url);
    const first = await learner.startSession();
    const node = await nodeOf(first.sessionId);
    await swarm.setAvailability(node, 'pause');
    const others = [new Learner(server.url), new Learner(server.url), new Learner(server.url)];
    const placed = [];
    for (const l of others) placed.push(await l.startSession());
    for (const s of placed) expect((await nodeOf(s.sessionId)).name).not.toBe(node.name);
    // The learner on the paused node still works.
    const r = await server.engine.exec(server.sessions.find(first.sessionId)!.hosts.get('sandbox')!.containerId, ['docker', 'info', '--format', '{{.ServerVersion}}']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(((await learner.request('GET', `/api/sessions/${first.sessionId}`)).json as { state: string }).state).toBe('ready');

    // Drain: Swarm stops the tasks there (that learner gets the sandbox-gone path) and places nothing new there.
    await swarm.setAvailability(node, 'drain');
    await waitFor('the drained node\'s learner to be told', async () => ((await learner.request('GET', `/api/sessions/${first.sessionId}`)).json as { state: string }).state === 'gone');
    const again = await learner.startSession();
    expect((await nodeOf(again.sessionId)).name).not.toBe(node.name);
    await swarm.setAvailability(node, 'active');
    await learner.endSession(again.sessionId);
    for (const [i, l] of others.entries()) await l.endSession(placed[i]!.sessionId);
  });

  it('shares a warm pool sized for the room out over the nodes', async () => {
    // Two learners on n1 first: Swarm alone would put the pool on the emptier n2 and n3 (spread by task count).
    const [n1, ...rest] = swarm.nodes;
    for (const n of rest) await swarm.setAvailability(n, 'pause');
    const busy = [new Learner(server.url), new Learner(server.url)];
    const busySessions = [];
    for (const l of busy) busySessions.push(await l.startSession());
    for (const n of rest) await swarm.setAvailability(n, 'active');
    for (const s of busySessions) expect((await nodeOf(s.sessionId)).name).toBe(n1!.name);
    const room = await startTestServer({ VETHLAB_SWARM: swarm.managerEndpoint, VETHLAB_POOL_SIZE: '3', VETHLAB_MAX_SANDBOXES: '40' }, { catalog });
    try {
      await waitFor('the pool to fill', async () => room.pool.size === 3, 960);
      const pooled = (await room.engine.list()).filter((s) => s.pool);
      expect(pooled).toHaveLength(3);
      expect(new Set(pooled.map((s) => s.node)).size).toBe(3);
    } finally {
      await room.close();
      for (const [i, l] of busy.entries()) await l.endSession(busySessions[i]!.sessionId);
    }
  });

  it('runs the whole lesson-1 lab on a worker; a node lost mid-lab gives the "sandbox gone" path, a new sandbox elsewhere and keeps passed tasks', async () => {
    const lab = catalog.get('network-stack')!;
    const learner = new Learner(server.url);
    // The manager takes nothing new for this start: the learner lands on a worker.
    await swarm.setAvailability(swarm.manager, 'pause');
    const info = await learner.startSession('network-stack');
    await swarm.setAvailability(swarm.manager, 'active');
    const worker = await nodeOf(info.sessionId);
    expect(worker.name).not.toBe(swarm.manager.name);

    const term = await learner.openTerminal(info.sessionId);
    await term.waitForReady();
    await term.waitForText(/root@sandbox:~# /);
    const before = (await learner.request('POST', `/api/sessions/${info.sessionId}/check`)).json as LabStatus;
    expect(before.tasks.every((t) => t.status !== 'passed')).toBe(true);
    for (const step of lab.solution) {
      if (step.run) await term.run(step.run, 60_000);
      if (step.answer) {
        const value = step.answer.value ?? (await term.run(step.answer.run!)).trim();
        await learner.request('POST', `/api/sessions/${info.sessionId}/answer`, { task: step.answer.task, answer: value });
      }
    }
    const solved = await waitFor('every task of lesson 1 to pass', async () => {
      const s = (await learner.request('POST', `/api/sessions/${info.sessionId}/check`)).json as LabStatus;
      return s.tasks.every((t) => t.status === 'passed') && s;
    }, 240);
    expect(solved.tasks.length).toBeGreaterThan(0);

    // The worker goes away mid-lab.
    await swarm.killNode(worker);
    const msg = await term.waitForMessage('error');
    expect(msg).toMatchObject({ code: 'sandbox-gone', fatal: true });
    expect(((await learner.request('GET', `/api/sessions/${info.sessionId}`)).json as { state: string }).state).toBe('gone');
    expect(driver().nodeStatus().find((n) => n.id === worker.id)!.state).toBe('lost');

    // One step: start again, on another node, with the passed tasks kept.
    const again = await learner.startSession('network-stack');
    expect(again.sessionId).not.toBe(info.sessionId);
    expect(again.state).toBe('ready');
    expect((await nodeOf(again.sessionId)).name).not.toBe(worker.name);
    const kept = (await learner.request('GET', `/api/sessions/${again.sessionId}/lab`)).json as LabStatus;
    expect(kept.tasks.map((t) => t.status)).toEqual(solved.tasks.map(() => 'passed'));
    await learner.endSession(again.sessionId);
  });

  it('refuses a node whose engine comes back without a setting, and places nothing there', async () => {
    const lost = swarm.nodes.find((n) => driver().nodeStatus().find((s) => s.id === n.id)!.state === 'lost')!;
    expect(lost).toBeDefined();
    // The machine comes back, its engine without the project's seccomp profile.
    await swarm.restartNode(lost, ['--seccomp-profile']);
    await driver().refresh();
    const status = await waitFor('the node to be checked again', async () => {
      await driver().refresh();
      const s = driver().nodeStatus().find((n) => n.id === lost.id)!;
      return s.state === 'refused' && s;
    }, 240);
    expect(status.problems.join('\n')).toMatch(/lacks the project's seccomp profile.*npm run node:prepare/);
    const node = (await swarm.manager.docker.getNode(lost.id).inspect()) as { Spec: { Labels?: Record<string, string> } };
    expect(node.Spec.Labels?.[NODE_READY_LABEL]).toBeUndefined();
    const learners = [new Learner(server.url), new Learner(server.url)];
    const placed = [];
    for (const l of learners) placed.push(await l.startSession());
    for (const s of placed) expect((await nodeOf(s.sessionId)).name).not.toBe(lost.name);
    for (const [i, l] of learners.entries()) await l.endSession(placed[i]!.sessionId);
  });

  it('names what a node engine lacks, setting by setting', async () => {
    const spare = byName(swarm.nodes.find((n) => driver().nodeStatus().find((s) => s.id === n.id)!.state === 'refused')!.name);
    const cases: [string[], RegExp][] = [
      [['--default-cgroupns-mode'], /lacks default-cgroupns-mode: private.*npm run node:prepare/],
      [['--bridge'], /lacks bridge: none/],
      [['--userns-remap'], /lacks userns-remap/],
    ];
    for (const [without, problem] of cases) {
      await swarm.restartNode(spare, without);
      const r = await checkNode(spare.docker, swarm.image, spare.name);
      expect(r.ok, without.join(' ')).toBe(false);
      expect(r.problems.join('\n')).toMatch(problem);
    }
    // And with every setting it passes.
    await swarm.restartNode(spare, []);
    expect(await checkNode(spare.docker, swarm.image, spare.name)).toEqual({ ok: true, problems: [] });
  });
});
