/**
 * An explanation bundle: the SAE, the internalizers and the feature labels
 * trained for one base model, with a manifest that pins the base model's
 * weights and every file's sha256 (checked on load, as model files are).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../core/errors';
import { hashFileOffThread } from './models/hashThread';
import type { Precision } from '../protocol/worker';

export const BUNDLE_FORMAT = 'xetrieval-bundle/1';

export interface BundleFile {
  file: string;
  sha256: string;
}

export interface BundleView extends BundleFile {
  name: string;
  /** where the view texts that trained it came from */
  textSource: string;
  trainPairs: number;
  valCosine: number;
}

export interface FeatureLabel {
  id: number;
  label: string;
  terms: string[];
  /** balanced accuracy of telling activating from non-activating held-out texts from the label alone */
  detection: number | null;
  /** with an LLM labeller, for the features in the judged sample: the LLM judge's balanced accuracy */
  detectionLlm?: number;
  /** texts of the labelling corpus (labelling and held-out) the feature is active on */
  activeTexts?: number;
  /** who named it: a concept from the vocabulary, the term method's words, or an LLM */
  source?: 'concept' | 'terms' | 'llm';
  /** the next concepts by score, for a tooltip */
  related?: string[];
  /** active on more than the bundle's generic threshold of all texts: a dense direction, not an idea */
  generic?: boolean;
  /** share of the corpus texts it is active on */
  frequency?: number;
  /** the feature family (a group of co-activating features) and its parent label */
  family?: { id: number; label: string };
  examples: { text: string; activation: number; source: string }[];
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  name: string;
  /** precision: the encoder precision of the embeddings it was trained on (absent: fp32) */
  baseModel: { id: string; weightsSha256: string; dim: number; precision?: Precision };
  sae: BundleFile & { dictSize: number; k: number };
  views: BundleView[];
  /** labeller: `terms`, or `llm:<model>` when an LLM wrote them */
  labels: BundleFile & { method: string; count: number; labeller?: string };
  steering?: BundleFile[];
  trainingData: { dataset: string; used: string[] }[];
  /** features active on more than `threshold` of the labelling texts, marked `generic` in labels.jsonl */
  generic?: { threshold: number; count: number };
  heldOut: string[];
  seed: number;
  createdAt: string;
  command: string;
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function readManifest(dir: string): BundleManifest {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file)) throw new ModelError(`${file}: explanation bundle manifest is missing`, 'E_BUNDLE', file);
  let m: BundleManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as BundleManifest;
  } catch (e) {
    throw new ModelError(`${file}: not valid JSON (${(e as Error).message})`, 'E_BUNDLE', file);
  }
  if (m.format !== BUNDLE_FORMAT) throw new ModelError(`${file}: field "format" is ${JSON.stringify(m.format)}, expected "${BUNDLE_FORMAT}"`, 'E_BUNDLE', file);
  const precision: unknown = m.baseModel?.precision;
  if (precision !== undefined && precision !== 'fp32' && precision !== 'int8' && precision !== 'fp16') {
    throw new ModelError(`${file}: field "baseModel.precision" is ${JSON.stringify(precision)}, expected "fp32", "int8" or "fp16"`, 'E_BUNDLE', file);
  }
  return m;
}

/** The manifest must be for these base weights: feature ids mean nothing on another encoder. */
export function checkBundleBase(dir: string, m: BundleManifest, baseWeightsSha256: string | undefined): void {
  if (baseWeightsSha256 && m.baseModel.weightsSha256 !== baseWeightsSha256) {
    throw new ModelError(
      `${path.join(dir, 'manifest.json')}: bundle was trained on ${m.baseModel.id} weights ${m.baseModel.weightsSha256.slice(0, 12)}…, but the loaded model has ${baseWeightsSha256.slice(0, 12)}…`,
      'E_BUNDLE_MISMATCH',
    );
  }
}

/**
 * Reads the manifest and checks every listed file against its sha256; the
 * hashing runs off the main thread, so callers can build sessions meanwhile.
 */
export async function openBundle(dir: string, baseWeightsSha256?: string): Promise<BundleManifest> {
  const m = readManifest(dir);
  checkBundleBase(dir, m, baseWeightsSha256);
  const files = [m.sae, m.labels, ...m.views, ...(m.steering ?? [])];
  for (const f of files) {
    const p = path.join(dir, f.file);
    if (!fs.existsSync(p)) throw new ModelError(`${p}: bundle file is missing`, 'E_BUNDLE', p);
  }
  await Promise.all(
    files.map(async (f) => {
      const p = path.join(dir, f.file);
      const got = (await hashFileOffThread(p)).sha256;
      if (got !== f.sha256) throw new ModelError(`${p}: sha256 ${got} does not match the manifest (${f.sha256}); the bundle is corrupt`, 'E_BUNDLE_CORRUPT', p);
    }),
  );
  return m;
}

/** Feature labels by id. */
export interface LabelLookup {
  get(id: number): FeatureLabel | undefined;
  readonly size: number;
}

/**
 * labels.jsonl indexed by feature id and parsed on first use: the file holds
 * every feature's examples (megabytes of JSON), while an explanation needs a
 * few dozen labels, so parsing it all would only delay the first result.
 */
export class LabelTable implements LabelLookup {
  /** byte range and line number of each feature's line */
  private readonly lines = new Map<number, { start: number; end: number; line: number }>();
  private readonly parsed = new Map<number, FeatureLabel>();

  constructor(private readonly file: string, private readonly bytes: Buffer) {
    const ID = /^\s*\{\s*"id"\s*:\s*(\d+)\s*,/;
    let line = 0;
    for (let start = 0; start < bytes.length; ) {
      let end = bytes.indexOf(10, start);
      if (end < 0) end = bytes.length;
      line++;
      // the id is in the first few bytes: decode only those
      const head = bytes.toString('utf8', start, Math.min(end, start + 32));
      if (head.trim()) {
        const id = ID.exec(head);
        if (!id) throw new ModelError(`${file}:${line}: field "id": expected a line starting {"id": <number>, …}`, 'E_BUNDLE', file);
        this.lines.set(Number(id[1]), { start, end, line });
      }
      start = end + 1;
    }
  }

  get size(): number {
    return this.lines.size;
  }

  /** Every label, in file order (parses them all). */
  *values(): IterableIterator<FeatureLabel> {
    for (const id of this.lines.keys()) yield this.get(id) as FeatureLabel;
  }

  get(id: number): FeatureLabel | undefined {
    const done = this.parsed.get(id);
    if (done) return done;
    const raw = this.lines.get(id);
    if (!raw) return undefined;
    let l: FeatureLabel;
    try {
      l = JSON.parse(this.bytes.toString('utf8', raw.start, raw.end)) as FeatureLabel;
    } catch (e) {
      throw new ModelError(`${this.file}:${raw.line}: not valid JSON (${(e as Error).message})`, 'E_BUNDLE', this.file);
    }
    this.parsed.set(id, l);
    return l;
  }
}

export function readLabels(dir: string, m: BundleManifest): LabelTable {
  const file = path.join(dir, m.labels.file);
  return new LabelTable(file, fs.readFileSync(file));
}

/** The bundle shipped in the extension's models/ folder for a base model. */
export function defaultBundleDir(modelId: string): string | undefined {
  for (const base of [path.join(__dirname, '..', 'models'), path.join(__dirname, '..', '..', 'models'), path.join(__dirname, '..', '..', '..', 'models')]) {
    const dir = path.join(base, modelId);
    if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  }
  return undefined;
}
