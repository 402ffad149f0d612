/**
 * Workshop rooms against a real server, real sandboxes, real WebSockets:
 * who may do what (learners, assistants, the instructor), joining by code
 * (unknown, full, closed rooms refused; names are data, never markup), the
 * dashboard's pushed rows, shadowing (read-only, seen by the learner,
 * audited), take-over only with the learner's consent and marked in their
 * scrollback, help actions, grades with evidence, closing and reopening.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Grade } from '../../protocol/lab';
import type { LearnerRow, MyRoom, RoomGrades, RoomInfo } from '../../protocol/room';
import type { ServerMessage } from '../../protocol/terminal';
import { drawFaults } from '../../lab-server/labs/lab-service';
import { ROOT, startTestServer, type TestServer } from '../support/lab-server';
import { DashboardClient, Staff } from '../support/room-client';
import { Learner, type TerminalConnection } from '../support/terminal-client';

let server: TestServer;
let instructor: Staff;
let assistant: Staff;

const hour = 3_600_000;
const roomBody = (over: Record<string, unknown> = {}) => ({
  name: 'Friday networking',
  lessons: ['network-stack'],
  startsAt: new Date(Date.now() - 60_000).toISOString(),
  endsAt: new Date(Date.now() + 2 * hour).toISOString(),
  seats: 5,
  ...over,
});

beforeAll(async () => {
  server = await startTestServer({ VETHLAB_STARTS_PER_LEARNER: '40' });
  instructor = await Staff.signIn(server.url, server.instructorToken);
  assistant = await Staff.signIn(server.url, server.assistantToken);
});

afterAll(async () => {
  await server?.close();
});

async function join(code: string, name: string): Promise<{ learner: Learner; status: number; json: unknown }> {
  const learner = new Learner(server.url);
  const r = await learner.request('POST', '/api/rooms/join', { code, name });
  return { learner, ...r };
}

const roomEvents = (t: TerminalConnection) =>
  t.messages.filter((m): m is Extract<ServerMessage, { type: 'room' }> => m.type === 'room').map((m) => m.event);

describe('rooms: who may do what', () => {
  it('refuses room endpoints and sockets to learners, and instructor actions to assistants', async () => {
    const room = await instructor.createRoom(roomBody());
    const learner = new Learner(server.url);
    await learner.request('GET', '/api/sessions/none'); // gets a learner cookie
    for (const [method, path] of [
      ['GET', '/api/rooms'],
      ['POST', '/api/rooms'],
      ['GET', `/api/rooms/${room.code}`],
      ['GET', `/api/rooms/${room.code}/grades`],
      ['GET', `/api/rooms/${room.code}/audit`],
      ['POST', `/api/rooms/${room.code}/broadcast`],
      ['POST', `/api/rooms/${room.code}/close`],
    ] as const) {
      const r = await learner.request(method, path, method === 'POST' ? { message: 'hi' } : undefined);
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.json).toMatchObject({ code: 'staff-only' });
    }
    // The sockets: a learner's cookie (or none) is refused at the upgrade.
    await expect(DashboardClient.open(server.url, learner.cookie!, room.code)).rejects.toMatchObject({ status: 401 });
    await expect(new Staff(server.url).openShadow({ room: room.code, learner: 'L-AAAAAAAAAAAA', lab: 'network-stack' })).rejects.toMatchObject({ status: 401 });

    // Assistants view; they do not act.
    expect((await assistant.request('GET', `/api/rooms/${room.code}`)).status).toBe(200);
    for (const [path, body] of [
      ['/api/rooms', roomBody()],
      [`/api/rooms/${room.code}/broadcast`, { message: 'hi' }],
      [`/api/rooms/${room.code}/reset`, { learner: 'L-AAAAAAAAAAAA', lab: 'network-stack' }],
      [`/api/rooms/${room.code}/takeover`, { learner: 'L-AAAAAAAAAAAA', lab: 'network-stack' }],
      [`/api/rooms/${room.code}/end`, {}],
    ] as const) {
      const r = await assistant.request('POST', path, body);
      expect(r.status, path).toBe(403);
      expect(r.json).toMatchObject({ code: 'forbidden' });
    }
    expect((await assistant.request('GET', `/api/rooms/${room.code}/grades`)).status).toBe(403);

    // Bad input is a coded refusal, never a crash.
    expect((await instructor.request('POST', '/api/rooms', {})).json).toMatchObject({ code: 'bad-request' });
    expect((await instructor.request('POST', '/api/rooms', roomBody({ lessons: ['no-such-lab'] }))).json).toMatchObject({ code: 'unknown-lab' });
    expect((await instructor.request('POST', '/api/rooms', roomBody({ endsAt: new Date(0).toISOString() }))).json).toMatchObject({ code: 'bad-request' });
    expect((await instructor.request('GET', '/api/rooms/ZZZZZZ')).json).toMatchObject({ code: 'unknown-room' });
    expect((await instructor.request('GET', '/api/rooms/..%2F..')).status).toBe(404);
  });

  it('joins by code; unknown, full and closed rooms are refused; a name is data, never markup', async () => {
    const room = await instructor.createRoom(roomBody({ seats: 2 }));
    const first = await join(room.code.toLowerCase(), '=HYPERLINK("http://x")');
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ code: room.code, displayName: '=HYPERLINK("http://x")' } satisfies Partial<MyRoom>);
    const evil = await join(room.code, '<img src=x onerror=alert(1)>');
    expect(evil.status).toBe(200);
    const third = await join(room.code, 'Late');
    expect(third.status).toBe(409);
    expect(third.json).toMatchObject({ code: 'room-full' });
    // A member joining again keeps their seat.
    expect((await first.learner.request('POST', '/api/rooms/join', { code: room.code, name: 'Again' })).status).toBe(200);
    expect((await join('ZZZZZZ', 'Nobody')).json).toMatchObject({ code: 'unknown-room' });
    expect((await join('abc', 'Nobody')).json).toMatchObject({ code: 'bad-request' });
    expect((await join(room.code, 'bell\x07')).json).toMatchObject({ code: 'bad-request' });

    const closed = await instructor.createRoom(roomBody());
    await instructor.request('POST', `/api/rooms/${closed.code}/close`);
    const refused = await join(closed.code, 'Too late');
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'room-closed' });

    // The printable report escapes what learners typed.
    const report = await instructor.request('GET', `/api/rooms/${room.code}/report`);
    expect(report.status).toBe(200);
    expect(report.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    // The dashboard carries names as data (its page renders them as text):
    const dash = await instructor.openDashboard(room.code);
    const snapshot = await dash.waitFor(() => dash.messages.find((m) => m.type === 'snapshot'), 'snapshot');
    expect(snapshot.type === 'snapshot' && snapshot.rows.map((r) => r.name)).toEqual(['Again', '<img src=x onerror=alert(1)>']);
    dash.close();
    expect(report.text).not.toContain('<img');
    // A learner reads only their own room.
    const mine = await evil.learner.request('GET', '/api/rooms/mine');
    expect(mine.json).toMatchObject({ code: room.code, displayName: '<img src=x onerror=alert(1)>' });
    expect(JSON.stringify(mine.json)).not.toContain('Again');
  });
});

describe('rooms: a live workshop', () => {
  let room: RoomInfo;
  let ada: Learner;
  let bo: Learner;
  let adaTerm: TerminalConnection;
  let adaSession: string;
  let dash: DashboardClient;
  let adaId: string;
  const rowOf = (name: string) => [...dash.rows.values()].find((r) => r.name === name);
  const cell = (r: LearnerRow | undefined, task: string) => r?.cells[`network-stack/${task}`];

  it('pushes each learner’s progress to the dashboard as it happens', { timeout: 240_000 }, async () => {
    room = await instructor.createRoom(roomBody({ stuckAttempts: 2 }));
    ({ learner: ada } = await join(room.code, 'Ada'));
    ({ learner: bo } = await join(room.code, 'Bo'));
    dash = await instructor.openDashboard(room.code);
    await dash.waitFor(() => dash.rows.size === 2 || undefined, 'two rows');
    expect(cell(rowOf('Ada'), 'own-netns')).toMatchObject({ status: 'not-started' });
    adaId = rowOf('Ada')!.learner;

    const s = await ada.startSession('network-stack');
    adaSession = s.sessionId;
    adaTerm = await ada.openTerminal(s.sessionId);
    await adaTerm.waitForPrompt();
    await dash.waitFor(() => cell(rowOf('Ada'), 'own-netns')?.status !== 'not-started' || undefined, 'Ada started');
    // Two failed commands on the open task: attempts counted, the stuck flag raised (stuckAttempts 2).
    // Failed commands on the open task: each is an attempt; at stuckAttempts (2) the row is flagged.
    const current = () => rowOf('Ada')!.current!;
    await dash.waitFor(() => rowOf('Ada')!.current, 'a current task');
    expect(rowOf('Ada')!.flags).not.toContain('many-attempts');
    for (let i = 0; i < 2; i++) {
      const before = cell(rowOf('Ada'), current().task)!.attempts;
      await adaTerm.run('true');
      await dash.waitFor(() => cell(rowOf('Ada'), current().task)!.attempts > before || undefined, 'an attempt counted');
    }
    await dash.waitFor(() => rowOf('Ada')!.flags.includes('many-attempts') || undefined, 'stuck flag');
    adaTerm.type('ip netns add lab1 && ip netns exec lab1 ip link set lo up\r');
    await dash.waitFor(() => cell(rowOf('Ada'), 'own-netns')?.status === 'passed' || undefined, 'own-netns passed on the dashboard');
    expect(cell(rowOf('Bo'), 'own-netns')).toMatchObject({ status: 'not-started' });
    // The failing reason of an open task is on its cell.
    expect(cell(rowOf('Ada'), 'host-nginx')?.reason).toBeDefined();
  });

  it('shadows read-only, tells the learner, audits it; take-over only after the learner accepts, marked in their scrollback', { timeout: 120_000 }, async () => {
    const view = await assistant.openShadow({ room: room.code, learner: adaId, lab: 'network-stack' });
    await view.waitForMessage('ready');
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'watched' && e.watchers === 1), 10_000, 'watched');
    await dash.waitFor(() => rowOf('Ada')!.watchers === 1 || undefined, 'watchers on the row');
    adaTerm.type('echo shadow-$((6*7))\r');
    await view.waitFor(() => view.output.includes('shadow-42') || undefined, 'live output in the shadow view');

    // Read-only: input is refused and never reaches the shell.
    view.send({ type: 'input', data: 'echo pwned-$((1+1))\r' });
    await view.waitForMessage('error', (m) => m.code === 'forbidden');
    expect(await adaTerm.run('echo after')).toContain('after');
    expect(adaTerm.output).not.toContain('pwned-2');

    // A learner cannot shadow anyone, nor accept a take-over nobody asked for.
    await expect(DashboardClient.open(server.url, ada.cookie!, room.code)).rejects.toMatchObject({ status: 401 });
    expect((await bo.request('POST', '/api/rooms/mine/takeover', { accept: true })).json).toMatchObject({ code: 'not-in-room' });

    const own = await instructor.openShadow({ room: room.code, learner: adaId, lab: 'network-stack' });
    await own.waitForMessage('ready');
    expect((await instructor.request('POST', `/api/rooms/${room.code}/takeover`, { learner: adaId, lab: 'network-stack' })).status).toBe(200);
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'takeover' && e.state === 'requested'), 10_000, 'take-over asked');
    await own.waitForMessage('control', (m) => m.state === 'requested');
    own.send({ type: 'input', data: 'echo early-$((3+3))\r' });
    await own.waitFor(() => own.messages.filter((m) => m.type === 'error' && m.code === 'forbidden').length === 1 || undefined, 'refused before consent');
    expect((await ada.request('POST', '/api/rooms/mine/takeover', { accept: true })).json).toEqual({ state: 'granted' });
    await own.waitForMessage('control', (m) => m.state === 'granted');
    own.send({ type: 'input', data: 'echo from-$((2+3))-instructor\r' });
    await adaTerm.waitForText(/from-5-instructor/);
    expect(adaTerm.output).toContain('[instructor typing]');
    expect(adaTerm.output).not.toContain('early-6');
    // The assistant's view still cannot type.
    view.send({ type: 'input', data: 'echo assist\r' });
    await view.waitFor(() => view.messages.filter((m) => m.type === 'error' && m.code === 'forbidden').length === 2 || undefined, 'assistant still read-only');

    const audit = (await assistant.request('GET', `/api/rooms/${room.code}/audit`)).json as { actor: string; action: string; learner?: string }[];
    expect(audit.filter((a) => a.learner === adaId).map((a) => `${a.actor}:${a.action}`)).toEqual(
      expect.arrayContaining(['assistant:shadow', 'instructor:shadow', 'instructor:takeover-request', 'learner:takeover']),
    );
    view.close();
    own.close();
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'takeover' && e.state === 'none'), 10_000, 'take-over over when the view closed');
  });

  it('broadcasts, pushes a hint, and exports grades with evidence that match the learner’s own', { timeout: 120_000 }, async () => {
    expect((await instructor.request('POST', `/api/rooms/${room.code}/broadcast`, { message: 'Break in 5 minutes <b>' })).json).toEqual({ sent: 2 });
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'broadcast' && e.message === 'Break in 5 minutes <b>'), 10_000, 'broadcast');
    expect(((await bo.request('GET', '/api/rooms/mine')).json as MyRoom).lastBroadcast?.message).toBe('Break in 5 minutes <b>');

    expect((await instructor.request('POST', `/api/rooms/${room.code}/hint`, { learner: adaId, lab: 'network-stack', task: 'host-nginx' })).json).toEqual({ sent: 1 });
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'hint' && e.task === 'host-nginx'), 10_000, 'hint');
    await dash.waitFor(() => cell(rowOf('Ada'), 'host-nginx')?.hints === 1 || undefined, 'hint on the dashboard');

    // A check run after a command may count an attempt at any moment: compare the export with the learner's
    // own numbers read just before and just after it, once those two agree.
    type Own = { tasks: { id: string; attempts: number; hintsUsed: number }[] };
    const own = async () => (await ada.request('GET', `/api/sessions/${adaSession}/lab`)).json as Own;
    let grades!: RoomGrades & { labGrades: Grade[] };
    let status!: Own;
    for (let i = 0; i < 10; i++) {
      const before = await own();
      grades = (await instructor.request('GET', `/api/rooms/${room.code}/grades`)).json as RoomGrades & { labGrades: Grade[] };
      status = await own();
      if (JSON.stringify(before) === JSON.stringify(status)) break;
    }
    const mineGrade = (await ada.request('GET', '/api/labs/network-stack/grade')).json as Grade;
    const theirs = grades.labGrades.find((g) => g.learnerId === adaId)!;
    expect(theirs).toMatchObject({ tasksPassed: mineGrade.tasksPassed, hintsUsed: mineGrade.hintsUsed, score: mineGrade.score, name: 'Ada' });
    for (const t of status.tasks) {
      const g = grades.tasks.find((x) => x.learnerId === adaId && x.task === t.id)!;
      expect({ task: t.id, attempts: g.attempts, hints: g.hints }).toEqual({ task: t.id, attempts: t.attempts, hints: t.hintsUsed });
    }
    const passed = grades.tasks.find((x) => x.learnerId === adaId && x.task === 'own-netns')!;
    expect(passed.passedAt).toBeDefined();
    expect(passed.evidence?.map((e) => e.check).join('\n')).toMatch(/netns/);
    const csv = (await instructor.request('GET', `/api/rooms/${room.code}/grades?format=csv`)).text;
    expect(csv.split('\n')[0]).toBe('learnerId,name,lab,task,passedAt,attempts,hints,evidence');
    expect(csv).toContain(`${adaId},Ada,network-stack,own-netns,${passed.passedAt}`);
    // `npm run lab -- grade --room CODE --csv` reads the same store and prints the same file.
    const cli = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/lab.ts'), 'grade', '--room', room.code, '--csv'], {
      cwd: ROOT,
      env: { ...process.env, VETHLAB_DATA_DIR: server.dataDir },
      encoding: 'utf8',
    });
    expect(cli).toBe(csv);
  });

  it('resets one learner’s lab (their page follows), closes the room (sandboxes freed, progress kept) and reopens it', { timeout: 180_000 }, async () => {
    expect((await instructor.request('POST', `/api/rooms/${room.code}/reset`, { learner: adaId, lab: 'network-stack' })).status).toBe(200);
    await adaTerm.waitFor(() => roomEvents(adaTerm).find((e) => e.kind === 'reset'), 10_000, 'reset told');
    await adaTerm.waitForClose(30_000);
    await dash.waitFor(() => cell(rowOf('Ada'), 'own-netns')?.status !== 'passed' || undefined, 'reset on the dashboard');
    const fresh = await ada.startSession('network-stack');
    expect(fresh.sessionId).not.toBe(adaSession);

    expect(((await instructor.request('POST', `/api/rooms/${room.code}/close`)).json as RoomInfo).state).toBe('closed');
    expect((await ada.request('GET', `/api/sessions/${fresh.sessionId}`)).status).toBe(404);
    const refused = await ada.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'room-closed' });
    // Progress is kept: the hint is still counted.
    const kept = (await instructor.request('GET', `/api/rooms/${room.code}/grades`)).json as RoomGrades;
    expect(kept.tasks.find((t) => t.learnerId === adaId && t.task === 'host-nginx')?.hints).toBe(1);
    expect(((await instructor.request('POST', `/api/rooms/${room.code}/reopen`)).json as RoomInfo).state).toBe('open');
    const again = await ada.request('POST', '/api/sessions', { lab: 'network-stack' });
    expect(again.status).toBe(201);
    expect(((await instructor.request('POST', `/api/rooms/${room.code}/end`)).json as RoomInfo).state).toBe('ended');
    expect((await ada.request('GET', `/api/sessions/${(again.json as { sessionId: string }).sessionId}`)).status).toBe(404);
    dash.close();
  });
});

describe('rooms: settings', () => {
  it('turns randomized faults off for its learners and records command lines only when on, announced', { timeout: 180_000 }, async () => {
    const room = await instructor.createRoom(roomBody({ lessons: ['snat'], faults: false, recordCommands: true }));
    const { learner } = await join(room.code, 'Rec');
    const id = server.rooms.rooms.members(room.code)[0]!.learner;
    // Outside the room this learner's seed draws faults for lesson 6; in it, none.
    expect(drawFaults(server.labs.catalog.get('snat')!, id).length).toBeGreaterThan(0);
    const s = await learner.startSession('snat');
    expect(server.store.labProgress(id, 'snat')!.faults).toEqual([]);
    const term = await learner.openTerminal(s.sessionId);
    await term.waitFor(() => roomEvents(term).find((e) => e.kind === 'recording' && e.on), 10_000, 'recording announced');
    await term.waitForPrompt();
    await term.run('echo recorded-$((40+2))');
    const grades = (await instructor.request('GET', `/api/rooms/${room.code}/grades`)).json as RoomGrades;
    const pseudonym = grades.members[0]!.learnerId;
    expect(grades.commands?.[pseudonym]?.map((c) => c.line).join('\n')).toContain('echo recorded-$((40+2))');
    await term.close();
    await instructor.request('POST', `/api/rooms/${room.code}/end`);
    // A room that does not record keeps no command lines.
    const quiet = await instructor.createRoom(roomBody());
    expect(((await instructor.request('GET', `/api/rooms/${quiet.code}/grades`)).json as RoomGrades).commands).toBeUndefined();
    await instructor.request('POST', `/api/rooms/${quiet.code}/end`);
  });

  it('sizes the warm pool from the seats of rooms about to start, and gives them back when they close', async () => {
    const base = server.pool.target;
    const later = await instructor.createRoom(roomBody({ seats: 7, startsAt: new Date(Date.now() + 5 * hour).toISOString(), endsAt: new Date(Date.now() + 6 * hour).toISOString() }));
    expect(server.pool.target).toBe(base);
    const soon = await instructor.createRoom(roomBody({ seats: 1, startsAt: new Date(Date.now() + 5 * 60_000).toISOString() }));
    expect(server.pool.target).toBe(base + 1);
    await instructor.request('POST', `/api/rooms/${soon.code}/close`);
    expect(server.pool.target).toBe(base);
    await instructor.request('POST', `/api/rooms/${later.code}/end`);
  });
});

