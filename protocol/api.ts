/**
 * HTTP API shapes shared by the page and the lab-server. No DOM or Node types.
 * The learner is identified by the `vethlab_learner` cookie, which the server
 * issues (signed) on the first API call; an invented one is replaced by a new
 * identity. A session answers only to the learner who started it.
 */
import { z } from 'zod';

export const LEARNER_COOKIE = 'vethlab_learner';

export const LabId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'a lab id is lowercase letters, digits and -');

export const StartSessionRequest = z.object({ lab: LabId }).strict();
export type StartSessionRequest = z.infer<typeof StartSessionRequest>;

export const TerminalInfo = z.object({
  id: z.string(),
  /** The sandbox host this terminal opens a shell on, e.g. "sandbox" or "host-a". */
  host: z.string(),
});
export type TerminalInfo = z.infer<typeof TerminalInfo>;

export const SessionInfo = z.object({
  sessionId: z.string(),
  lab: z.string(),
  state: z.enum(['starting', 'ready', 'gone']),
  terminals: z.array(TerminalInfo),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;

/** A learner's name for the instructor's grade export (optional; PUT /api/me). */
export const SetNameRequest = z.object({ name: z.string().trim().min(1).max(80) }).strict();
export type SetNameRequest = z.infer<typeof SetNameRequest>;

/** The instructor signs in once with the token (never in a URL); the server answers with an HttpOnly cookie. */
export const INSTRUCTOR_SIGN_IN_PAGE = '/instructor';

/**
 * Why a request was refused: the page and scripts switch on these, never on
 * the message text (which is for people, and may change or be translated).
 */
export const ApiErrorCode = z.enum([
  'bad-request', // a malformed request line, target, header, cookie or body
  'bad-json', // the body is not JSON
  'too-large', // a body or header over its limit
  'bad-locale',
  'bad-format',
  'bad-origin', // a browser on another site
  'bad-method',
  'not-found', // no such endpoint
  'unknown-lab',
  'unknown-session',
  'unknown-task',
  'no-lab', // the session runs no lab
  'not-started', // the learner has not started this lab
  'forbidden', // someone else's session
  'instructor-only', // needs the instructor's sign-in or bearer token
  'staff-only', // needs an instructor's or assistant's sign-in (rooms)
  'unknown-room',
  'room-closed', // the room is closed or ended: no joins, no new sandboxes
  'room-full', // every seat of the room is taken
  'not-in-room', // the learner has not joined a room, or not this learner
  'sandbox-failed',
  'unavailable', // the store cannot be written
  'full', // the machine is full: retry, the learner keeps their place in line
  'rate-limited', // too many starts: retry after the retry-after header
  'internal',
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

/** Every non-2xx answer has this body: a message a person can act on, and a code a program can. */
export const ApiError = z.object({ error: z.string(), code: ApiErrorCode, position: z.number().int().optional() });
export type ApiError = z.infer<typeof ApiError>;
