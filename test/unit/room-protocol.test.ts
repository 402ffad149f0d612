/** The workshop room protocol (protocol/room.ts, protocol/shadow.ts) and the room's exports. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CreateRoomRequest, DashboardClientMessage, DashboardServerMessage, JoinRoomRequest, RoomCode, RoomEvent } from '../../protocol/room';
import { ShadowClientMessage, ShadowServerMessage } from '../../protocol/shadow';
import { ServerMessage, TERMINAL_PROTOCOL_VERSION } from '../../protocol/terminal';
import { escapeHtml, roomGradesCsv } from '../../lab-server/rooms/room-report';

const room = { name: 'R', lessons: ['link'], startsAt: '2026-01-01T10:00:00.000Z', endsAt: '2026-01-01T12:00:00.000Z', seats: 5 };

describe('room protocol', () => {
  it('normalises join codes and refuses look-alikes and other shapes', () => {
    expect(RoomCode.parse(' abc234 ')).toBe('ABC234');
    for (const bad of ['ABC23', 'ABC2345', 'ABC0O1', 'ABCI1L', '../../', '']) expect(RoomCode.safeParse(bad).success, bad).toBe(false);
  });

  it('takes a display name as text: no control characters, bounded', () => {
    expect(JoinRoomRequest.safeParse({ code: 'ABC234', name: '<b>Eve</b>' }).success).toBe(true);
    for (const name of ['', ' ', 'a\x1b[31m', 'bell\x07', 'x'.repeat(41)]) expect(JoinRoomRequest.safeParse({ code: 'ABC234', name }).success, JSON.stringify(name)).toBe(false);
    expect(JoinRoomRequest.safeParse({ code: 'ABC234', name: 'Eve', admin: true }).success).toBe(false);
  });

  it('creates rooms with defaults, refusing an end before the start and unknown fields', () => {
    expect(CreateRoomRequest.parse(room)).toMatchObject({ faults: true, recordCommands: false, stuckMinutes: 10, stuckAttempts: 5 });
    expect(CreateRoomRequest.safeParse({ ...room, endsAt: room.startsAt }).success).toBe(false);
    expect(CreateRoomRequest.safeParse({ ...room, seats: 0 }).success).toBe(false);
    expect(CreateRoomRequest.safeParse({ ...room, lessons: ['../etc'] }).success).toBe(false);
    expect(CreateRoomRequest.safeParse({ ...room, owner: 'me' }).success).toBe(false);
  });

  it('never throws on arbitrary frames, and accepts only the known ones', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        DashboardClientMessage.safeParse(v);
        ShadowClientMessage.safeParse(v);
        return true;
      }),
    );
    expect(DashboardClientMessage.safeParse({ type: 'watch', room: 'abc234' }).success).toBe(true);
    expect(ShadowClientMessage.safeParse({ type: 'shadow', v: TERMINAL_PROTOCOL_VERSION, room: 'ABC234', learner: 'L-abcdefABCDEF', lab: 'link', cols: 80, rows: 24 }).success).toBe(true);
    expect(ShadowClientMessage.safeParse({ type: 'shadow', v: TERMINAL_PROTOCOL_VERSION, room: 'ABC234', learner: 'someone', lab: 'link', cols: 80, rows: 24 }).success).toBe(false);
  });

  it('carries room events to the learner on the terminal socket, and control to a shadow view', () => {
    const events: RoomEvent[] = [
      { kind: 'broadcast', message: 'hi', at: '2026-01-01T10:00:00.000Z' },
      { kind: 'watched', watchers: 2 },
      { kind: 'takeover', state: 'requested' },
      { kind: 'reset' },
    ];
    for (const event of events) expect(ServerMessage.safeParse({ type: 'room', event }).success).toBe(true);
    expect(ServerMessage.safeParse({ type: 'room', event: { kind: 'root' } }).success).toBe(false);
    expect(ShadowServerMessage.safeParse({ type: 'control', state: 'granted' }).success).toBe(true);
    expect(DashboardServerMessage.safeParse({ type: 'row', row: { learner: 'L-abcdefABCDEF', name: 'x', joinedAt: 'x', cells: {}, sandboxes: {}, flags: ['many-attempts'], watchers: 0, takeover: 'none' } }).success).toBe(true);
  });
});

describe('room exports', () => {
  it('escapes HTML and defuses spreadsheet formulas in names and evidence', () => {
    expect(escapeHtml(`<img src=x onerror="a('b')">&`)).toBe('&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;');
    const csv = roomGradesCsv({
      room: { code: 'ABC234', name: 'R', lessons: ['link'], startsAt: '', endsAt: '', seats: 1, members: 1, faults: true, recordCommands: false, stuckMinutes: 10, stuckAttempts: 5, state: 'open', joinPath: '' },
      members: [],
      labGrades: [],
      tasks: [{ learnerId: 'L-x', name: '=cmd|"/c calc"!A1', lab: 'link', task: 'run-ng1', attempts: 1, hints: 0, passedAt: '2026-01-01T10:00:00.000Z', evidence: [{ check: 'sandbox: container {"name":"ng1"}', facts: { pkts: 3 } }] }],
    });
    const line = csv.split('\n')[1]!;
    expect(line).toContain(`"'=cmd|""/c calc""!A1"`);
    expect(line).toContain('pkts=3');
  });
});
