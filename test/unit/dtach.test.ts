/** dtach's client framing: keystrokes become 10-byte MSG_PUSH packets of at most 8 bytes each, in order. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pushPackets } from '../../lab-server/sandbox/dtach-shell';

describe('dtach push packets', () => {
  it('carry every byte, in order, eight at most to a packet', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
        const out = pushPackets(Buffer.from(bytes));
        expect(out.length % 10).toBe(0);
        const back: number[] = [];
        for (let i = 0; i < out.length; i += 10) {
          expect(out[i]).toBe(0); // MSG_PUSH
          const len = out[i + 1]!;
          expect(len).toBeGreaterThan(0);
          expect(len).toBeLessThanOrEqual(8);
          back.push(...out.subarray(i + 2, i + 2 + len));
        }
        expect(Buffer.from(back).equals(Buffer.from(bytes))).toBe(true);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
