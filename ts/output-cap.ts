/**
 * Collects a stream into memory keeping at most `maxBytes`: the first half and the last half,
 * with an exact count of the bytes dropped in between.
 */
export class CappedBuffer {
  readonly #headMax: number;
  readonly #tailMax: number;
  readonly #head: Buffer[] = [];
  #headLen = 0;
  #tail: Buffer[] = [];
  #tailLen = 0;
  #dropped = 0;

  constructor(maxBytes: number) {
    this.#headMax = Math.ceil(maxBytes / 2);
    this.#tailMax = Math.floor(maxBytes / 2);
  }

  push(chunk: Buffer): void {
    if (this.#headLen < this.#headMax) {
      const take = Math.min(chunk.length, this.#headMax - this.#headLen);
      this.#head.push(chunk.subarray(0, take));
      this.#headLen += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    this.#tail.push(chunk);
    this.#tailLen += chunk.length;
    // Trim whole chunks, then the front of the oldest, so the tail holds at most tailMax bytes.
    while (this.#tailLen > this.#tailMax) {
      const excess = this.#tailLen - this.#tailMax;
      const first = this.#tail[0]!;
      if (first.length <= excess) {
        this.#tail.shift();
        this.#tailLen -= first.length;
        this.#dropped += first.length;
      } else {
        this.#tail[0] = first.subarray(excess);
        this.#tailLen -= excess;
        this.#dropped += excess;
      }
    }
  }

  get droppedBytes(): number {
    return this.#dropped;
  }

  get truncated(): boolean {
    return this.#dropped > 0;
  }

  toBuffer(): Buffer {
    return Buffer.concat([...this.#head, ...this.#tail]);
  }
}
