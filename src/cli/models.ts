/**
 * `xetrieval models list`: what the model cache holds and where each entry
 * came from (source; for a local folder the digest of its files when copied),
 * with sizes checked, or every sha256 with --verify. Reads the cache folder
 * directly: no worker, no network.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../core/errors';
import { MANIFEST_NAME, openCachedModel, readManifest } from '../engine/models/cache';
import { CliContext } from './context';
import { formatBytes } from './progress';

export interface ListOptions {
  verify: boolean;
}

export interface ListedEntry {
  folder: string;
  model?: string;
  source?: string;
  sourceSha256?: string;
  weightsSha256?: string;
  bytes?: number;
  fetchedAt?: string;
  /** 'ok', or what is wrong */
  status: string;
}

async function entryStatus(dir: string, files: Record<string, { size: number }>): Promise<string> {
  for (const [rel, info] of Object.entries(files)) {
    const st = await fsp.stat(path.join(dir, rel)).catch(() => undefined);
    if (!st?.isFile()) return `incomplete: ${rel} is missing`;
    if (st.size !== info.size) return `corrupt: ${rel} has ${st.size} bytes, expected ${info.size}`;
  }
  return 'ok';
}

export async function listModels(cacheDir: string, opts: ListOptions): Promise<ListedEntry[]> {
  const root = path.join(cacheDir, 'models');
  const names = (await fsp.readdir(root).catch(() => [] as string[])).sort();
  const out: ListedEntry[] = [];
  for (const folder of names) {
    const dir = path.join(root, folder);
    if (!(await fsp.stat(dir).catch(() => undefined))?.isDirectory()) continue;
    let entry: ListedEntry;
    try {
      const m = await readManifest(dir);
      entry = {
        folder: dir,
        model: m.model,
        source: m.source,
        sourceSha256: m.sourceSha256,
        weightsSha256: m.files['model.safetensors']?.sha256,
        bytes: Object.values(m.files).reduce((a, f) => a + f.size, 0),
        fetchedAt: m.fetchedAt,
        status: await entryStatus(dir, m.files),
      };
      if (opts.verify && entry.status === 'ok') {
        try {
          await openCachedModel(cacheDir, m.model);
          entry.status = 'ok (verified)';
        } catch (e) {
          entry.status = e instanceof ModelError ? e.message : String(e);
        }
      }
    } catch (e) {
      entry = { folder: dir, status: e instanceof ModelError && e.code === 'E_CACHE_MISSING' ? `incomplete: no ${MANIFEST_NAME}` : (e as Error).message };
    }
    out.push(entry);
  }
  return out;
}

export async function runModelsList(ctx: CliContext, opts: ListOptions): Promise<number> {
  const entries = await listModels(ctx.globals.cacheDir, opts);
  if (entries.length === 0) {
    ctx.io.stdout.write(`no models in ${ctx.globals.cacheDir}\n`);
    return 0;
  }
  const lines = entries.map((e) => {
    const head = e.model ? `${e.model}  ${formatBytes(e.bytes ?? 0)}  ${e.status}` : `${path.basename(e.folder)}  ${e.status}`;
    const from = e.source ? `  from ${e.source}${e.sourceSha256 ? ` (content sha256:${e.sourceSha256})` : ''}${e.fetchedAt ? `, ${e.fetchedAt}` : ''}\n` : '';
    const weights = e.weightsSha256 ? `  weights sha256:${e.weightsSha256}\n` : '';
    return `${head}\n${from}${weights}  ${e.folder}\n`;
  });
  ctx.io.stdout.write(lines.join(''));
  return entries.some((e) => !e.status.startsWith('ok')) ? 1 : 0;
}
