/**
 * Labs end to end on the real engine: a learner types the solution into a
 * real terminal and the tasks turn green by themselves; hints, answers,
 * prerequisites, grades and their export; progress survives a restart; and
 * replacing ip, iptables or docker inside the sandbox fools no check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabInfo, LabStatus, TaskStatus } from '../../protocol/lab';
import { LabCatalog, parseLab } from '../../lab-server/labs/catalog';
import { Learner, type TerminalConnection } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

const probe = parseLab(
  'probe.lab.yaml',
  `
id: probe
title: Probe lab
tasks:
  - id: veth-pair
    title: A veth pair between the host and netns red
    check:
      all:
        - { kind: netns, name: red }
        - { kind: link, name: veth-host, type: veth, state: up, peer_netns: red, peer_name: veth-red }
        - { kind: address, at: { netns: red }, dev: veth-red, cidr: 10.9.0.2/24 }
    hint_check: { kind: netns, name: red }
    hints: [ "ip netns add red", "ip link add veth-host type veth peer name veth-red netns red" ]
  - id: masquerade
    title: A MASQUERADE rule that counted packets
    needs: [veth-pair]
    check: { kind: iptables, table: nat, chain: POSTROUTING, rule: "-s 10.9.0.0/24 -j MASQUERADE", carries: { from: { netns: red }, to: 192.0.2.1 } }
  - id: web-container
    title: A container web on the default bridge
    check: { kind: container, name: web, networks: [bridge] }
  - id: peer-name
    title: Name the host-side veth of container web
    question: Which interface?
    check:
      kind: shell
      run: |
        pid=$(ctr_pid web)
        # netlink, not /sys: sysfs shows the namespace it was mounted in.
        idx=$(nsenter -t "$pid" -n ip -j link show eth0 | jq '.[0].link_index')
        [ "$(ip -j link show "$ANSWER" 2>/dev/null | jq '.[0].ifindex')" = "$idx" ]
solution:
  - run: ip netns add red && ip link add veth-host type veth peer name veth-red netns red
  - run: ip link set veth-host up && ip -n red link set veth-red up && ip -n red addr add 10.9.0.2/24 dev veth-red
  - run: iptables -t nat -A POSTROUTING -s 10.9.0.0/24 -j MASQUERADE
  - run: docker run -d --name web nginx
`,
);

let server: TestServer;
let learner: Learner;
let sessionId: string;
let term: TerminalConnection;

const latestTasks = (t: TerminalConnection) => [...t.messages].reverse().find((m) => m.type === 'tasks');
const task = (t: TerminalConnection, id: string): TaskStatus | undefined => {
  const m = latestTasks(t);
  return m?.type === 'tasks' ? m.tasks.find((x) => x.id === id) : undefined;
};

beforeAll(async () => {
  const catalog = LabCatalog.of([...LabCatalog.load().all(), probe]);
  server = await startTestServer({}, { catalog, checkIntervalMs: 1000 });
  learner = new Learner(server.url);
  sessionId = (await learner.startSession('probe')).sessionId;
  term = await learner.openTerminal(sessionId);
  await term.waitForReady();
  await term.waitForText(/root@sandbox:~# /);
});

afterAll(async () => {
  term?.close();
  await server?.close();
});

describe('a lab in a live session', () => {
  it('describes the lab to the page without its checks or solution', async () => {
    const { status, json } = await learner.request('GET', '/api/labs/probe?locale=en');
    expect(status).toBe(200);
    const info = json as LabInfo;
    expect(info.tasks.map((t) => t.id)).toEqual(['veth-pair', 'masquerade', 'web-container', 'peer-name']);
    expect(JSON.stringify(json)).not.toMatch(/nsenter|solution|"kind"|"check"|10\.9\.0/);
    expect((await learner.request('GET', '/api/labs/nope')).status).toBe(404);
  });

  it('starts with every task pending or failing, and blocks tasks whose prerequisites are open', async () => {
    const { json } = await learner.request('POST', `/api/sessions/${sessionId}/check`);
    const status = json as LabStatus;
    expect(status.tasks.every((t) => t.status !== 'passed')).toBe(true);
    expect(status.tasks.find((t) => t.id === 'masquerade')!.blocked).toBe(true);
    const veth = status.tasks.find((t) => t.id === 'veth-pair')!;
    expect(veth.reason).toEqual({ key: 'netns-missing', args: ['red'] });
    expect(veth.hint).toEqual({ key: 'netns-missing', args: ['red'] });
  });

  it('reveals hints one by one and records them', async () => {
    const h1 = await learner.request('POST', `/api/sessions/${sessionId}/hint`, { task: 'veth-pair' });
    expect(h1.json).toEqual({ task: 'veth-pair', hints: ['ip netns add red'] });
    const h2 = await learner.request('POST', `/api/sessions/${sessionId}/hint`, { task: 'veth-pair' });
    expect((h2.json as { hints: string[] }).hints).toHaveLength(2);
    const h3 = await learner.request('POST', `/api/sessions/${sessionId}/hint`, { task: 'veth-pair' });
    expect((h3.json as { hints: string[] }).hints).toHaveLength(2);
    expect((await learner.request('POST', `/api/sessions/${sessionId}/hint`, { task: 'nope' })).status).toBe(404);
  });

  it('is not fooled by fake ip, iptables and docker binaries in the sandbox', async () => {
    // /usr is read-only in the sandbox: the learner binds the fakes over the real ones.
    const bins = '/usr/sbin/ip /usr/bin/ip /usr/sbin/iptables /usr/sbin/iptables-save /usr/bin/docker';
    await term.run(`printf '#!/bin/sh\\necho "veth-host@if2: <UP> master docker0 10.9.0.2/24 -s 10.9.0.0/24 -j MASQUERADE red web running"\\n' > /root/fake && chmod +x /root/fake`);
    await term.run(`for b in ${bins}; do [ -e "$b" ] && mount --bind /root/fake "$b"; done`);
    // The fakes are really in place: the learner's own tools now print the lie.
    for (const tool of ['ip link', 'iptables -t nat -S', 'docker ps']) expect(await term.run(tool)).toContain('veth-host@if2: <UP>');
    const { json } = await learner.request('POST', `/api/sessions/${sessionId}/check`);
    expect((json as LabStatus).tasks.every((t) => t.status !== 'passed'), JSON.stringify(json)).toBe(true);
    await term.run(`for b in ${bins}; do umount "$b" 2>/dev/null; done; true`);
    expect(await term.run('ip -o link show lo')).toMatch(/^1: lo:/);
    // The checks and the solution are not inside the sandbox.
    expect((await term.run('grep -rl "10.9.0.0/24" /opt /etc /root /usr/local /run 2>/dev/null | grep -v "^/root/fake$" | head -n 3')).trim()).toBe('');
  });

  it('turns tasks green by themselves as the learner types the solution', async () => {
    term.type('ip netns add red && ip link add veth-host type veth peer name veth-red netns red\r');
    term.type('ip link set veth-host up && ip -n red link set veth-red up && ip -n red addr add 10.9.0.2/24 dev veth-red\r');
    await term.waitFor(() => task(term, 'veth-pair')?.status === 'passed', 20_000, 'veth-pair passed');
    term.type('iptables -t nat -A POSTROUTING -s 10.9.0.0/24 -j MASQUERADE\r');
    // The rule alone is not evidence: it must count the check's own ping from red, which has no route yet.
    await term.waitFor(() => task(term, 'masquerade')?.reason, 20_000, 'masquerade reason');
    expect(task(term, 'masquerade')?.status).not.toBe('passed');
    term.type('ip addr add 10.9.0.1/24 dev veth-host && ip -n red route add default via 10.9.0.1 && ip netns exec red ping -c 1 -W 2 192.0.2.1\r');
    await term.waitFor(() => task(term, 'masquerade')?.status === 'passed', 30_000, 'masquerade passed');
    term.type('docker run -d --name web nginx\r');
    await term.waitFor(() => task(term, 'web-container')?.status === 'passed', 30_000, 'web-container passed');
  });

  it('checks an answer against live state, not a constant', async () => {
    const wrong = await learner.request('POST', `/api/sessions/${sessionId}/answer`, { task: 'peer-name', answer: 'eth0' });
    expect(wrong.json).toMatchObject({ status: 'failed', attempts: 1 });
    // A wrong answer is one attempt: the runs after a command and a manual check re-check it without counting.
    await term.run('true');
    const after = (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
    expect(after.tasks.find((t) => t.id === 'peer-name')).toMatchObject({ status: 'failed', attempts: 1 });
    const veth = (await term.run(`ip -o link | awk -F': ' -v i=$(docker exec web cat /sys/class/net/eth0/iflink) '$1 == i { sub(/@.*/, "", $2); print $2 }'`)).trim();
    expect(veth).toMatch(/^veth/);
    const right = await learner.request('POST', `/api/sessions/${sessionId}/answer`, { task: 'peer-name', answer: veth });
    expect(right.json).toMatchObject({ status: 'passed', answer: veth });
    expect((await learner.request('POST', `/api/sessions/${sessionId}/answer`, { task: 'peer-name' })).status).toBe(400);
  });

  it('grades the lab and exports every learner’s grade for the instructor', async () => {
    const mine = await learner.request('GET', '/api/labs/probe/grade');
    expect(mine.json).toMatchObject({ lab: 'probe', tasksPassed: 4, tasksTotal: 4, hintsUsed: 2, score: 100 });
    expect((await learner.request('GET', '/api/grades?lab=probe')).status).toBe(401);
    const res = await fetch(`${server.url}/api/grades?lab=probe&format=csv`, { headers: { authorization: `Bearer ${server.instructorToken}` } });
    const csv = await res.text();
    expect(csv.split('\n')[0]).toBe('learnerId,name,lab,tasksPassed,tasksTotal,hintsUsed,score,startedAt,finishedAt,secondsTaken');
    expect(csv).toMatch(/^L-[A-Za-z0-9_-]{12},,probe,4,4,2,100,/m);
    // The export names no credential: the learner's cookie appears nowhere in it.
    expect(csv).not.toContain(learner.cookie!.split('=')[1]!);
    expect(csv).not.toContain(learner.cookie!.split('=')[1]!.split('.')[0]!);
    // The token in a URL is not accepted (it would land in history and proxy logs).
    expect((await fetch(`${server.url}/api/grades?token=${server.instructorToken}`)).status).toBe(401);
    const json = await (await fetch(`${server.url}/api/grades`, { headers: { authorization: `Bearer ${server.instructorToken}` } })).json();
    expect(json).toEqual(expect.arrayContaining([expect.objectContaining({ lab: 'probe', tasksPassed: 4 })]));
  });

  it('keeps progress across a lab-server restart', async () => {
    term.close();
    const dataDir = server.dataDir;
    const instance = (await server.engine.docker.getContainer(server.sessions.find(sessionId)!.hosts.get('sandbox')!.containerId).inspect()).Config.Labels['vethlab.instance']!;
    await server.close({ keepSandboxes: true });
    server = await startTestServer({ VETHLAB_DATA_DIR: dataDir, VETHLAB_INSTANCE: instance }, { catalog: LabCatalog.of([probe]) });
    learner = Object.assign(new Learner(server.url), { cookie: learner.cookie });
    const { json } = await learner.request('GET', `/api/sessions/${sessionId}/lab`);
    expect((json as LabStatus).tasks.map((t) => t.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect((json as LabStatus).finishedAt).toBeTruthy();
  });

  it('resets the lab into a fresh sandbox', async () => {
    const { status, json } = await learner.request('POST', `/api/sessions/${sessionId}/reset`);
    expect(status).toBe(201);
    const fresh = json as { sessionId: string };
    expect(fresh.sessionId).not.toBe(sessionId);
    sessionId = fresh.sessionId;
    const st = (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
    expect(st.tasks.map((t) => t.status)).toEqual(['failed', 'pending', 'failed', 'pending']);
    term = await learner.openTerminal(sessionId);
    await term.waitForReady();
  });
});
