/**
 * The recent output of one terminal, addressed by absolute byte offset, so a
 * page that reconnects can be sent exactly the bytes it missed. Holds at most
 * `capacity` bytes, dropping the oldest first.
 */
export class OutputRing {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Offset of the first byte still held. */
  start = 0;
  /** Offset just past the last byte written. */
  end = 0;

  constructor(readonly capacity: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.end += chunk.length;
    while (this.bytes > this.capacity) {
      const first = this.chunks[0]!;
      const excess = this.bytes - this.capacity;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
        this.start += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.bytes -= excess;
        this.start += excess;
      }
    }
  }

  /** What the ring holds, for saving: its first offset and bytes. */
  snapshot(): { start: number; bytes: Buffer } {
    return { start: this.start, bytes: Buffer.concat(this.chunks, this.bytes) };
  }

  /** Continues from a saved snapshot: offsets go on from where it ended. */
  static restore(capacity: number, start: number, bytes: Buffer): OutputRing {
    const ring = new OutputRing(capacity);
    ring.start = start;
    ring.end = start;
    ring.push(bytes);
    ring.start = Math.max(start, ring.start);
    return ring;
  }

  /** Can output continue seamlessly for a page that holds bytes up to `offset`? */
  holds(offset: number): boolean {
    return offset >= this.start && offset <= this.end;
  }

  /** The bytes from `offset` to the end (offset must be held). */
  since(offset: number): Buffer {
    if (!this.holds(offset)) throw new RangeError(`offset ${offset} outside [${this.start}, ${this.end}]`);
    const all = Buffer.concat(this.chunks, this.bytes);
    return all.subarray(offset - this.start);
  }

  /**
   * Where a replay to an empty screen should begin: the start of a line, so
   * the page does not begin mid-escape-sequence (unless nothing was dropped).
   */
  replayStart(): number {
    if (this.start === 0) return 0;
    const all = Buffer.concat(this.chunks, this.bytes);
    const nl = all.indexOf(0x0a);
    return nl === -1 ? this.end : this.start + nl + 1;
  }
}
