// Builds and runs the benchmarks (bench/main.ts) against the bundled worker.
import { execFileSync } from 'child_process';
import * as esbuild from 'esbuild';

execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
await esbuild.build({ entryPoints: ['bench/main.ts'], outfile: 'out/bench.js', bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['onnxruntime-node'], logLevel: 'warning' });
execFileSync(process.execPath, ['out/bench.js', ...process.argv.slice(2)], { stdio: 'inherit' });
