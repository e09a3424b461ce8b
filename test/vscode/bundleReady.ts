/**
 * What the worker-backed host suites need: the default bundle inside the
 * extension and its model in the configured cache folder (the machine may have
 * no network). Returns why they cannot run, or undefined when they can.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { entryDir, MANIFEST_NAME } from '../../src/engine/models/cache';

export const DEFAULT_MODEL = 'all-MiniLM-L6-v2';

export function missingForWorkerTests(extensionPath: string, model = DEFAULT_MODEL): string | undefined {
  const bundle = path.join(extensionPath, 'models', model, 'manifest.json');
  if (!fs.existsSync(bundle)) return `no bundle at ${bundle}`;
  const cacheDir = vscode.workspace.getConfiguration('xetrieval').get<string>('cacheFolder', '');
  if (cacheDir === '' || !fs.existsSync(path.join(entryDir(cacheDir, model), MANIFEST_NAME))) return `${model} is not in the cache folder "${cacheDir}" (set XETRIEVAL_CACHE_DIR)`;
  return undefined;
}
