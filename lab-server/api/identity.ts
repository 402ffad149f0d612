/**
 * Who is asking: learners and the instructor. The server issues every
 * learner cookie (`<id>.<mac>`, HMAC-SHA256 with a secret kept in the data
 * folder), so an invented cookie is refused and its holder gets a new
 * identity; the store and the sandboxes' labels know only the id, never the
 * cookie. The instructor signs in once with the token (compared in constant
 * time) and gets a signed, expiring cookie; scripts send the token as a
 * bearer header. Grade exports name learners by a pseudonym derived from the
 * id, which cannot be turned back into a cookie.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const INSTRUCTOR_COOKIE = 'vethlab_instructor';
/** Who runs a workshop: the instructor (everything), assistants (view and shadow only). */
export type StaffRole = 'instructor' | 'assistant';
/** An instructor sign-in lasts a working day. */
export const INSTRUCTOR_SESSION_MS = 12 * 3_600_000;

const LEARNER_ID = /^[A-Za-z0-9_-]{22}$/;
const MAC_CHARS = 32;

function equalText(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual never throws and length leaks nothing.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** The server's signing secret: made once, kept (0600) in the data folder, so cookies survive a restart. */
export function loadOrCreateSecret(file: string): Buffer {
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    if (text.length >= 43) return Buffer.from(text, 'base64url');
  }
  const secret = randomBytes(32);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, secret.toString('base64url') + '\n', { mode: 0o600 });
  return secret;
}

export class Identity {
  constructor(
    private readonly secret: Buffer,
    private readonly instructorToken: string,
  ) {}

  private mac(purpose: string, value: string): string {
    return createHmac('sha256', this.secret).update(`${purpose}\0${value}`).digest('base64url').slice(0, MAC_CHARS);
  }

  /** A new learner: their id (what the server stores) and the cookie value that proves it. */
  newLearner(): { id: string; cookie: string } {
    const id = randomBytes(16).toString('base64url');
    return { id, cookie: `${id}.${this.mac('learner', id)}` };
  }

  /** The learner id a cookie value proves, or undefined for anything the server did not issue. */
  learnerOf(cookie: string | undefined): string | undefined {
    if (!cookie || cookie.length !== 22 + 1 + MAC_CHARS) return undefined;
    const id = cookie.slice(0, 22);
    if (!LEARNER_ID.test(id) || cookie[22] !== '.') return undefined;
    return equalText(cookie.slice(23), this.mac('learner', id)) ? id : undefined;
  }

  /** A stable name for a learner in exports: not their id, and no way back to their cookie. */
  pseudonym(learnerId: string): string {
    return 'L-' + this.mac('pseudonym', learnerId).slice(0, 12);
  }

  /** Is this the instructor token? (constant time) */
  isInstructorToken(presented: string | undefined): boolean {
    return presented !== undefined && presented.length > 0 && equalText(presented, this.instructorToken);
  }

  /** The instructor cookie value after a sign-in: an expiry and its MAC, not the token. */
  instructorCookie(now = Date.now()): string {
    const until = String(now + INSTRUCTOR_SESSION_MS);
    return `${until}.${this.mac(this.instructorPurpose(), until)}`;
  }

  isInstructorCookie(value: string | undefined, now = Date.now()): boolean {
    const m = value ? /^(\d{1,16})\.([A-Za-z0-9_-]+)$/.exec(value) : null;
    if (!m) return false;
    return equalText(m[2]!, this.mac(this.instructorPurpose(), m[1]!)) && Number(m[1]) > now;
  }

  /** A new token signs every instructor out: their cookies were made for the old one. */
  private instructorPurpose(): string {
    return `instructor\0${this.instructorToken}`;
  }

  /**
   * The assistants' sign-in token (view and shadow only): derived from the
   * instructor token, so a new instructor token also retires it. The
   * instructor reads it on the signed-in /instructor page.
   */
  assistantToken(): string {
    return 'a-' + this.mac(`assistant-token\0${this.instructorToken}`, 'assistant');
  }

  /** Who a sign-in token makes its holder (constant time), if anyone. */
  roleOfToken(presented: string | undefined): StaffRole | undefined {
    if (presented === undefined || presented.length === 0) return undefined;
    if (equalText(presented, this.instructorToken)) return 'instructor';
    if (equalText(presented, this.assistantToken())) return 'assistant';
    return undefined;
  }

  /** A sign-in cookie for the role: an expiry and its MAC under the role's purpose. */
  staffCookie(role: StaffRole, now = Date.now()): string {
    if (role === 'instructor') return this.instructorCookie(now);
    const until = String(now + INSTRUCTOR_SESSION_MS);
    return `${until}.${this.mac(`assistant\0${this.instructorToken}`, until)}`;
  }

  roleOfCookie(value: string | undefined, now = Date.now()): StaffRole | undefined {
    if (this.isInstructorCookie(value, now)) return 'instructor';
    const m = value ? /^(\d{1,16})\.([A-Za-z0-9_-]+)$/.exec(value) : null;
    if (!m) return undefined;
    return equalText(m[2]!, this.mac(`assistant\0${this.instructorToken}`, m[1]!)) && Number(m[1]) > now ? 'assistant' : undefined;
  }
}
