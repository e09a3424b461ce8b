/**
 * The Xetrieval pair format: one JSON object per line,
 * `{"query_id", "doc_id", "query", "doc", "label"?}`. Field names follow the
 * file so a record can be written back without renaming.
 */
import { Loc, optionalNumber, requireId, requireObject, requireString } from './jsonl';
import { InputError } from './errors';

export interface Pair {
  query_id: string;
  doc_id: string;
  query: string;
  doc: string;
  /** relevance grade when the file has one */
  label?: number;
}

/**
 * Validates one parsed JSONL value; throws an InputError naming
 * file:line:field. An empty or whitespace-only query or document scores and
 * explains nothing, so it is an error here, for the CLI and the editor alike.
 */
export function parsePair(value: unknown, loc: Loc): Pair {
  const obj = requireObject(value, loc);
  const pair: Pair = {
    query_id: requireId(obj, 'query_id', loc),
    doc_id: requireId(obj, 'doc_id', loc),
    query: requireString(obj, 'query', loc),
    doc: requireString(obj, 'doc', loc),
  };
  for (const field of ['query', 'doc'] as const) {
    if (pair[field].trim() === '') throw new InputError({ ...loc, field }, 'must not be empty', 'E_EMPTY');
  }
  const label = optionalNumber(obj, 'label', loc);
  if (label !== undefined) {
    if (!Number.isFinite(label)) throw new InputError({ ...loc, field: 'label' }, 'must be a finite number', 'E_TYPE');
    pair.label = label;
  }
  return pair;
}
