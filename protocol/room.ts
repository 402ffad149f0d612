/**
 * Workshop rooms, shared by the pages (join form, dashboard, learner banner)
 * and the lab-server (lab-server/rooms): the room's HTTP bodies, the live
 * dashboard's WebSocket frames, and the room events a learner's terminal
 * socket carries. No DOM or Node types. Learners appear here only by their
 * pseudonym (never their id, which is half of their cookie).
 */
import { z } from 'zod';
import { LabId } from './api';
import { Reason, TaskStatusValue } from './lab';

/** Join codes: 6 letters and digits without look-alikes (no 0/O, 1/I/L). */
export const ROOM_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const RoomCode = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/, 'a join code is 6 letters and digits');
export type RoomCode = z.infer<typeof RoomCode>;

/** The page learners open to join (the link the instructor hands out carries only the join code). */
export const WORKSHOP_PAGE = '/workshop';
/** The instructor's and assistants' page. */
export const DASHBOARD_PAGE = '/dashboard';
export const DASHBOARD_WS_PATH = '/api/rooms/live';
export const SHADOW_WS_PATH = '/api/rooms/shadow';

export const Pseudonym = z.string().regex(/^L-[A-Za-z0-9_-]{12}$/, 'a learner is named by their pseudonym L-...');
export const DisplayName = z
  .string()
  .trim()
  .min(1)
  .max(40)
  // No control characters: a name is shown in pages, CSVs and terminals.
  .regex(/^[^\x00-\x1f\x7f]+$/, 'a name has no control characters');

const IsoTime = z.string().datetime();

export const CreateRoomRequest = z
  .object({
    name: z.string().trim().min(1).max(80),
    lessons: z.array(LabId).min(1).max(20),
    startsAt: IsoTime,
    endsAt: IsoTime,
    seats: z.number().int().min(1).max(200),
    /** Draw each learner's randomized faults (the labs that have them); off: nobody gets faults. */
    faults: z.boolean().default(true),
    /** Keep each learner's command lines for the grade report (announced to learners). */
    recordCommands: z.boolean().default(false),
    /** Stuck after this many minutes without a task passed... */
    stuckMinutes: z.number().int().min(1).max(240).default(10),
    /** ...or this many failed attempts at the current task. */
    stuckAttempts: z.number().int().min(1).max(100).default(5),
  })
  .strict()
  .refine((r) => Date.parse(r.endsAt) > Date.parse(r.startsAt), { message: 'endsAt must be after startsAt', path: ['endsAt'] });
export type CreateRoomRequest = z.input<typeof CreateRoomRequest>;

export const RoomState = z.enum(['open', 'closed', 'ended']);
export type RoomState = z.infer<typeof RoomState>;

export const RoomInfo = z.object({
  code: RoomCode,
  name: z.string(),
  lessons: z.array(z.string()),
  startsAt: z.string(),
  endsAt: z.string(),
  seats: z.number().int(),
  members: z.number().int(),
  faults: z.boolean(),
  recordCommands: z.boolean(),
  stuckMinutes: z.number().int(),
  stuckAttempts: z.number().int(),
  state: RoomState,
  /** Path of the join page with the code (relative: the page adds its origin). */
  joinPath: z.string(),
});
export type RoomInfo = z.infer<typeof RoomInfo>;

export const JoinRoomRequest = z.object({ code: RoomCode, name: DisplayName }).strict();
export type JoinRoomRequest = z.infer<typeof JoinRoomRequest>;

/** What a learner sees of their room. */
export const MyRoom = z.object({
  code: RoomCode,
  name: z.string(),
  lessons: z.array(z.string()),
  endsAt: z.string(),
  state: RoomState,
  recordCommands: z.boolean(),
  displayName: z.string(),
  lastBroadcast: z.object({ message: z.string(), at: z.string() }).optional(),
});
export type MyRoom = z.infer<typeof MyRoom>;

export const BroadcastRequest = z.object({ message: z.string().trim().min(1).max(500) }).strict();
export const LearnerLabRequest = z.object({ learner: Pseudonym, lab: LabId }).strict();
/** A hint to one learner, or (no learner) to everyone in the room still on that task. */
export const PushHintRequest = z.object({ learner: Pseudonym.optional(), lab: LabId, task: z.string().min(1).max(64) }).strict();
/** More time for one learner's sandboxes, or (no learner) for the room. */
export const ExtendRequest = z.object({ learner: Pseudonym.optional(), minutes: z.number().int().min(1).max(480) }).strict();
export const TakeoverAnswer = z.object({ accept: z.boolean() }).strict();

export const StuckFlag = z.enum(['no-progress', 'many-attempts', 'sandbox-gone']);
export type StuckFlag = z.infer<typeof StuckFlag>;

/** One learner x task cell of the dashboard. */
export const Cell = z.object({
  status: z.union([TaskStatusValue, z.literal('not-started')]),
  reason: Reason.optional(),
  attempts: z.number().int(),
  hints: z.number().int(),
  passedAt: z.string().optional(),
});
export type Cell = z.infer<typeof Cell>;

/** One learner's row: cells keyed "lab/task". */
export const LearnerRow = z.object({
  learner: Pseudonym,
  name: z.string(),
  joinedAt: z.string(),
  cells: z.record(z.string(), Cell),
  /** The task they are on (first open one of their most recent lab) and since when. */
  current: z.object({ lab: z.string(), task: z.string(), since: z.string() }).optional(),
  /** Their sandbox per lab: live, gone (died) or none. */
  sandboxes: z.record(z.string(), z.enum(['live', 'gone'])),
  flags: z.array(StuckFlag),
  watchers: z.number().int(),
  takeover: z.enum(['none', 'requested', 'granted']),
});
export type LearnerRow = z.infer<typeof LearnerRow>;

export const AuditEntry = z.object({
  at: z.string(),
  /** Who did it: staff, or the learner (accepting or declining a take-over). */
  actor: z.enum(['instructor', 'assistant', 'learner']),
  action: z.string(),
  learner: z.string().optional(),
  detail: z.string().optional(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/** Dashboard socket, page to server: which room to watch (sign-in cookie decides the role). */
export const DashboardClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('watch'), room: RoomCode }),
  z.object({ type: z.literal('ping'), t: z.number() }),
]);
export type DashboardClientMessage = z.infer<typeof DashboardClientMessage>;

/** Dashboard socket, server to page: one snapshot, then a row whenever that learner changes. */
export const DashboardServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('snapshot'),
    room: RoomInfo,
    role: z.enum(['instructor', 'assistant']),
    rows: z.array(LearnerRow),
    audit: z.array(AuditEntry),
  }),
  z.object({ type: z.literal('row'), row: LearnerRow }),
  z.object({ type: z.literal('room'), room: RoomInfo }),
  z.object({ type: z.literal('audit'), entry: AuditEntry }),
  z.object({ type: z.literal('pong'), t: z.number() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string(), fatal: z.boolean() }),
]);
export type DashboardServerMessage = z.infer<typeof DashboardServerMessage>;

/** What the room tells a learner's page (over their terminal socket). */
export const RoomEvent = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('broadcast'), message: z.string(), at: z.string() }),
  z.object({ kind: z.literal('hint'), lab: z.string(), task: z.string(), text: z.record(z.string(), z.string()) }),
  z.object({ kind: z.literal('watched'), watchers: z.number().int() }),
  z.object({ kind: z.literal('takeover'), state: z.enum(['requested', 'granted', 'none']) }),
  /** The instructor started this lab over: the page follows to the new sandbox. */
  z.object({ kind: z.literal('reset') }),
  z.object({ kind: z.literal('extended'), until: z.string() }),
  z.object({ kind: z.literal('recording'), on: z.boolean() }),
  z.object({ kind: z.literal('ended'), message: z.string() }),
]);
export type RoomEvent = z.infer<typeof RoomEvent>;

export const EvidenceItem = z.object({ check: z.string(), facts: z.record(z.string(), z.number()) });
export type EvidenceItem = z.infer<typeof EvidenceItem>;

/** Per learner and task, with the facts the checker saw at the moment it passed. */
export const TaskGrade = z.object({
  learnerId: z.string(),
  name: z.string(),
  lab: z.string(),
  task: z.string(),
  passedAt: z.string().optional(),
  attempts: z.number().int(),
  hints: z.number().int(),
  /** What the checker saw when it passed: each assertion that held, and the facts (counters) it read. */
  evidence: z.array(EvidenceItem).optional(),
});
export type TaskGrade = z.infer<typeof TaskGrade>;

export const RoomGrades = z.object({
  room: RoomInfo,
  members: z.array(z.object({ learnerId: z.string(), name: z.string(), joinedAt: z.string() })),
  tasks: z.array(TaskGrade),
  /** Command lines per learner, only when the room recorded them. */
  commands: z.record(z.string(), z.array(z.object({ at: z.string(), lab: z.string(), line: z.string() }))).optional(),
});
export type RoomGrades = z.infer<typeof RoomGrades>;
