#!/usr/bin/env node
// Checks CUDA fp32 and fp16 against the CPU (parity and speed) in one run; see
// bench/cuda.ts. Needs an NVIDIA GPU and onnxruntime-node's CUDA build (this
// repo's .npmrc skips it: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`).
//
//   XETRIEVAL_CACHE_DIR=... node scripts/check-cuda.mjs [--n 1000]
import { execFileSync } from 'child_process';
import * as esbuild from 'esbuild';

execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
await esbuild.build({ entryPoints: ['bench/cuda.ts'], outfile: 'out/check-cuda.js', bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['onnxruntime-node'], logLevel: 'warning' });
execFileSync(process.execPath, ['out/check-cuda.js', ...process.argv.slice(2)], { stdio: 'inherit' });
