/**
 * Errors that point at the user's input. Every message names the file, and the
 * line and field where they are known, so a CLI user or the Problems panel can
 * go straight to the cause.
 */
export interface InputLocation {
  file: string;
  line?: number;
  field?: string;
}

export class InputError extends Error {
  readonly file: string;
  readonly line?: number;
  readonly field?: string;
  readonly code: string;

  constructor(loc: InputLocation, message: string, code = 'E_INPUT') {
    super(`${formatLocation(loc)}: ${message}`);
    this.name = 'InputError';
    this.file = loc.file;
    this.line = loc.line;
    this.field = loc.field;
    this.code = code;
    this.detail = message;
  }

  /** The message without the location prefix. */
  readonly detail: string;
}

export function formatLocation(loc: InputLocation): string {
  let s = loc.file;
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.field !== undefined) s += `: field "${loc.field}"`;
  return s;
}

/** Model cache/loading problems: missing, partial or corrupt files. */
export class ModelError extends Error {
  readonly code: string;
  readonly file?: string;
  constructor(message: string, code = 'E_MODEL', file?: string) {
    super(message);
    this.name = 'ModelError';
    this.code = code;
    this.file = file;
  }
}

export class CancelledError extends Error {
  readonly code = 'E_CANCELLED';
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}
