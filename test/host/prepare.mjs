// Shared by run.mjs and run-electron.mjs: build the bundles and a test workspace.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const testsEntry = path.join(root, 'out/test/vscode/index.js');

/** `npm run build` (dist/*.js), then every test/vscode/*.ts bundled to out/test/vscode/*.js. */
export async function build() {
  const built = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('scripts/build.mjs failed');
  const testDir = path.join(root, 'test/vscode');
  const outDir = path.dirname(testsEntry);
  fs.rmSync(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: fs.readdirSync(testDir).filter((f) => f.endsWith('.ts')).map((f) => path.join(testDir, f)),
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
}

/** A workspace folder under `scratch` whose xetrieval.cacheFolder is $XETRIEVAL_CACHE_DIR (default: scratch/cache). */
export function makeWorkspace(scratch) {
  const workspace = path.join(scratch, 'workspace');
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  const cacheDir = path.resolve(process.env.XETRIEVAL_CACHE_DIR || path.join(scratch, 'cache'));
  fs.writeFileSync(path.join(workspace, '.vscode/settings.json'), JSON.stringify({ 'xetrieval.cacheFolder': cacheDir }, null, 2));
  return { workspace, cacheDir };
}
