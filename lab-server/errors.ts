/**
 * The one error type a request can end in: a code from protocol/api.ts (the
 * page switches on it), a message a person can act on, and the HTTP status
 * that code always has. Anything else thrown while serving is a bug and is
 * answered as `internal`.
 */
import type { ApiErrorCode } from '../protocol/api';

export const STATUS_OF: Record<ApiErrorCode, number> = {
  'bad-request': 400,
  'bad-json': 400,
  'too-large': 413,
  'bad-locale': 400,
  'bad-format': 400,
  'bad-origin': 403,
  'bad-method': 405,
  'not-found': 404,
  'unknown-lab': 404,
  'unknown-session': 404,
  'unknown-task': 404,
  'no-lab': 404,
  'not-started': 404,
  forbidden: 403,
  'instructor-only': 401,
  'staff-only': 401,
  'unknown-room': 404,
  'room-closed': 409,
  'room-full': 409,
  'not-in-room': 404,
  'sandbox-failed': 503,
  unavailable: 503,
  full: 503,
  'rate-limited': 429,
  internal: 500,
};

export class RequestError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** For `full` and `rate-limited`: when to ask again, and the place in line. */
    readonly retry?: { afterSec: number; position?: number },
  ) {
    super(message);
    this.name = 'RequestError';
  }

  get status(): number {
    return STATUS_OF[this.code];
  }
}
