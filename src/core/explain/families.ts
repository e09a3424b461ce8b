/**
 * Feature families (after O'Neill et al. 2024): features whose decoder
 * directions are close belong together under a parent. Each feature points to
 * its nearest *more frequent* feature when their decoder columns have cosine
 * ≥ `threshold`; following the pointers ends at a root, and a root with
 * children is a family. More frequent features are the broader ones, so the
 * root is the family's most general member.
 *
 * The family's label is the concept named most often among its members'
 * labels and related concepts (the root's label on ties): a family of
 * "thread", "mutex", "lock" reads as the idea they share, not one member.
 */
import { decoderRowsOf, SaeDecoder } from './sparse';

export interface Families {
  /** feature → root of its family, or -1 when it has none (a feature alone) */
  root: Int32Array;
  /** root → its members (root included), only for families of ≥ 2 */
  members: Map<number, number[]>;
}

/** Unit decoder columns, feature-major (F × D), for fast dots. */
function unitColumns(sae: SaeDecoder): Float32Array {
  const { dim: D, dictSize: F } = sae;
  const out = Float32Array.from(decoderRowsOf(sae));
  for (let j = 0; j < F; j++) {
    const row = out.subarray(j * D, (j + 1) * D);
    let n = 0;
    for (let r = 0; r < D; r++) n += row[r] ** 2;
    const s = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let r = 0; r < D; r++) row[r] *= s;
  }
  return out;
}

export function featureFamilies(sae: SaeDecoder, frequency: ArrayLike<number>, opts: { threshold?: number; skip?: (id: number) => boolean } = {}): Families {
  const threshold = opts.threshold ?? 0.5;
  const { dim: D, dictSize: F } = sae;
  const cols = unitColumns(sae);
  // most frequent first; each feature may attach only to one before it
  const order = Array.from({ length: F }, (_, j) => j)
    .filter((j) => frequency[j] > 0 && !opts.skip?.(j))
    .sort((a, b) => frequency[b] - frequency[a] || a - b);
  const parent = new Int32Array(F).fill(-1);
  for (let i = 1; i < order.length; i++) {
    const j = order[i];
    let best = -1;
    let bestCos = threshold;
    for (let h = 0; h < i; h++) {
      const p = order[h];
      let c = 0;
      for (let r = 0; r < D; r++) c += cols[j * D + r] * cols[p * D + r];
      if (c >= bestCos) (bestCos = c), (best = p);
    }
    parent[j] = best;
  }
  const root = new Int32Array(F).fill(-1);
  const members = new Map<number, number[]>();
  for (const j of order) {
    let r = j;
    while (parent[r] >= 0) r = parent[r];
    root[j] = r;
    let m = members.get(r);
    if (!m) members.set(r, (m = []));
    m.push(j);
  }
  for (const [r, m] of members) {
    if (m.length < 2) {
      members.delete(r);
      root[r] = -1;
    }
  }
  return { root, members };
}

/** The concept most often among the members' labels and related concepts; the root's label on ties. */
export function familyLabel(root: number, members: readonly number[], labelOf: (id: number) => { label: string; related?: readonly string[] } | undefined): string {
  const count = new Map<string, number>();
  for (const id of members) {
    const l = labelOf(id);
    if (!l?.label) continue;
    for (const c of new Set([l.label, ...(l.related ?? [])].map((x) => x.toLowerCase()))) count.set(c, (count.get(c) ?? 0) + 1);
  }
  const rootLabel = labelOf(root)?.label ?? '';
  let best = rootLabel.toLowerCase();
  let bestN = count.get(best) ?? 0;
  for (const [c, n] of count) if (n > bestN) (best = c), (bestN = n);
  return best;
}
