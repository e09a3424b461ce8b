/**
 * What every command gets: the process streams (injectable so tests run the
 * CLI in-process), the global options, the cancellation signal, and the
 * stderr logging rules (data may own stdout, so everything else goes to
 * stderr; --quiet silences all but errors).
 */
import type { DeviceSetting, PrecisionSetting } from '../protocol/worker';
import { Progress } from './progress';

export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface GlobalOptions {
  device: DeviceSetting;
  /** the encoder precision every command asks for (README "Precision") */
  precision: PrecisionSetting;
  cacheDir: string;
  batchSize: number;
  quiet: boolean;
}

/** Misuse of the command line: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class CliContext {
  /** The one progress line on stderr; messages clear it first so they do not mix. */
  readonly progress: Progress;

  constructor(
    readonly io: CliIo,
    readonly globals: GlobalOptions,
    readonly signal: AbortSignal,
  ) {
    this.progress = new Progress(io.stderr, { enabled: !globals.quiet });
  }

  /** Informational line on stderr, unless --quiet. */
  info(message: string): void {
    if (this.globals.quiet) return;
    this.progress.interrupt();
    this.io.stderr.write(`${message}\n`);
  }

  /** Problem line on stderr, always shown. */
  error(message: string): void {
    this.progress.interrupt();
    this.io.stderr.write(`xetrieval: ${message}\n`);
  }
}

export const DEFAULT_MODEL = 'all-MiniLM-L6-v2';
/**
 * fp32: int8 keeps vectors within cosine 0.99 and retrieval unchanged, but
 * changes the top-5 shared features of 4 explanations in 10, and a score from
 * `score` should match the one `explain` reports (README "Precision")
 */
export const DEFAULT_PRECISION: PrecisionSetting = 'fp32';
/** Lines per worker request when streaming: big enough to keep the encoder busy, small enough to flush results often. */
export const CHUNK_LINES = 256;

/** Rounds to 7 significant digits: float32 carries about 7, more would only be noise in the file. */
export function round7(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(7)) : x;
}
