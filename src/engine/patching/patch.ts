/**
 * Activation patching (MechIR, method.md §3) on the hooked encoder: run the
 * perturbed document and cache every hook point, then run the original
 * document many times at once, each row with one component replaced by its
 * cached perturbed value, and report (s_patched − s_orig)/(s_perturbed − s_orig).
 */
import { CancelledError } from '../../core/errors';
import { cosine } from '../../core/math';
import { alignTokens, patchMetric, positionGroup, POSITION_GROUPS } from '../../core/patching';
import { HookKind, hookName } from '../bert/graph';
import { HookedEncoder } from './hooked';
import type { PairPatch } from '../../protocol/worker';

export type { PairPatch };

export const GRANULARITIES = ['block', 'block-groups', 'heads', 'heads-by-position'] as const;
export type Granularity = (typeof GRANULARITIES)[number];
/** the block map's first axis, as MechIR's block_all */
export const BLOCK_KINDS = ['resid_pre', 'attn_out', 'mlp_out'] as const satisfies readonly HookKind[];

export interface PatchOptions {
  granularities: readonly Granularity[];
  /** heads for heads-by-position */
  heads?: { layer: number; head: number }[];
  /** padded tokens per onnxruntime run (rows × seq); 1 row per run when batched is false */
  tokenBudget?: number;
  /** false: one onnxruntime run per patch (the benchmark's reference) */
  batched?: boolean;
  signal?: AbortSignal;
}

/** A pair that cannot be patched, with the reason (never a NaN map). */
export class PatchInputError extends Error {
  constructor(
    message: string,
    readonly code: 'E_NO_TOKENS' | 'E_UNCHANGED',
  ) {
    super(message);
  }
}

/** One patched row: which hook, at which positions, and for hook_z which head. */
interface RowSpec {
  hook: string;
  kind: HookKind;
  positions: number[];
  head?: number;
}

export interface PreparedPair {
  /** aligned original and perturbed ids, and the positions that differ */
  orig: number[];
  pert: number[];
  changed: number[];
  qEmb: Float32Array;
  sOrig: number;
  sPert: number;
  sPlain: number;
  /** the perturbed run's value at every hook point, [1, seq, …] */
  patches: Map<string, Float32Array>;
  /** the original run's value at every hook point */
  clean: Map<string, Float32Array>;
}

/** Tokenizes and aligns the pair, and runs the original and the perturbed document once, caching every hook point. */
export async function preparePair(enc: HookedEncoder, query: string, doc: string, perturbed: string): Promise<PreparedPair> {
  const H = enc.hidden;
  const q = enc.tokenize(query, 'query');
  const o = enc.tokenize(doc, 'document');
  const p = enc.tokenize(perturbed, 'document');
  if (o.ids.length <= 2) throw new PatchInputError('the document has no tokens (only the special tokens are left)', 'E_NO_TOKENS');
  if (p.ids.length <= 2) throw new PatchInputError('the perturbed document has no tokens (only the special tokens are left)', 'E_NO_TOKENS');
  const al = alignTokens(o.ids, p.ids, enc.tokenizer.padId);
  if (!al) {
    throw new PatchInputError(
      `the perturbation does not change the document's tokens${p.truncated ? ` (it falls past the ${enc.spec.maxTokens}-token limit)` : ''}: the metric is undefined`,
      'E_UNCHANGED',
    );
  }
  const S = al.orig.length;
  const qEmb = (await enc.run({ ids: [q.ids] })).embeddings;
  const names = enc.hookPoints().map((h) => hookName(h.layer, h.kind));
  const base = await enc.run({ ids: [al.orig, al.pert], fetch: names });
  const patches = new Map<string, Float32Array>();
  const clean = new Map<string, Float32Array>();
  for (const name of names) {
    const v = base.outputs[name];
    clean.set(name, v.subarray(0, v.length / 2));
    patches.set(name, v.subarray(v.length / 2));
  }
  const sOrig = cosine(qEmb, base.embeddings.subarray(0, H));
  const sPert = cosine(qEmb, base.embeddings.subarray(H, 2 * H));
  const sPlain = o.ids.length === S ? sOrig : cosine(qEmb, (await enc.run({ ids: [o.ids] })).embeddings);
  return { orig: al.orig, pert: al.pert, changed: al.changed, qEmb, sOrig, sPert, sPlain, patches, clean };
}

/** A patch: one hook point at some positions (hook_z: of one head). */
export interface PatchSpec {
  layer: number;
  kind: HookKind;
  positions: number[];
  head?: number;
}

/** s_patched for each patch (one patched forward pass each), batched as opts says. */
export async function patchedScores(enc: HookedEncoder, prep: PreparedPair, specs: PatchSpec[], opts: Omit<PatchOptions, 'granularities'> = {}): Promise<{ scores: number[]; runs: number }> {
  let runs = 0;
  const rows: RowSpec[] = specs.map((s) => ({ hook: hookName(s.layer, s.kind), kind: s.kind, positions: s.positions, head: s.head }));
  const scores = await runPatchedRows(enc, prep.orig, rows, prep.patches, prep.qEmb, opts, (n) => (runs += n));
  return { scores, runs };
}

export async function patchPair(enc: HookedEncoder, query: string, doc: string, perturbed: string, opts: PatchOptions): Promise<PairPatch> {
  const started = Date.now();
  const prep = await preparePair(enc, query, doc, perturbed);
  const S = prep.orig.length;
  const tok = (ids: number[]) => ids.map((id) => enc.tokenizer.decodeId(id));
  const result: PairPatch = {
    tokens: tok(prep.orig),
    perturbed_tokens: tok(prep.pert),
    changed: prep.changed,
    score_original: prep.sOrig,
    score_original_unpadded: prep.sPlain,
    score_perturbed: prep.sPert,
    patched_rows: 0,
    runs: 0,
    elapsedMs: 0,
  };
  if (patchMetric(prep.sOrig, prep.sOrig, prep.sPert) === undefined) {
    result.undefined_reason = `the perturbation leaves the score unchanged (s_perturbed − s_orig = ${(prep.sPert - prep.sOrig).toExponential(2)}): the metric is undefined`;
    return result;
  }
  const specs: PatchSpec[] = [];
  const all = Array.from({ length: S }, (_, i) => i);
  const wantBlock = opts.granularities.includes('block');
  const wantHeads = opts.granularities.includes('heads');
  if (wantBlock) for (const kind of BLOCK_KINDS) for (let l = 0; l < enc.layers; l++) for (let pos = 0; pos < S; pos++) specs.push({ layer: l, kind, positions: [pos] });
  if (wantHeads) for (let l = 0; l < enc.layers; l++) for (let h = 0; h < enc.heads; h++) specs.push({ layer: l, kind: 'z', positions: all, head: h });
  const hbp = opts.granularities.includes('heads-by-position') ? (opts.heads ?? []) : [];
  for (const { layer, head } of hbp) for (let pos = 0; pos < S; pos++) specs.push({ layer, kind: 'z', positions: [pos], head });
  // block-groups: every position of a group patched at once (cls, doc, perturbed, sep)
  const changed = new Set(prep.changed);
  const groupPositions = POSITION_GROUPS.map((g) => all.filter((pos) => positionGroup(pos, S, changed) === g));
  const wantGroups = opts.granularities.includes('block-groups');
  if (wantGroups) for (const kind of BLOCK_KINDS) for (let l = 0; l < enc.layers; l++) for (const positions of groupPositions) specs.push({ layer: l, kind, positions });

  const { scores, runs } = await patchedScores(enc, prep, specs, opts);
  result.patched_rows = specs.length;
  result.runs = runs;
  const values = scores.map((s) => patchMetric(s, prep.sOrig, prep.sPert)!);
  let at = 0;
  const take = (n: number) => values.slice(at, (at += n));
  if (wantBlock) result.block = BLOCK_KINDS.map(() => Array.from({ length: enc.layers }, () => take(S)));
  if (wantHeads) result.heads = Array.from({ length: enc.layers }, () => take(enc.heads));
  if (hbp.length) result.heads_by_position = hbp.map(({ layer, head }) => ({ layer, head, values: take(S) }));
  // a group without positions (a document with nothing but the change) has no value: null, never 0
  if (wantGroups) result.block_groups = BLOCK_KINDS.map(() => Array.from({ length: enc.layers }, () => take(POSITION_GROUPS.length).map((v, g) => (groupPositions[g].length ? v : null))));
  result.elapsedMs = Date.now() - started;
  return result;
}

/** Scores of the patched rows, in order; rows go through in batches of about tokenBudget padded tokens. */
async function runPatchedRows(
  enc: HookedEncoder,
  ids: number[],
  rows: RowSpec[],
  patches: ReadonlyMap<string, Float32Array>,
  qEmb: Float32Array,
  opts: Omit<PatchOptions, 'granularities'>,
  countRuns: (n: number) => void,
): Promise<number[]> {
  const S = ids.length;
  const H = enc.hidden;
  const per = opts.batched === false ? 1 : Math.max(1, Math.floor((opts.tokenBudget ?? 8192) / S));
  const scores: number[] = [];
  for (let start = 0; start < rows.length; start += per) {
    if (opts.signal?.aborted) throw new CancelledError();
    const chunk = rows.slice(start, start + per);
    const n = chunk.length;
    const masks = new Map<string, Uint8Array>();
    chunk.forEach((r, b) => {
      const mw = r.kind === 'z' ? enc.heads : 1;
      let m = masks.get(r.hook);
      if (!m) masks.set(r.hook, (m = new Uint8Array(n * S * mw)));
      for (const pos of r.positions) {
        if (r.kind === 'z') m[(b * S + pos) * mw + r.head!] = 1;
        else m[b * S + pos] = 1;
      }
    });
    const used = new Map<string, Float32Array>();
    for (const name of masks.keys()) used.set(name, patches.get(name)!);
    const out = await enc.run({ ids: Array.from({ length: n }, () => ids), patches: used, masks });
    countRuns(1);
    for (let b = 0; b < n; b++) scores.push(cosine(qEmb, out.embeddings.subarray(b * H, (b + 1) * H)));
  }
  return scores;
}
