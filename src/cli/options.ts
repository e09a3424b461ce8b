/**
 * Parsers for numeric flags: the whole text must be a number in range, or
 * commander reports `option '--tau <x>' argument 'abc' is invalid. …` and the
 * CLI exits 2. parseInt/parseFloat would take 'abc' as NaN and '3xyz' as 3.
 */
import { InvalidArgumentError } from 'commander';

const INT = /^[+-]?\d+$/;
// JSON-like decimals, with an exponent; no hex, no 'Infinity', no empty string
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

const fmt = (x: number) => (x === Number.MAX_SAFE_INTEGER ? String(x) : x.toLocaleString('en-US').replace(/,/g, ''));

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max: number): (v: string) => number {
  return (v: string) => {
    const t = v.trim();
    const n = Number(t);
    if (!INT.test(t) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${fmt(min)} to ${fmt(max)}`);
    return n;
  };
}

/** A finite number from `min` to `max` (inclusive unless said otherwise). */
export function decimal(min: number, max: number, o: { minExclusive?: boolean } = {}): (v: string) => number {
  return (v: string) => {
    const t = v.trim();
    const n = Number(t);
    const low = o.minExclusive ? n > min : n >= min;
    if (!DECIMAL.test(t) || !Number.isFinite(n) || !low || n > max) {
      const range = max === Infinity ? `${o.minExclusive ? 'above' : 'at least'} ${min}` : `${o.minExclusive ? 'above' : 'from'} ${min} ${o.minExclusive ? 'and at most' : 'to'} ${max}`;
      throw new InvalidArgumentError(`expected a number ${range}`);
    }
    return n;
  };
}

/** A seed: a whole number from 0 to 2^32 − 1. */
export const seed = wholeNumber(0, 2 ** 32 - 1);
