/**
 * Admission's start limits: per learner, and per network address (a client
 * that drops its cookie gets a new identity, so the address is what bounds
 * one machine).
 */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../lab-server/sessions/admission';

const limits = { maxSandboxes: 100, minFreeMemoryBytes: 0, perLearnerStarts: 3, perAddressStarts: 4, perLearnerWindowMs: 600_000 };

describe('admission start limits', () => {
  it('limits one address however many identities it takes', () => {
    const a = new Admission(limits, () => 1e12);
    for (let i = 0; i < 4; i++) {
      expect(a.check(`learner-${i}`, 1, 0, '10.0.0.1', 1000)).toEqual({ ok: true });
      a.started(`learner-${i}`, '10.0.0.1', 1000);
    }
    expect(a.check('learner-new', 1, 0, '10.0.0.1', 2000)).toMatchObject({ ok: false, reason: 'rate-limited', retryAfterSec: 599 });
    // Another address is not affected, and the window moves on.
    expect(a.check('learner-new', 1, 0, '10.0.0.2', 2000)).toEqual({ ok: true });
    expect(a.check('learner-new', 1, 0, '10.0.0.1', 601_001)).toEqual({ ok: true });
  });

  it('limits one learner across addresses', () => {
    const a = new Admission(limits, () => 1e12);
    for (let i = 0; i < 3; i++) {
      expect(a.check('l', 1, 0, `10.0.0.${i}`, 1000)).toEqual({ ok: true });
      a.started('l', `10.0.0.${i}`, 1000);
    }
    expect(a.check('l', 1, 0, '10.0.0.9', 1000)).toMatchObject({ ok: false, reason: 'rate-limited' });
  });
});
