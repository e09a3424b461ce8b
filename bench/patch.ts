/**
 * Head patching of one pair (every layer × head, each head's output at all
 * positions) on the CPU, in-process: all 72 patches in one batched
 * onnxruntime run against one run per patch, the same hooked graph. Also the
 * unpatched pass of the hooked graph (read-only, and patchable with every
 * mask false) against the default graph.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Encoder } from '../src/engine/encoder';
import { scifactAbstracts } from './encoder';
import { defaultCacheDir } from '../src/engine/models/cache';
import { ensureModel } from '../src/engine/models/pull';
import { HookedEncoder } from '../src/engine/patching/hooked';
import { hookName } from '../src/engine/bert/graph';
import { patchPair } from '../src/engine/patching/patch';
import { parseMechirRow } from '../src/core/patching';

const TSV = path.resolve(__dirname, '..', '..', 'shared', 'data', 'mechir-axioms', 'tasb_TFC1_topk_4000.tsv');

export interface PatchBenchResult {
  pair: string;
  tokens: number;
  patches: number;
  batched: { medianS: number; runsS: number[]; onnxRuns: number };
  perPatch: { medianS: number; runsS: number[]; onnxRuns: number };
  speedup: number;
  maxAbsDiff: number;
  /** one document through the default graph and the hooked graph (no patch), median ms of `n` */
  unpatched: { defaultMs: number; hookedMs: number; patchableMs: number };
  /** what \`bench -- encoder\` measures: SciFact documents in batches of 32 through each graph, texts/s (medians of 3, interleaved) */
  throughput: { texts: number; defaultPerS: number; hookedPerS: number };
  load: number[];
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchPatch(rounds = 3): Promise<PatchBenchResult> {
  const dir = (await ensureModel({ model: 'all-MiniLM-L6-v2', cacheDir: process.env.XETRIEVAL_CACHE_DIR || defaultCacheDir() })).dir;
  const lines = fs.readFileSync(TSV, 'utf8').split('\n');
  const header = lines[0].split('\t');
  // a passage of typical length (the file's median is ~60 tokens)
  const pair = parseMechirRow(lines[21], header, { file: TSV, line: 22 });
  const enc = await HookedEncoder.load(dir);
  const plain = await Encoder.load(dir, { provider: 'cpu' });
  const load0 = os.loadavg()[0];
  const time = async (batched: boolean) => {
    const t = process.hrtime.bigint();
    const r = await patchPair(enc, pair.query, pair.doc, pair.perturbed_doc!, { granularities: ['heads'], batched });
    return { s: Number(process.hrtime.bigint() - t) / 1e9, r };
  };
  await time(true); // warm-up
  const b: number[] = [];
  const p: number[] = [];
  let rb, rp;
  for (let i = 0; i < rounds; i++) {
    const x = await time(true);
    b.push(x.s);
    rb = x.r;
    const y = await time(false);
    p.push(y.s);
    rp = y.r;
  }
  const fb = rb!.heads!.flat();
  const fp = rp!.heads!.flat();
  const maxAbsDiff = Math.max(...fb.map((v, i) => Math.abs(v - fp[i])));
  const ids = enc.tokenize(pair.doc, 'document').ids;
  const dms: number[] = [];
  const hms: number[] = [];
  const pms: number[] = [];
  // the patchable graph with every mask all false (what a patch run's unpatched rows cost)
  const none = new Map(enc.hookPoints().map((h) => [hookName(h.layer, h.kind), new Uint8Array(ids.length * (h.kind === 'z' ? enc.heads : 1))]));
  const tokenized = () => enc.tokenize(pair.doc, 'document').ids;
  for (let i = 0; i < 41; i++) {
    let t = process.hrtime.bigint();
    await plain.encode([pair.doc], { kind: 'document' });
    dms.push(Number(process.hrtime.bigint() - t) / 1e6);
    // tokenized here too, as the default encoder does inside encode
    t = process.hrtime.bigint();
    await enc.run({ ids: [tokenized()] });
    hms.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    await enc.run({ ids: [tokenized()], masks: none });
    pms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  // throughput as `bench -- encoder` measures it: SciFact documents, batches of 32 (the same batches for both graphs)
  const docs = scifactAbstracts(128);
  const batches: { ids: number[][]; attention: number[][] }[] = [];
  for (let i = 0; i < docs.length; i += 32) {
    const toks = docs.slice(i, i + 32).map((d) => enc.tokenize(d, 'document').ids);
    const width = Math.max(...toks.map((t) => t.length));
    batches.push({ ids: toks.map((t) => [...t, ...new Array<number>(width - t.length).fill(0)]), attention: toks.map((t) => t.map(() => 1).concat(new Array<number>(width - t.length).fill(0))) });
  }
  const dt: number[] = [];
  const ht: number[] = [];
  for (let round = 0; round < 3; round++) {
    let t = process.hrtime.bigint();
    await plain.encode(docs, { kind: 'document', batchSize: 32 });
    dt.push(Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    for (const b of batches) await enc.run({ ids: b.ids, attention: b.attention });
    ht.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  await enc.release();
  await plain.release();
  return {
    pair: `${pair.query_id}/${pair.doc_id}`,
    tokens: rb!.tokens.length,
    patches: rb!.patched_rows,
    batched: { medianS: median(b), runsS: b, onnxRuns: rb!.runs },
    perPatch: { medianS: median(p), runsS: p, onnxRuns: rp!.runs },
    speedup: median(p) / median(b),
    maxAbsDiff,
    unpatched: { defaultMs: median(dms), hookedMs: median(hms), patchableMs: median(pms) },
    throughput: { texts: docs.length, defaultPerS: docs.length / median(dt), hookedPerS: docs.length / median(ht) },
    load: [load0, os.loadavg()[0]],
  };
}
