import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutputRing } from '../../lab-server/terminal/output-ring';

describe('OutputRing', () => {
  it('holds exactly the last `capacity` bytes of what was written, by absolute offset', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 60 }), (capacity, chunks) => {
        const ring = new OutputRing(capacity);
        const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
        for (const c of chunks) ring.push(Buffer.from(c));
        expect(ring.end).toBe(all.length);
        expect(ring.end - ring.start).toBe(Math.min(capacity, all.length));
        for (let off = ring.start; off <= ring.end; off++) {
          expect(ring.since(off).equals(all.subarray(off))).toBe(true);
        }
        expect(ring.holds(ring.start - 1)).toBe(false);
        expect(ring.holds(ring.end + 1)).toBe(false);
      }),
    );
  });

  it('starts a replay to an empty screen at a line start once bytes were dropped', () => {
    const ring = new OutputRing(10);
    ring.push(Buffer.from('abcdef\nghijkl\nmn'));
    // Held: the last 10 bytes, "\nghijkl\nmn"; the replay starts after their first newline.
    const from = ring.replayStart();
    expect(ring.since(from).toString()).toBe('ghijkl\nmn');
    const fresh = new OutputRing(100);
    fresh.push(Buffer.from('no newline yet'));
    expect(fresh.replayStart()).toBe(0);
  });

  it('refuses offsets it no longer holds', () => {
    const ring = new OutputRing(4);
    ring.push(Buffer.from('12345678'));
    expect(() => ring.since(2)).toThrow(RangeError);
  });
});
