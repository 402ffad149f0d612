/**
 * Shadowing a learner's terminal from the workshop dashboard: the terminal
 * protocol (protocol/terminal.ts) with another first frame. The viewer names
 * the room, the learner (pseudonym) and the lab instead of a session; the
 * server answers `ready` and replays output exactly as for the learner's own
 * page, then streams it live. Read-only: `input` is refused unless the
 * learner accepted a take-over (then `control` says so, and what the
 * instructor types is marked in the learner's scrollback). No DOM or Node types.
 */
import { z } from 'zod';
import { LabId } from './api';
import { ClientMessage, MAX_COLS, MAX_ROWS, ServerMessage, TERMINAL_PROTOCOL_VERSION } from './terminal';
import { Pseudonym, RoomCode } from './room';

export const ShadowHello = z.object({
  type: z.literal('shadow'),
  v: z.literal(TERMINAL_PROTOCOL_VERSION),
  room: RoomCode,
  learner: Pseudonym,
  lab: LabId,
  terminalId: z.string().regex(/^[a-z0-9-]{1,32}$/).optional(),
  lastSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  cols: z.number().int().min(2).max(MAX_COLS),
  rows: z.number().int().min(1).max(MAX_ROWS),
});
export type ShadowHello = z.infer<typeof ShadowHello>;

/** After the hello: the terminal's own frames (resize is accepted and ignored: the learner's screen decides the size). */
export const ShadowClientMessage = z.union([ShadowHello, ClientMessage]);
export type ShadowClientMessage = z.infer<typeof ShadowClientMessage>;

export const ShadowServerMessage = z.union([
  ServerMessage,
  /** Whether the viewer may type (the learner accepted a take-over), and whether the viewer is the instructor. */
  z.object({ type: z.literal('control'), state: z.enum(['none', 'requested', 'granted']) }),
]);
export type ShadowServerMessage = z.infer<typeof ShadowServerMessage>;
