/**
 * An explanation bundle: the SAE, the internalizers and the feature labels
 * trained for one base model, with a manifest that pins the base model's
 * weights and every file's sha256 (checked on load, as model files are).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../core/errors';

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
  examples: { text: string; activation: number; source: string }[];
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  name: string;
  baseModel: { id: string; weightsSha256: string; dim: number };
  sae: BundleFile & { dictSize: number; k: number };
  views: BundleView[];
  labels: BundleFile & { method: string; count: number };
  steering?: BundleFile[];
  trainingData: { dataset: string; used: string[] }[];
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
  return m;
}

/** Reads the manifest and checks every listed file against its sha256. */
export function openBundle(dir: string, baseWeightsSha256?: string): BundleManifest {
  const m = readManifest(dir);
  if (baseWeightsSha256 && m.baseModel.weightsSha256 !== baseWeightsSha256) {
    throw new ModelError(
      `${path.join(dir, 'manifest.json')}: bundle was trained on ${m.baseModel.id} weights ${m.baseModel.weightsSha256.slice(0, 12)}…, but the loaded model has ${baseWeightsSha256.slice(0, 12)}…`,
      'E_BUNDLE_MISMATCH',
    );
  }
  for (const f of [m.sae, m.labels, ...m.views, ...(m.steering ?? [])]) {
    const p = path.join(dir, f.file);
    if (!fs.existsSync(p)) throw new ModelError(`${p}: bundle file is missing`, 'E_BUNDLE', p);
    const got = sha256File(p);
    if (got !== f.sha256) throw new ModelError(`${p}: sha256 ${got} does not match the manifest (${f.sha256}); the bundle is corrupt`, 'E_BUNDLE_CORRUPT', p);
  }
  return m;
}

export function readLabels(dir: string, m: BundleManifest): Map<number, FeatureLabel> {
  const file = path.join(dir, m.labels.file);
  const out = new Map<number, FeatureLabel>();
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const l = JSON.parse(line) as FeatureLabel;
        out.set(l.id, l);
      } catch (e) {
        throw new ModelError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`, 'E_BUNDLE', file);
      }
    });
  return out;
}

/** The bundle shipped in the extension's models/ folder for a base model. */
export function defaultBundleDir(modelId: string): string | undefined {
  for (const base of [path.join(__dirname, '..', 'models'), path.join(__dirname, '..', '..', 'models'), path.join(__dirname, '..', '..', '..', 'models')]) {
    const dir = path.join(base, modelId);
    if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  }
  return undefined;
}
