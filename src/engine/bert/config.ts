/**
 * Reads a BERT-family checkpoint folder in the Hugging Face / sentence-
 * transformers layout and decides architecture, pooling, normalisation and the
 * token limit from the model's own files, so nothing is assumed per model.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ModelError } from '../../core/errors';

export type HiddenAct = 'gelu' | 'gelu_tanh' | 'relu';

export interface BertArch {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocab: number;
  eps: number;
  act: HiddenAct;
}

export interface PoolingSpec {
  mode: 'mean' | 'cls';
  normalize: boolean;
}

export interface CheckpointSpec {
  dir: string;
  arch: BertArch;
  pooling: PoolingSpec;
  /** tokens fed at most, specials included */
  maxTokens: number;
}

function readJson(file: string, required: boolean, array = false): Record<string, unknown> | undefined {
  if (!fs.existsSync(file)) {
    if (required) throw new ModelError(`${file}: required file is missing`, 'E_MODEL_FILE', file);
    return undefined;
  }
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v) !== array) throw new Error(array ? 'not a JSON array' : 'not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ModelError(`${file}: not valid JSON (${(e as Error).message})`, 'E_MODEL_FILE', file);
  }
}

function int(cfg: Record<string, unknown>, file: string, field: string, dflt?: number): number {
  const v = cfg[field] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new ModelError(`${file}: field "${field}" must be a positive integer, got ${JSON.stringify(cfg[field])}`, 'E_MODEL_CONFIG', file);
  }
  return v;
}

export function readCheckpointSpec(dir: string): CheckpointSpec {
  const cfgFile = path.join(dir, 'config.json');
  const cfg = readJson(cfgFile, true)!;
  const modelType = String(cfg.model_type ?? 'bert');
  if (modelType !== 'bert') {
    // Only BERT's tensor layout is wired up (MiniLM, bge, e5, gte are all BERT).
    throw new ModelError(`${cfgFile}: field "model_type" is "${modelType}"; only "bert" checkpoints are supported`, 'E_MODEL_CONFIG', cfgFile);
  }
  const actRaw = String(cfg.hidden_act ?? 'gelu');
  const act: HiddenAct | undefined =
    actRaw === 'gelu' ? 'gelu' : actRaw === 'gelu_new' || actRaw === 'gelu_pytorch_tanh' ? 'gelu_tanh' : actRaw === 'relu' ? 'relu' : undefined;
  if (!act) throw new ModelError(`${cfgFile}: field "hidden_act" is "${actRaw}", not supported`, 'E_MODEL_CONFIG', cfgFile);
  if (cfg.position_embedding_type !== undefined && cfg.position_embedding_type !== 'absolute') {
    throw new ModelError(`${cfgFile}: field "position_embedding_type" must be "absolute"`, 'E_MODEL_CONFIG', cfgFile);
  }
  const arch: BertArch = {
    vocabSize: int(cfg, cfgFile, 'vocab_size'),
    hidden: int(cfg, cfgFile, 'hidden_size'),
    layers: int(cfg, cfgFile, 'num_hidden_layers'),
    heads: int(cfg, cfgFile, 'num_attention_heads'),
    intermediate: int(cfg, cfgFile, 'intermediate_size'),
    maxPositions: int(cfg, cfgFile, 'max_position_embeddings'),
    typeVocab: int(cfg, cfgFile, 'type_vocab_size', 2),
    eps: typeof cfg.layer_norm_eps === 'number' ? cfg.layer_norm_eps : 1e-12,
    act,
  };
  if (arch.hidden % arch.heads !== 0) {
    throw new ModelError(`${cfgFile}: hidden_size ${arch.hidden} is not divisible by num_attention_heads ${arch.heads}`, 'E_MODEL_CONFIG', cfgFile);
  }

  // Pooling and normalisation as sentence-transformers would apply them.
  let pooling: PoolingSpec = { mode: 'mean', normalize: true };
  const modules = readJson(path.join(dir, 'modules.json'), false, true) as unknown;
  if (Array.isArray(modules)) {
    const mods = modules as { type?: string; path?: string }[];
    const poolMod = mods.find((m) => String(m.type).endsWith('.Pooling'));
    const normalize = mods.some((m) => String(m.type).endsWith('.Normalize'));
    let mode: 'mean' | 'cls' = 'mean';
    if (poolMod) {
      const pf = path.join(dir, poolMod.path ?? '1_Pooling', 'config.json');
      const pc = readJson(pf, true)!;
      if (pc.pooling_mode_cls_token === true) mode = 'cls';
      else if (pc.pooling_mode_mean_tokens === true) mode = 'mean';
      else throw new ModelError(`${pf}: only CLS or mean pooling is supported`, 'E_MODEL_CONFIG', pf);
    }
    pooling = { mode, normalize };
  }

  const stCfg = readJson(path.join(dir, 'sentence_bert_config.json'), false);
  const tokCfg = readJson(path.join(dir, 'tokenizer_config.json'), false);
  let maxTokens = arch.maxPositions;
  if (stCfg && typeof stCfg.max_seq_length === 'number') maxTokens = Math.min(maxTokens, stCfg.max_seq_length);
  else if (tokCfg && typeof tokCfg.model_max_length === 'number') maxTokens = Math.min(maxTokens, tokCfg.model_max_length);
  return { dir, arch, pooling, maxTokens };
}
