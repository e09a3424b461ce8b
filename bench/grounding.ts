/**
 * REPORT.md's per-set checks (label grounding of the listed top 5, its
 * shuffled baseline, pairs with a listed feature) run on the committed bundle
 * as it is, without retraining: for a change to what is listed (e.g. minor or
 * weakly active features) the figures can be compared with the REPORT's,
 * which the same check code produced on the same bundle at training time.
 *
 *   npm run bench -- grounding
 */
import * as fs from 'fs';
import * as path from 'path';
import { Explainer } from '../src/engine/explainer';
import { Encoder } from '../src/engine/encoder';
import { readLabels, readManifest } from '../src/engine/bundle';
import { InternalizerSession, loadInternalizer } from '../src/engine/internalizer/model';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import { readCheckPairs } from '../src/engine/train/bundleTrainer';
import { runChecks, SetChecks } from '../src/engine/train/checks';
import { onnxSaeBackend } from '../src/engine/train/saeBackend';
import { wordnetLemmas, wordnetSynonyms } from '../src/train/broadCorpus';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.resolve(ROOT, '..', 'shared', 'data');

export interface GroundingBench {
  sets: { name: string; relevant: number; listed: number; grounding: number; shuffled: number; anyShare: number }[];
  synonyms: boolean;
}

export async function benchGrounding(): Promise<GroundingBench> {
  const bundleDir = path.join(ROOT, 'models', 'all-MiniLM-L6-v2');
  const manifest = readManifest(bundleDir);
  const pulled = await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir: process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir() });
  const encoder = await Encoder.load(pulled.dir, { provider: 'cpu' });
  const sae = await onnxSaeBackend.session(onnxSaeBackend.load(path.join(bundleDir, manifest.sae.file)), 'cpu');
  const views = await InternalizerSession.create(new Map(manifest.views.map((v) => [v.name, loadInternalizer(path.join(bundleDir, v.file)).weights])), 'cpu');
  const explainer = new Explainer(sae, views, readLabels(bundleDir, manifest));
  const lemmas = wordnetLemmas('/');
  const synonyms = lemmas.length ? wordnetSynonyms(lemmas) : undefined;
  const embed = async (texts: string[], kind: 'query' | 'document') => (await encoder.encode(texts, { kind, batchSize: 32 })).embeddings;
  const sets = [
    { name: 'python-faq (held out)', file: path.join(ROOT, '.cache', 'train', 'corpus', 'python-faq.jsonl') },
    { name: 'examples/pairs.jsonl', file: path.join(ROOT, 'examples', 'pairs.jsonl') },
    ...['scifact', 'nfcorpus', 'msmarco-dl19-subset'].map((d) => ({ name: `${d}/sample_pairs`, file: path.join(DATA, d, 'sample_pairs.jsonl') })),
  ].filter((s) => fs.existsSync(s.file));
  const out: GroundingBench = { sets: [], synonyms: synonyms !== undefined };
  try {
    for (const s of sets) {
      const c: SetChecks = await runChecks(s.name, false, readCheckPairs(s.file), explainer, embed, { synonyms, seed: 13 });
      out.sets.push({ name: s.name, relevant: c.relevant, listed: c.relevantWithListed, grounding: c.grounding.grounding, shuffled: c.grounding.shuffled, anyShare: c.groundingAnyShare.grounding });
    }
  } finally {
    await Promise.all([encoder.release(), sae.release?.(), views.release()]);
  }
  return out;
}

export function printGrounding(r: GroundingBench): void {
  console.log(`grounding: the committed bundle's listed top 5 on relevant pairs (REPORT.md's check, ${r.synonyms ? 'WordNet synonyms allowed' : 'no WordNet here: exact words only'}), CPU fp32`);
  for (const s of r.sets) {
    console.log(`  ${s.name}: grounding ${s.grounding.toFixed(3)} (shuffled ${s.shuffled.toFixed(3)}), pairs with a listed feature ${s.listed}/${s.relevant}; top 5 of any share ${s.anyShare.toFixed(3)}`);
  }
}
