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
  source?: 'concept' | 'terms' | 'llm' | 'spelling';
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

/** A feature's strongest activation among its top-activating examples in the labelling corpus (0 without examples). */
export function strongestActivation(l: Pick<FeatureLabel, 'examples'>): number {
  let m = 0;
  for (const e of l.examples) m = Math.max(m, e.activation);
  return m;
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
  /**
   * `train bundle --reuse`: the run that trained the SAE and internalizers this
   * bundle kept (carried through later reuses, so it always names a training run)
   */
  trainedBy?: { createdAt: string; command: string };
}

/** The run that trained a bundle's SAE and internalizers: its own, or the one it reused them from. */
export function trainingRun(m: BundleManifest): { createdAt: string; command: string } {
  return m.trainedBy ?? { createdAt: m.createdAt, command: m.command };
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function readManifest(dir: string): BundleManifest {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file)) throw new ModelError(`${file}: explanation bundle manifest is missing`, 'E_BUNDLE', file);
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelError(`${file}: not valid JSON (${(e as Error).message})`, 'E_BUNDLE', file);
  }
  return parseManifest(value, file);
}

/**
 * Checks a parsed manifest field by field, as strictly as the webview's
 * messages: the engine sizes sessions and opens files from it, so a wrong type
 * or a file path leaving the bundle folder is refused here, naming the field,
 * not found later as a crash.
 */
export function parseManifest(value: unknown, file: string): BundleManifest {
  const fail = (field: string, got: unknown, expected: string): never => {
    throw new ModelError(`${file}: field "${field}" is ${got === undefined ? 'missing' : JSON.stringify(got)?.slice(0, 80)}, expected ${expected}`, 'E_BUNDLE', file);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const obj = (v: unknown, field: string) => (isObj(v) ? v : fail(field, v, 'an object'));
  const str = (v: unknown, field: string) => (typeof v === 'string' ? v : fail(field, v, 'a string'));
  const int = (v: unknown, field: string, min: number) => (Number.isInteger(v) && (v as number) >= min ? (v as number) : fail(field, v, `a whole number ≥ ${min}`));
  const num = (v: unknown, field: string) => (typeof v === 'number' && Number.isFinite(v) ? v : fail(field, v, 'a number'));
  const arr = (v: unknown, field: string) => (Array.isArray(v) ? v : fail(field, v, 'an array'));
  const sha = (v: unknown, field: string) => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? v : fail(field, v, 'a sha256 (64 hex digits)'));
  // a bundle file is named relative to the bundle folder and stays inside it
  const rel = (v: unknown, field: string) => {
    const f = str(v, field);
    return f !== '' && !path.isAbsolute(f) && !f.split(/[\\/]/).includes('..') ? f : fail(field, v, 'a path inside the bundle folder');
  };
  const bundleFile = (v: unknown, field: string): Record<string, unknown> => {
    const o = obj(v, field);
    rel(o.file, `${field}.file`);
    sha(o.sha256, `${field}.sha256`);
    return o;
  };

  const m = obj(value, '(manifest)');
  if (m.format !== BUNDLE_FORMAT) fail('format', m.format, `"${BUNDLE_FORMAT}"`);
  str(m.name, 'name');
  const base = obj(m.baseModel, 'baseModel');
  str(base.id, 'baseModel.id');
  sha(base.weightsSha256, 'baseModel.weightsSha256');
  int(base.dim, 'baseModel.dim', 1);
  if (base.precision !== undefined && base.precision !== 'fp32' && base.precision !== 'int8' && base.precision !== 'fp16') fail('baseModel.precision', base.precision, '"fp32", "int8" or "fp16"');
  const sae = bundleFile(m.sae, 'sae');
  const dictSize = int(sae.dictSize, 'sae.dictSize', 1);
  const k = int(sae.k, 'sae.k', 1);
  if (k > dictSize) fail('sae.k', k, `at most sae.dictSize (${dictSize})`);
  arr(m.views, 'views').forEach((v, i) => {
    const view = bundleFile(v, `views[${i}]`);
    str(view.name, `views[${i}].name`);
    str(view.textSource, `views[${i}].textSource`);
    int(view.trainPairs, `views[${i}].trainPairs`, 0);
    num(view.valCosine, `views[${i}].valCosine`);
  });
  const labels = bundleFile(m.labels, 'labels');
  str(labels.method, 'labels.method');
  int(labels.count, 'labels.count', 0);
  if (labels.labeller !== undefined) str(labels.labeller, 'labels.labeller');
  if (m.steering !== undefined) arr(m.steering, 'steering').forEach((s, i) => bundleFile(s, `steering[${i}]`));
  arr(m.trainingData, 'trainingData').forEach((d, i) => {
    const o = obj(d, `trainingData[${i}]`);
    str(o.dataset, `trainingData[${i}].dataset`);
    arr(o.used, `trainingData[${i}].used`).forEach((u, j) => str(u, `trainingData[${i}].used[${j}]`));
  });
  if (m.generic !== undefined) {
    const g = obj(m.generic, 'generic');
    const t = num(g.threshold, 'generic.threshold');
    if (!(t > 0 && t <= 1)) fail('generic.threshold', t, 'a share above 0 and at most 1');
    int(g.count, 'generic.count', 0);
  }
  arr(m.heldOut, 'heldOut').forEach((h, i) => str(h, `heldOut[${i}]`));
  int(m.seed, 'seed', 0);
  str(m.createdAt, 'createdAt');
  str(m.command, 'command');
  if (m.trainedBy !== undefined) {
    const t = obj(m.trainedBy, 'trainedBy');
    str(t.createdAt, 'trainedBy.createdAt');
    str(t.command, 'trainedBy.command');
  }
  return m as unknown as BundleManifest;
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
