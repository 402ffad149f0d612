/**
 * A two-host lab: two sandboxes, each with its own dockerd, joined only by
 * a private link (a veth pair straight between them). Each host has a
 * terminal; checks run on the host they name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabStatus } from '../../protocol/lab';
import { LabCatalog, parseLab } from '../../lab-server/labs/catalog';
import { Learner } from '../support/terminal-client';
import { startTestServer, type TestServer } from '../support/lab-server';

const twoHosts = parseLab(
  'two-hosts.lab.yaml',
  `
id: two-hosts
title: Two hosts
hosts: [host-a, host-b]
tasks:
  - id: cross-ping
    title: host-a's container reaches host-b's container
    check: { kind: ping, from: { host: host-a, container: a1 }, to: 10.20.2.2 }
solution:
  - { host: host-b, run: "docker network create --subnet 10.20.2.0/24 nb && docker run -d --name b1 --net nb --ip 10.20.2.2 busybox sleep 3600 && ip route add 10.20.1.0/24 via 192.168.56.10" }
  - { host: host-a, run: "docker network create --subnet 10.20.1.0/24 na && docker run -d --name a1 --net na --ip 10.20.1.2 busybox sleep 3600 && ip route add 10.20.2.0/24 via 192.168.56.11" }
`,
);

let server: TestServer;
let learner: Learner;
let sessionId: string;

beforeAll(async () => {
  server = await startTestServer({}, { catalog: LabCatalog.of([twoHosts]) });
  learner = new Learner(server.url);
  const info = await learner.startSession('two-hosts');
  sessionId = info.sessionId;
  expect(info.terminals).toEqual([
    { id: 'host-a', host: 'host-a' },
    { id: 'host-b', host: 'host-b' },
  ]);
});

afterAll(async () => {
  await server?.close();
});

describe('two sandboxes on a private link', () => {
  it('gives each host its own terminal and engine, joined only by link0', async () => {
    const a = await learner.openTerminal(sessionId, { terminalId: 'host-a' });
    const b = await learner.openTerminal(sessionId, { terminalId: 'host-b' });
    await a.waitForReady();
    await b.waitForReady();
    await a.waitForText(/root@host-a:~# /);
    await b.waitForText(/root@host-b:~# /);
    expect((await a.run('ping -c 1 -W 2 192.168.56.11 | grep -c "1 received"')).trim()).toBe('1');
    expect(await a.run('ip route get 192.168.56.11')).toMatch(/dev link0/);
    // Each host has its own Docker engine.
    await b.run('docker run -d --name only-on-b busybox sleep 600');
    expect((await a.run('docker ps -q --filter name=only-on-b | wc -l')).trim()).toBe('0');
    // link0's peer is not on this host: it is the other sandbox's link0.
    expect(await a.run('ip -d link show link0')).toMatch(/link0@if\d+:[\s\S]*veth/);
    a.close();
    b.close();
  });

  it('runs a check on the host it names, and it passes once routes join the container subnets', async () => {
    const before = (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
    expect(before.tasks[0]!.status).toBe('failed');
    const sandboxes = server.sessions.find(sessionId)!.hosts;
    for (const step of twoHosts.solution) {
      const r = await server.engine.exec(sandboxes.get(step.host!)!.containerId, ['bash', '-ec', step.run!], { timeoutMs: 60_000 });
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const after = (await learner.request('POST', `/api/sessions/${sessionId}/check`)).json as LabStatus;
    expect(after.tasks[0]!.status).toBe('passed');
  });
});
