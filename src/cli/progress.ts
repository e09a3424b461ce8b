/**
 * Progress on stderr. On a terminal one line is redrawn in place (at most ten
 * times a second); elsewhere (a log file, CI) a few plain lines are printed:
 * each quarter of a known total, or every few seconds of an open-ended stream.
 */

export interface ProgressOptions {
  /** false draws nothing (--quiet) */
  enabled: boolean;
  /** clock, injectable for tests */
  now?: () => number;
}

/** Formats a count, e.g. as bytes. */
export type CountFormat = (n: number) => string;

const BAR_WIDTH = 24;
const TTY_INTERVAL_MS = 100;
const PLAIN_INTERVAL_MS = 5000;

export class Progress {
  private label = '';
  private lastDraw = -Infinity;
  private lastQuarter = -1;
  private pending = false; // a TTY line is drawn and not yet ended
  private last: { done: number; total?: number } | null = null;
  /** `done` of the last plain line printed for the current label */
  private printedDone: number | null = null;
  private format: CountFormat = String;
  private detail: string | undefined;
  private readonly now: () => number;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly opts: ProgressOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Reports `done` of `total` (unknown total: open-ended) under `label`; a new
   * label ends the previous line. `detail` (e.g. the file being fetched) is
   * shown after the numbers without starting a new line.
   */
  update(label: string, done: number, total?: number, extra: { format?: CountFormat; detail?: string } = {}): void {
    if (!this.opts.enabled) return;
    this.detail = extra.detail;
    if (label !== this.label) {
      this.end();
      this.label = label;
      this.format = extra.format ?? String;
      this.lastQuarter = -1;
      this.lastDraw = -Infinity;
      this.printedDone = null;
    }
    this.last = { done, total };
    const t = this.now();
    if (this.out.isTTY) {
      if (t - this.lastDraw < TTY_INTERVAL_MS && !(total !== undefined && done >= total)) return;
      this.lastDraw = t;
      this.out.write(`\r\x1b[K${this.render(done, total)}`);
      this.pending = true;
      return;
    }
    if (total !== undefined && total > 0) {
      const quarter = Math.floor((4 * Math.min(done, total)) / total);
      if (quarter === this.lastQuarter) return;
      this.lastQuarter = quarter;
    } else if (t - this.lastDraw < PLAIN_INTERVAL_MS) {
      return;
    }
    this.lastDraw = t;
    this.printedDone = done;
    this.out.write(`${this.render(done, total)}\n`);
  }

  /** Ends the current line, drawing its final state. */
  end(): void {
    if (!this.opts.enabled || !this.last) return;
    const { done, total } = this.last;
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[K${this.render(done, total)}\n`);
    } else if (done !== this.printedDone) {
      this.out.write(`${this.render(done, total)}\n`);
    }
    this.pending = false;
    this.last = null;
    this.label = '';
  }

  /** Clears an open TTY line so another message can be printed; the next update redraws it. */
  interrupt(): void {
    if (!this.pending) return;
    this.out.write('\r\x1b[K');
    this.pending = false;
    this.lastDraw = -Infinity;
  }

  private render(done: number, total?: number): string {
    const detail = this.detail ? ` ${this.detail}` : '';
    if (total === undefined || total <= 0) return `${this.label} ${this.format(done)}${detail}`;
    const frac = Math.min(1, done / total);
    const fill = Math.round(frac * BAR_WIDTH);
    const bar = this.out.isTTY ? `[${'='.repeat(fill)}${' '.repeat(BAR_WIDTH - fill)}] ` : '';
    return `${this.label} ${bar}${Math.floor(frac * 100)}% ${this.format(done)}/${this.format(total)}${detail}`;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
