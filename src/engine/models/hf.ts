/**
 * Hugging Face hub source, by the hub's plain file layout
 * `${endpoint}/${repo}/resolve/${revision}/${file}`. Rather than list the repo
 * (an API that plain mirrors do not serve) we ask for the files the engine
 * reads: required ones must exist, optional ones may 404.
 */
import * as path from 'path';
import { ModelError } from '../../core/errors';
import type { ModelFileInfo, ProgressEvent } from '../../protocol/worker';
import { throwIfAborted } from './cache';
import { contentLength, httpError, httpGet, saveBody } from './http';
import { OPTIONAL_FILES, REQUIRED_FILES } from './registry';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export function hfEndpoint(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (option || env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT).replace(/\/+$/, '');
}

export function hfFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

export interface HfFetch {
  repo: string;
  revision: string;
  endpoint?: string;
  destDir: string;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

export async function fetchHfRepo(o: HfFetch): Promise<Record<string, ModelFileInfo>> {
  const endpoint = hfEndpoint(o.endpoint);
  // A token lets a user reach gated or private repos; never required.
  const token = process.env.HF_TOKEN;
  const headers = token ? { authorization: `Bearer ${token}` } : undefined;
  const files: Record<string, ModelFileInfo> = {};
  const wanted: [string, boolean][] = [...REQUIRED_FILES.map((f): [string, boolean] => [f, true]), ...OPTIONAL_FILES.map((f): [string, boolean] => [f, false])];
  for (const [file, required] of wanted) {
    throwIfAborted(o.signal);
    const url = hfFileUrl(endpoint, o.repo, o.revision, file);
    const res = await httpGet(url, o.signal, headers);
    if (res.status === 404 && !required) {
      await res.body?.cancel().catch(() => undefined);
      continue;
    }
    if (res.status === 404) {
      throw new ModelError(`Hugging Face repo ${o.repo}@${o.revision} has no ${file} (GET ${url}: HTTP 404)`, 'E_MISSING_FILE', url);
    }
    if (!res.ok) throw httpError(url, res);
    const total = contentLength(res);
    o.onProgress?.({ phase: 'download', done: 0, total, message: file });
    files[file] = await saveBody(url, res, path.join(o.destDir, ...file.split('/')), o.signal, (n) =>
      o.onProgress?.({ phase: 'download', done: n, total, message: file }),
    );
  }
  return files;
}
