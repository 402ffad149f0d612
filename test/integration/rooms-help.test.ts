/**
 * Workshop help at scale against a real server and real sandboxes: a hint
 * to everyone still on a task, more time for one learner, and the "sandbox
 * gone" flag when a learner's sandbox dies under them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionInfo } from '../../protocol/api';
import type { RoomInfo } from '../../protocol/room';
import type { ServerMessage } from '../../protocol/terminal';
import { startTestServer, type TestServer } from '../support/lab-server';
import { Staff, type DashboardClient } from '../support/room-client';
import { Learner, type TerminalConnection } from '../support/terminal-client';

let server: TestServer;
let instructor: Staff;

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_STARTS_PER_LEARNER: '40' });
  instructor = await Staff.signIn(server.url, server.instructorToken);
});

afterAll(async () => {
  await server?.close();
});

const roomEvents = (t: TerminalConnection) =>
  t.messages.filter((m): m is Extract<ServerMessage, { type: 'room' }> => m.type === 'room').map((m) => m.event);

describe('rooms: help at scale', () => {
  let room: RoomInfo;
  let dash: DashboardClient;
  const learners: { learner: Learner; session: SessionInfo; term: TerminalConnection }[] = [];

  it('pushes a hint to everyone still on a task, and only to them', { timeout: 240_000 }, async () => {
    room = await instructor.createRoom({
      name: 'Help',
      lessons: ['network-stack'],
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      seats: 3,
    });
    dash = await instructor.openDashboard(room.code);
    for (const name of ['One', 'Two']) {
      const learner = new Learner(server.url);
      expect((await learner.request('POST', '/api/rooms/join', { code: room.code, name })).status).toBe(200);
      const session = await learner.startSession('network-stack');
      const term = await learner.openTerminal(session.sessionId);
      await term.waitForPrompt();
      learners.push({ learner, session, term });
    }
    // One passes own-netns; Two is still on it.
    learners[0]!.term.type('ip netns add lab1 && ip netns exec lab1 ip link set lo up\r');
    await dash.waitFor(() => [...dash.rows.values()].find((r) => r.name === 'One')?.cells['network-stack/own-netns']?.status === 'passed' || undefined, 'One passed');
    expect((await instructor.request('POST', `/api/rooms/${room.code}/hint`, { lab: 'network-stack', task: 'own-netns' })).json).toEqual({ sent: 1 });
    await learners[1]!.term.waitFor(() => roomEvents(learners[1]!.term).find((e) => e.kind === 'hint' && e.task === 'own-netns'), 10_000, 'hint to Two');
    await dash.waitFor(() => [...dash.rows.values()].find((r) => r.name === 'Two')?.cells['network-stack/own-netns']?.hints === 1 || undefined, 'hint counted');
    expect(roomEvents(learners[0]!.term).some((e) => e.kind === 'hint')).toBe(false);
  });

  it('gives one learner more time', async () => {
    const { learner, session, term } = learners[0]!;
    const before = Date.parse(session.expiresAt);
    const pseudonym = [...dash.rows.values()].find((r) => r.name === 'One')!.learner;
    expect((await instructor.request('POST', `/api/rooms/${room.code}/extend`, { learner: pseudonym, minutes: 90 })).status).toBe(200);
    await term.waitFor(() => roomEvents(term).find((e) => e.kind === 'extended'), 10_000, 'extended');
    const after = (await learner.request('GET', `/api/sessions/${session.sessionId}`)).json as SessionInfo;
    expect(Date.parse(after.expiresAt)).toBeGreaterThan(before + 60 * 60_000);
  });

  it('flags a learner whose sandbox died', { timeout: 120_000 }, async () => {
    const { session } = learners[1]!;
    const sandbox = server.sessions.find(session.sessionId)!.hosts.values().next().value!;
    expect([...dash.rows.values()].find((r) => r.name === 'Two')!.flags).not.toContain('sandbox-gone');
    await server.engine.docker.getContainer(sandbox.containerId).kill();
    await dash.waitFor(() => [...dash.rows.values()].find((r) => r.name === 'Two')!.flags.includes('sandbox-gone') || undefined, 'sandbox-gone flag');
    dash.close();
    for (const l of learners) await l.term.close();
    await instructor.request('POST', `/api/rooms/${room.code}/end`);
  });
});
