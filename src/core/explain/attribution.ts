/**
 * Each feature's share of a retrieval score.
 *
 * Write an embedding as z = u + b + e with u = W_dec a = Σ_i a_i W_i (the
 * code's direction), b = b_dec and e = z − x̂ the reconstruction error. Then
 *
 *   ⟨z_q, z_d⟩ = ⟨u_q, u_d⟩                                   (features)
 *              + ⟨u_q, b⟩ + ⟨b, u_d⟩ + ⟨b, b⟩                  (bias)
 *              + ⟨e_q, z_d⟩ + ⟨x̂_q, e_d⟩                       (error)
 *
 * and ⟨u_q, u_d⟩ = Σ_i Σ_j a_i(q) a_j(d) ⟨W_i, W_j⟩ is split over features
 * symmetrically, half of each feature's row and half of its column:
 *
 *   share_i = ½ ( a_i(q) ⟨W_i, u_d⟩ + a_i(d) ⟨W_i, u_q⟩ ),  Σ_i share_i = ⟨u_q, u_d⟩
 *
 * (sum over i of the first term is ⟨u_q, u_d⟩, and so is the sum of the
 * second). Decoder columns are not orthogonal, so a feature active on one side
 * only still gets a share through its overlap with the other side's
 * directions. The bias term splits the same way — biasCross_i =
 * (a_i(q) + a_i(d)) ⟨W_i, b⟩, Σ_i biasCross_i + ⟨b, b⟩ = bias — but stays out of
 * `share` because b is constant across documents and says nothing about the
 * pair. So Σ share + bias + error = ⟨z_q, z_d⟩ exactly (up to float64
 * rounding), and that is the cosine for the unit vectors a sentence encoder
 * gives.
 */
import { columnDots, codeDirection, dot64, SaeDecoder, SparseCode, Vector } from './sparse';

/**
 * A shared feature that adds less than this to the score (in cosine units,
 * either sign) is minor: counted in the score's terms but not listed as part
 * of the explanation. Besides the generic features, a pair shares about a
 * dozen (11 on average on held-out Python FAQ pairs), and often half or more
 * of them add under 0.01 each; their labels rarely named anything in the pair
 * (on those FAQ pairs, previous bundle: 22% of the top-5 features under 0.01
 * had a grounded label, against 58% above it). Rankings between candidates
 * usually differ by more than 0.01, so a minor feature alone rarely decides one.
 */
export const MINOR_SHARE = 0.01;

/**
 * A shared feature whose activation, on the weaker of the two sides, is under
 * this fraction of the feature's strongest activation in the bundle's
 * labelling corpus is weakly active: its label names what it fires on when it
 * fires strongly, not what it picks up here (detection falls from the top
 * activation decile to the bottom one: REPORT.md's table by decile). Such a
 * feature stays in the score and the feature list, flagged, but is not listed
 * for a person to read. Examples on the default bundle: "hiv" (0.19 of its
 * strongest) on "why does ice float on water?", "milk" (0.10) on the boiled-egg
 * pair; kept: "water" (0.45) on the first, "cpu" (0.32) on the GIL pair.
 */
export const WEAK_ACTIVATION = 0.25;

/** Whether a shared feature is weakly active on a pair (see WEAK_ACTIVATION): `activation` on its weaker side, `strongest` its bundle maximum (0 when unknown: never weak). */
export function isWeakActivation(activation: number, strongest: number): boolean {
  return strongest > 0 && activation < WEAK_ACTIVATION * strongest;
}

/**
 * A label whose detection score (balanced accuracy of a judge that sees only
 * the label, on held-out texts of the labelling corpus; 0.5 is chance) is under
 * this does not name its feature reliably: the feature is unnamed. It stays in
 * the score and the feature list, flagged, but is not listed for a person to
 * read, and its words are not offered as its name. Measured on the default
 * bundle's listed top 5 of relevant pairs (1,011 features over five check
 * sets): labels under 0.7 had a word in the pair for 49% of the features, those
 * of 0.8 or more for 86%. At 0.65 the SciFact sample's grounding goes from
 * 0.733 to 0.784 and the held-out Python FAQ's from 0.636 to 0.668, while 79 of
 * 89 and 158 of 163 pairs keep a listed feature.
 */
export const NAMED_DETECTION = 0.65;

/** Whether a label's detection score (null or undefined: not measured) is too low to name its feature (see NAMED_DETECTION). */
export function isUnnamedDetection(detection: number | null | undefined): boolean {
  return typeof detection === 'number' && detection < NAMED_DETECTION;
}

/**
 * A listed feature's label must also match the pair: the label, embedded on
 * its own, has a cosine of at least this with the query or the document
 * (labelFit); else the feature is unmatched, counted and flagged like an
 * unnamed one but not listed. A label names what the feature fires on across
 * the corpus; on one pair it may fire for something else (a polysemantic or
 * surface feature: "cadmium" on a pair about Paris CDG airport, "breast cancer"
 * on RN and BSN degrees). 0.2 is about the 97.5th percentile of a label's
 * cosine with a random corpus text (default bundle, 4,095 labels × 1,800
 * texts of every source: 95th 0.16, 99th 0.25), so a label passes when the pair
 * is closer to it than nearly every unrelated text. A label with a word in the
 * pair always fits (isUnmatchedLabel). Word-piece labels are not judged: their
 * words say nothing about an idea.
 */
export const LABEL_FIT = 0.2;

/**
 * The same bar for a word-list label (the term-contrast fallback, "rail,
 * railing, bolt, kauri"): four words embedded together sit closer to any text
 * than one concept does. Over the same 1,800 random texts, 1.7% reach 0.2 with
 * a concept label but 3.5% with a word list; 0.24 lets the same 1.7% through.
 */
export const LABEL_FIT_WORDS = 0.24;

/** A term-contrast label: its terms joined by ", " (concept labels and word pieces have no comma). */
export function isWordListLabel(label: string): boolean {
  return label.includes(', ');
}

/** The label-fit bar a label is judged by: LABEL_FIT, or LABEL_FIT_WORDS for a word list. */
export function labelFitBar(label: string): number {
  return isWordListLabel(label) ? LABEL_FIT_WORDS : LABEL_FIT;
}

/**
 * Whether `label` fails to fit a pair (see LABEL_FIT; its bar is
 * labelFitBar(label)): `fit` is its larger cosine with the query or the
 * document, `inText` whether a word of the label (plural folded) is in one of
 * them. A word of the pair always fits: one word embedded alone can sit far
 * from a long text that uses it ("thread", 0.19, on a paragraph about the GIL
 * whose every sentence is about threads).
 */
export function isUnmatchedLabel(label: string, fit: number | undefined, inText: boolean): boolean {
  return !inText && typeof fit === 'number' && fit < labelFitBar(label);
}

/** How an unnamed feature is called where a name is needed (a slider, a contrast row): by its id, not its label. */
export function unnamedName(id: number): string {
  return `#${id} · no reliable name`;
}

type ListFlags = { minor?: true; weak?: true; unnamed?: true; unmatched?: true };

/** Why a shared feature is not listed, one reason each (minor, then weakly active, unnamed, unmatched), or undefined when it is listed. */
export type Unlisted = 'minor' | 'weak' | 'unnamed' | 'unmatched';
export function unlistedAs(f: ListFlags): Unlisted | undefined {
  return f.minor ? 'minor' : f.weak ? 'weak' : f.unnamed ? 'unnamed' : f.unmatched ? 'unmatched' : undefined;
}

/** Whether a shared feature is listed for a person to read: not minor, not weakly active, not unnamed, its label matching the pair. */
export function isListed(f: ListFlags): boolean {
  return unlistedAs(f) === undefined;
}

/** The features that are not listed, grouped by their one reason (what the sentences under a feature list count). */
export function unlistedGroups<T extends ListFlags>(features: readonly T[]): Record<Unlisted, T[]> {
  const g: Record<Unlisted, T[]> = { minor: [], weak: [], unnamed: [], unmatched: [] };
  for (const f of features) {
    const u = unlistedAs(f);
    if (u) g[u].push(f);
  }
  return g;
}

/** Whether a feature's share is too small to list (see MINOR_SHARE). */
export function isMinorShare(share: number): boolean {
  return Math.abs(share) < MINOR_SHARE;
}

export interface FeatureShare {
  id: number;
  /** a_i(q), a_i(d). */
  query: number;
  doc: number;
  share: number;
  biasCross: number;
}

export interface ScoreDecomposition {
  /** ⟨z_q, z_d⟩. */
  score: number;
  /** Every feature active (non-zero) on either side, by share descending (id ascending on ties). */
  features: FeatureShare[];
  /** ⟨u_q, u_d⟩ = Σ share. */
  featureTotal: number;
  /** ⟨x̂_q, x̂_d⟩ − ⟨u_q, u_d⟩. */
  bias: number;
  /** ⟨z_q, z_d⟩ − ⟨x̂_q, x̂_d⟩. */
  error: number;
}

export function decomposeScore(sae: SaeDecoder, zq: Vector, qCode: SparseCode, zd: Vector, dCode: SparseCode): ScoreDecomposition {
  const D = sae.dim;
  if (zq.length !== D || zd.length !== D) throw new RangeError(`decomposeScore: embeddings of length ${zq.length}/${zd.length}, SAE dim ${D}`);
  const uq = codeDirection(sae, qCode);
  const ud = codeDirection(sae, dCode);
  const b = sae.bDec;

  const aq = new Map<number, number>();
  const ad = new Map<number, number>();
  for (let k = 0; k < qCode.indices.length; k++) if (qCode.values[k] !== 0) aq.set(qCode.indices[k], qCode.values[k]);
  for (let k = 0; k < dCode.indices.length; k++) if (dCode.values[k] !== 0) ad.set(dCode.indices[k], dCode.values[k]);
  const ids = [...new Set([...aq.keys(), ...ad.keys()])];
  const wUd = columnDots(sae, ids, ud);
  const wUq = columnDots(sae, ids, uq);
  const wB = columnDots(sae, ids, b);

  const features = ids.map((id, k): FeatureShare => {
    const a = aq.get(id) ?? 0;
    const c = ad.get(id) ?? 0;
    return { id, query: a, doc: c, share: 0.5 * (a * wUd[k] + c * wUq[k]), biasCross: (a + c) * wB[k] };
  });
  features.sort((x, y) => y.share - x.share || x.id - y.id);

  // Each term straight from its definition, so the test that they add up checks the algebra.
  const featureTotal = dot64(uq, ud);
  const bias = dot64(uq, b) + dot64(b, ud) + dot64(b, b);
  const xq = new Float64Array(D);
  const xd = new Float64Array(D);
  const eq = new Float64Array(D);
  const ed = new Float64Array(D);
  for (let r = 0; r < D; r++) {
    xq[r] = uq[r] + b[r];
    xd[r] = ud[r] + b[r];
    eq[r] = zq[r] - xq[r];
    ed[r] = zd[r] - xd[r];
  }
  const error = dot64(eq, zd) + dot64(xq, ed);
  return { score: dot64(zq, zd), features, featureTotal, bias, error };
}
