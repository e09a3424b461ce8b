// Bundles the extension host, the worker, the CLI and the webview with esbuild.
import * as esbuild from 'esbuild';
import * as fs from 'fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: true, logLevel: 'warning', minify: false };
const nodeCommon = { ...common, platform: 'node', target: 'node20', format: 'cjs', external: ['vscode', 'onnxruntime-node'] };

const entries = [
  { ...nodeCommon, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...nodeCommon, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
  // an encoder lane's thread (src/engine/encoderLanes.ts finds it next to the worker bundle)
  { ...nodeCommon, entryPoints: ['src/engine/lane.ts'], outfile: 'dist/lane.js' },
  { ...nodeCommon, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
];
if (fs.existsSync('webview/main.ts')) {
  entries.push({ ...common, platform: 'browser', target: 'es2022', format: 'iife', entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' });
}
if (fs.existsSync('webview/compare.ts')) {
  entries.push({ ...common, platform: 'browser', target: 'es2022', format: 'iife', entryPoints: ['webview/compare.ts'], outfile: 'dist/compare.js' });
}
if (fs.existsSync('webview/patch.ts')) {
  entries.push({ ...common, platform: 'browser', target: 'es2022', format: 'iife', entryPoints: ['webview/patch.ts'], outfile: 'dist/patch.js' });
}

const present = entries.filter((e) => fs.existsSync(e.entryPoints[0]));
if (watch) {
  for (const e of present) (await esbuild.context(e)).watch();
} else {
  await Promise.all(present.map((e) => esbuild.build(e)));
  console.log(`built ${present.map((e) => e.outfile).join(', ')}`);
}
