/**
 * HTTP API shapes shared by the page and the lab-server. No DOM or Node types.
 * The learner is identified by the `vethlab_learner` cookie, which the server
 * sets on the first API call; a session answers only to the learner who
 * started it.
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

/** Every non-2xx answer has this body: a message a person can act on. */
export const ApiError = z.object({ error: z.string(), code: z.string() });
export type ApiError = z.infer<typeof ApiError>;
