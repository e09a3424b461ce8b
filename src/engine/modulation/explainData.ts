/**
 * What `modulate --explain` reads besides the adapter: the encoder's
 * token-embedding table (word_embeddings of the cached model safetensors and
 * its vocab.txt) and the explanation bundle's SAE encoder and labels. Plain
 * file reads, no onnxruntime: the SAE is only read here, a few matrix-vector
 * products per explained query.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../../core/errors';
import type { SaeReader, TokenTable } from '../../core/modulationExplain';
import { readLabels, readManifest } from '../bundle';
import { SafetensorsFile } from '../safetensors';

/** Special and unused vocabulary entries ([CLS], [unused12], …) never name a shift. */
const SPECIAL = /^\[[^\]]*\]$/;

export function loadTokenTable(modelDir: string): TokenTable {
  const file = path.join(modelDir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new ModelError(`${file}: missing (run "xetrieval models pull" for the model first)`, 'E_NOT_FOUND', file);
  const st = SafetensorsFile.open(file);
  const name = [...st.tensors.keys()].find((n) => n.endsWith('embeddings.word_embeddings.weight'));
  if (!name) throw new ModelError(`${file}: tensor "embeddings.word_embeddings.weight" is missing: not a BERT model`, 'E_SAFETENSORS', file);
  const [V, D] = st.entry(name).shape;
  const vocabFile = path.join(modelDir, 'vocab.txt');
  if (!fs.existsSync(vocabFile)) throw new ModelError(`${vocabFile}: missing`, 'E_NOT_FOUND', vocabFile);
  const tokens = fs.readFileSync(vocabFile, 'utf8').split(/\r?\n/);
  if (tokens.length && tokens[tokens.length - 1] === '') tokens.pop();
  if (tokens.length !== V) throw new ModelError(`${vocabFile}: ${tokens.length} tokens but tensor "${name}" has ${V} rows`, 'E_MODEL', vocabFile);
  return { vectors: st.float32(name), dim: D, tokens, skip: (t) => SPECIAL.test(t) };
}

export interface BundleReader {
  sae: SaeReader;
  label(feature: number): string | undefined;
}

export function loadBundleReader(bundleDir: string): BundleReader {
  const m = readManifest(bundleDir);
  const file = path.join(bundleDir, m.sae.file);
  const st = SafetensorsFile.open(file);
  const prefix = ['', 'module.', '_orig_mod.'].find((p) => st.has(`${p}encoder.weight`));
  if (prefix === undefined) throw new ModelError(`${file}: tensor "encoder.weight" is missing: not a TopK SAE`, 'E_SAFETENSORS', file);
  const [F, D] = st.entry(`${prefix}encoder.weight`).shape;
  const labels = readLabels(bundleDir, m);
  return {
    sae: { dim: D, dictSize: F, k: m.sae.k, wEnc: st.float32(`${prefix}encoder.weight`), bEnc: st.float32(`${prefix}encoder.bias`, [F]), bDec: st.float32(`${prefix}b_dec`, [D]) },
    label: (f) => labels.get(f)?.label,
  };
}
