/**
 * A one-line progress bar for file copies on a terminal: bytes done of total, percent, rate.
 * Redrawn at most ten times a second with `\r`, finished with a newline.
 */

const MiB = 1024 * 1024;

function size(n: number): string {
  return n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`;
}

export class ProgressBar {
  readonly #out: NodeJS.WriteStream;
  readonly #label: string;
  readonly #total: number;
  readonly #started = Date.now();
  #lastDraw = 0;

  constructor(out: NodeJS.WriteStream, label: string, total: number) {
    this.#out = out;
    this.#label = label;
    this.#total = total;
  }

  update(done: number, force = false): void {
    const now = Date.now();
    if (!force && now - this.#lastDraw < 100) return;
    this.#lastDraw = now;
    const fraction = this.#total > 0 ? Math.min(1, done / this.#total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const rate = done / Math.max(0.001, (now - this.#started) / 1000);
    const line = `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${size(done)} / ${size(this.#total)} ${(fraction * 100).toFixed(0)}% ${size(rate)}/s`;
    this.#out.write(`\r${line}\x1b[K`);
  }

  finish(done: number): void {
    this.update(done, true);
    this.#out.write('\n');
  }
}
