/**
 * Task-level steering (Xetrieval).
 *
 * Interaction of feature j in a pair: I_j(q,d) = a_j(q)·a_j(d). Its
 * relevance-utility score over relevant pairs D+ and irrelevant pairs D−:
 *   RUS(j) = Σ_{D+} I_j − Σ_{D−} I_j.
 * Key set: the top-m features by RUS. Intervention on a feature set S with
 * multipliers α_j, added to the embedding itself so that the SAE's
 * reconstruction error stays out of the comparison:
 *   z' = normalize( z + Σ_{j∈S} (α_j − 1)·a_j(z)·W_j ).
 * We renormalise because the retriever scores unit vectors with a dot product:
 * without it, α > 1 would also lengthen z' and raise every score of that
 * document by a norm factor, mixing "more of feature j" with "a longer
 * vector". With α_j = 1 for all j the embedding comes back unchanged.
 */
import { InputError } from '../errors';
import { mulberry32, shuffled } from './rng';
import { combineColumns, normalizeTo32, SaeDecoder, SparseCode, Vector } from './sparse';

/** I_j(q,d) for every j active (non-zero) in both codes. */
export function interaction(qCode: SparseCode, dCode: SparseCode): Map<number, number> {
  const aq = new Map<number, number>();
  for (let k = 0; k < qCode.indices.length; k++) aq.set(qCode.indices[k], qCode.values[k]);
  const out = new Map<number, number>();
  for (let k = 0; k < dCode.indices.length; k++) {
    const a = aq.get(dCode.indices[k]);
    const i = a === undefined ? 0 : a * dCode.values[k];
    if (i !== 0) out.set(dCode.indices[k], i);
  }
  return out;
}

export interface RusResult {
  /** RUS(j) = pos[j] − neg[j], the paper's definition (sums, so it grows with the number of pairs). */
  rus: Float64Array;
  /** Σ_{D+} I_j and Σ_{D−} I_j. */
  pos: Float64Array;
  neg: Float64Array;
  /** pos/|D+| − neg/|D−|: the same contrast with the classes weighted equally (0 for an empty class). */
  meanRus: Float64Array;
  /** Pairs (either class) with I_j ≠ 0. */
  active: Uint32Array;
  nPos: number;
  nNeg: number;
}

/** Streams pairs in; memory is O(F) whatever the number of pairs. */
export class RusAccumulator {
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;
  private readonly active: Uint32Array;
  private nPos = 0;
  private nNeg = 0;

  constructor(readonly dictSize: number) {
    this.pos = new Float64Array(dictSize);
    this.neg = new Float64Array(dictSize);
    this.active = new Uint32Array(dictSize);
  }

  add(qCode: SparseCode, dCode: SparseCode, relevant: boolean): void {
    const sums = relevant ? this.pos : this.neg;
    for (const [j, i] of interaction(qCode, dCode)) {
      if (j < 0 || j >= this.dictSize) throw new RangeError(`RusAccumulator: feature id ${j} is outside [0, ${this.dictSize})`);
      sums[j] += i;
      this.active[j]++;
    }
    if (relevant) this.nPos++;
    else this.nNeg++;
  }

  /** Folds in another accumulator's pairs (e.g. one per worker). */
  merge(other: RusAccumulator): void {
    if (other.dictSize !== this.dictSize) throw new RangeError(`RusAccumulator.merge: dictSize ${other.dictSize} vs ${this.dictSize}`);
    const o = other.result();
    for (let j = 0; j < this.dictSize; j++) {
      this.pos[j] += o.pos[j];
      this.neg[j] += o.neg[j];
      this.active[j] += o.active[j];
    }
    this.nPos += o.nPos;
    this.nNeg += o.nNeg;
  }

  result(): RusResult {
    const F = this.dictSize;
    const rus = new Float64Array(F);
    const meanRus = new Float64Array(F);
    for (let j = 0; j < F; j++) {
      rus[j] = this.pos[j] - this.neg[j];
      meanRus[j] = (this.nPos ? this.pos[j] / this.nPos : 0) - (this.nNeg ? this.neg[j] / this.nNeg : 0);
    }
    return { rus, pos: this.pos.slice(), neg: this.neg.slice(), meanRus, active: this.active.slice(), nPos: this.nPos, nNeg: this.nNeg };
  }
}

/**
 * The top-m features by `scores` (RUS), best first, lower id first on ties.
 * With `positiveOnly` (default) features with score ≤ 0 are never key — they
 * do not help relevance, so the set can come out smaller than m.
 */
export function keyFeatures(scores: ArrayLike<number>, m: number, opts: { positiveOnly?: boolean } = {}): number[] {
  const positiveOnly = opts.positiveOnly ?? true;
  const ids: number[] = [];
  for (let j = 0; j < scores.length; j++) if (!Number.isNaN(scores[j]) && (!positiveOnly || scores[j] > 0)) ids.push(j);
  ids.sort((a, b) => scores[b] - scores[a] || a - b);
  return ids.slice(0, Math.max(0, m));
}

export interface SteeringControl {
  /** Ascending. */
  ids: number[];
  /** keys.length. */
  requested: number;
  size: number;
  /** How many control features are active in at least as many pairs as their key partner. */
  matched: number;
}

/**
 * A same-size control for a key set, matched on activity. Amplifying a feature
 * that fires in many pairs moves many scores whatever it means, so a control
 * drawn uniformly (mostly rare features) would make any key set look good.
 * Definition: walk the key features from most to least active (pairs with
 * I_j ≠ 0); give each the non-key feature, not yet taken, with the smallest
 * activity count that is ≥ its own; when none is left, the most active one
 * remaining. Candidates with equal counts are ordered by a seeded shuffle, so
 * the set is reproducible and not biased towards low ids. Non-key = not in
 * `keys`, i.e. ranked below the top m by RUS (or with RUS ≤ 0).
 */
export function steeringControl(result: Pick<RusResult, 'active'>, keys: readonly number[], opts: { seed?: number } = {}): SteeringControl {
  const act = result.active;
  const keySet = new Set(keys);
  const rng = mulberry32(opts.seed ?? 0);
  const cand: number[] = [];
  for (let j = 0; j < act.length; j++) if (!keySet.has(j)) cand.push(j);
  // Stable sort of a shuffled list: random order within equal counts.
  const sorted = shuffled(cand, rng).sort((a, b) => act[a] - act[b]);
  const used = new Uint8Array(sorted.length);
  const order = [...keySet].sort((a, b) => act[b] - act[a] || a - b);
  const ids: number[] = [];
  let matched = 0;
  for (const key of order) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (act[sorted[mid]] < act[key]) lo = mid + 1;
      else hi = mid;
    }
    let pick = -1;
    for (let i = lo; i < sorted.length; i++) if (!used[i]) { pick = i; break; }
    if (pick >= 0) matched++;
    else for (let i = lo - 1; i >= 0; i--) if (!used[i]) { pick = i; break; }
    if (pick < 0) break; // dictionary exhausted
    used[pick] = 1;
    ids.push(sorted[pick]);
  }
  return { ids: ids.sort((a, b) => a - b), requested: keySet.size, size: ids.length, matched };
}

/**
 * The plain control: `size` features drawn uniformly (seeded) from the whole
 * dictionary minus the key set. Most of them are rare, so it shows what an
 * arbitrary feature set does; `steeringControl` is the stricter, activity-
 * matched one. Ascending ids.
 */
export function randomControl(dictSize: number, keys: readonly number[], size: number, seed = 0): number[] {
  const keySet = new Set(keys);
  const pool: number[] = [];
  for (let j = 0; j < dictSize; j++) if (!keySet.has(j)) pool.push(j);
  return shuffled(pool, mulberry32(seed)).slice(0, Math.max(0, size)).sort((a, b) => a - b);
}

/**
 * z' = z + Σ_{j ∈ S} (α_j − 1)·a_j·W_j, renormalised unless told not to.
 * Only features active in `code` move anything: a_j = 0 elsewhere.
 */
export function steerEmbedding(sae: SaeDecoder, z: Vector, code: SparseCode, alphas: ReadonlyMap<number, number>, opts: { renormalize?: boolean } = {}): Float32Array {
  if (z.length !== sae.dim) throw new RangeError(`steerEmbedding: embedding length ${z.length}, SAE dim ${sae.dim}`);
  const ids: number[] = [];
  const coeffs: number[] = [];
  for (let k = 0; k < code.indices.length; k++) {
    const alpha = alphas.get(code.indices[k]);
    if (alpha === undefined || alpha === 1 || code.values[k] === 0) continue;
    ids.push(code.indices[k]);
    coeffs.push((alpha - 1) * code.values[k]);
  }
  const delta = combineColumns(sae, ids, coeffs);
  for (let r = 0; r < sae.dim; r++) delta[r] += z[r];
  return opts.renormalize === false ? Float32Array.from(delta) : normalizeTo32(delta);
}

// ---------------------------------------------------------------------------
// Steering configuration files

/**
 * Which texts a config steers: both (the default), only queries or only
 * documents. Honoured wherever steering is applied: `explain --steering`,
 * the worker's live re-rank and the panel's steering basis.
 */
export type SteeringSide = 'both' | 'query' | 'document';

export const steersQuery = (side: SteeringSide = 'both'): boolean => side !== 'document';
export const steersDocument = (side: SteeringSide = 'both'): boolean => side !== 'query';

export interface SteeringFeature {
  id: number;
  alpha: number;
}

export interface SteeringConfig {
  /** The encoder the SAE was trained on, e.g. "all-MiniLM-L6-v2". */
  model: string;
  features: SteeringFeature[];
  /** Which embeddings to steer; default "both" (the query's and the document's). */
  apply?: SteeringSide;
  /** Identifies the SAE checkpoint: feature ids mean nothing in another SAE. */
  sae?: string;
  /** sha256 of the encoder weights the config was made with (model.safetensors) */
  modelSha256?: string;
  /** sha256 of the SAE file the feature ids belong to */
  saeSha256?: string;
  /** Free-form provenance (data set, split, m, date, …): string, number or boolean values. */
  createdFrom?: Record<string, string | number | boolean>;
}

const CONFIG_FIELDS = ['model', 'features', 'apply', 'sae', 'modelSha256', 'saeSha256', 'createdFrom'];
const SIDES: SteeringSide[] = ['both', 'query', 'document'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses and checks a steering config (JSON text or an already parsed value).
 * Every error is an InputError naming `file` and the offending field
 * (e.g. `features[2].alpha`). With `dictSize`, ids must be below it.
 */
export function parseSteeringConfig(input: string | unknown, file = 'steering config', opts: { dictSize?: number } = {}): SteeringConfig {
  let v: unknown = input;
  if (typeof input === 'string') {
    try {
      v = JSON.parse(input);
    } catch (e) {
      throw new InputError({ file }, `invalid JSON: ${(e as Error).message}`);
    }
  }
  const fail = (field: string, msg: string): never => {
    throw new InputError({ file, field }, msg);
  };
  if (!isObject(v)) throw new InputError({ file }, 'expected a JSON object with "model" and "features"');
  for (const k of Object.keys(v)) if (!CONFIG_FIELDS.includes(k)) fail(k, `unknown field (expected one of ${CONFIG_FIELDS.join(', ')})`);
  if (typeof v.model !== 'string' || v.model.trim() === '') fail('model', 'must be a non-empty string');
  if (!Array.isArray(v.features)) fail('features', 'must be an array of {"id", "alpha"}');
  const features: SteeringFeature[] = [];
  const seen = new Map<number, number>();
  (v.features as unknown[]).forEach((f, i) => {
    const at = `features[${i}]`;
    if (!isObject(f)) fail(at, 'must be an object {"id", "alpha"}');
    const o = f as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'id' && k !== 'alpha') fail(`${at}.${k}`, 'unknown field (expected id, alpha)');
    const id = o.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(`${at}.id`, `must be a non-negative integer, got ${JSON.stringify(id)}`);
    if (opts.dictSize !== undefined && (id as number) >= opts.dictSize) fail(`${at}.id`, `feature ${id} does not exist: the SAE has ${opts.dictSize} features`);
    if (seen.has(id as number)) fail(`${at}.id`, `feature ${id} is listed twice (also features[${seen.get(id as number)}])`);
    seen.set(id as number, i);
    const alpha = o.alpha;
    if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`${at}.alpha`, `must be a finite number, got ${JSON.stringify(alpha)}`);
    features.push({ id: id as number, alpha: alpha as number });
  });
  const cfg: SteeringConfig = { model: v.model as string, features };
  if (v.apply !== undefined) {
    if (!SIDES.includes(v.apply as SteeringSide)) fail('apply', `must be one of ${SIDES.join(', ')}, got ${JSON.stringify(v.apply)}`);
    cfg.apply = v.apply as SteeringSide;
  }
  if (v.sae !== undefined) {
    if (typeof v.sae !== 'string') fail('sae', 'must be a string');
    cfg.sae = v.sae as string;
  }
  for (const k of ['modelSha256', 'saeSha256'] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== 'string' || !/^[0-9a-f]{64}$/.test(v[k] as string)) fail(k, 'must be a sha256 (64 lowercase hex digits)');
    cfg[k] = v[k] as string;
  }
  if (v.createdFrom !== undefined) {
    if (!isObject(v.createdFrom)) fail('createdFrom', 'must be an object');
    const c: Record<string, string | number | boolean> = {};
    for (const [k, x] of Object.entries(v.createdFrom as Record<string, unknown>)) {
      if (!['string', 'number', 'boolean'].includes(typeof x)) fail(`createdFrom.${k}`, 'must be a string, number or boolean');
      c[k] = x as string | number | boolean;
    }
    cfg.createdFrom = c;
  }
  return cfg;
}

/** Pretty JSON, features by id; checked first so that a bad config is never written. */
export function serializeSteeringConfig(cfg: SteeringConfig, opts: { dictSize?: number } = {}): string {
  const checked = parseSteeringConfig(JSON.parse(JSON.stringify(cfg)), 'steering config', opts);
  // Key order is the order a reader wants: what it applies to, then the features.
  const out: Record<string, unknown> = { model: checked.model };
  if (checked.sae !== undefined) out.sae = checked.sae;
  if (checked.modelSha256 !== undefined) out.modelSha256 = checked.modelSha256;
  if (checked.saeSha256 !== undefined) out.saeSha256 = checked.saeSha256;
  if (checked.apply !== undefined) out.apply = checked.apply;
  out.features = checked.features.slice().sort((a, b) => a.id - b.id);
  if (checked.createdFrom !== undefined) out.createdFrom = checked.createdFrom;
  return JSON.stringify(out, null, 2) + '\n';
}

/** A config that multiplies every feature in `ids` by the same α. */
export function uniformConfig(model: string, ids: Iterable<number>, alpha: number, extra: Omit<SteeringConfig, 'model' | 'features'> = {}): SteeringConfig {
  return { model, features: [...new Set(ids)].sort((a, b) => a - b).map((id) => ({ id, alpha })), ...extra };
}

/** What a loaded model and SAE are: a steering config must have been made for exactly these. */
export interface SteeringTarget {
  model: string;
  modelSha256: string;
  saeSha256: string;
  dictSize: number;
}

/**
 * Why `cfg` cannot steer `target`, or undefined when it can: another model,
 * other weights or another SAE (by fingerprint, when the config records
 * them), or a feature id the SAE does not have. Such a config would
 * otherwise change nothing, or the wrong features, without a word.
 */
export function steeringMismatch(cfg: Pick<SteeringConfig, 'model' | 'features' | 'modelSha256' | 'saeSha256'>, target: SteeringTarget): { field: string; message: string } | undefined {
  if (cfg.model !== target.model) return { field: 'model', message: `the config is for ${cfg.model}, but the model is ${target.model}; feature ids of another model's SAE mean nothing here` };
  if (cfg.modelSha256 !== undefined && cfg.modelSha256 !== target.modelSha256) {
    return { field: 'modelSha256', message: `the config was made with other weights of ${cfg.model} (sha256 ${cfg.modelSha256.slice(0, 12)}…, loaded ${target.modelSha256.slice(0, 12)}…)` };
  }
  if (cfg.saeSha256 !== undefined && cfg.saeSha256 !== target.saeSha256) {
    return { field: 'saeSha256', message: `the config was made with another SAE (sha256 ${cfg.saeSha256.slice(0, 12)}…, loaded ${target.saeSha256.slice(0, 12)}…); its feature ids name other features` };
  }
  const i = cfg.features.findIndex((f) => f.id >= target.dictSize);
  if (i >= 0) return { field: `features[${i}].id`, message: `feature ${cfg.features[i].id} does not exist: the SAE has ${target.dictSize} features (0 to ${target.dictSize - 1})` };
  return undefined;
}

/** Net validation queries a steering setting must move up (up − down) to be saved: one query is chance. */
export const MIN_NET_QUERIES = 2;
