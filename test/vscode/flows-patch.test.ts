/**
 * "Patch This Case…" inside the real extension host, with the real model:
 * examples/pairs.jsonl explained as an eval file, a case of the Cases view
 * patched with TFC1 (the engine's own term), and what the patching view
 * painted (layers × positions per block, layers × heads, the depths' top
 * tokens) checked against the worker's `patch` run on the same perturbed
 * pair; then a pair given directly with LNC1. Skipped (saying why) without
 * the bundle or the cached model, like the other worker-backed flow tests.
 */
import * as assert from 'assert';
import * as path from 'path';
import * as vscode from 'vscode';
import { caseKey } from '../../src/core/cases';
import { DEFAULT_PATCH_SEED, Idf, perturb } from '../../src/core/patching';
import type { XetrievalApi } from '../../src/extension/api';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { PatchCaseResult } from '../../src/extension/patchView';
import type { FromPatchView } from '../../src/protocol/patchView';
import type { PairPatch } from '../../src/protocol/worker';
import { missingForWorkerTests } from './bundleReady';

const MODEL = 'all-MiniLM-L6-v2';
const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;
type Rendered = Extract<FromPatchView, { type: 'log' }>;

const QUERY = 'How long do I boil an egg so the yolk stays runny?';
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('patch view', function () {
  this.timeout(600_000);
  let api: XetrievalApi;
  let pairsFile: string;

  before(async function () {
    const ext = vscode.extensions.getExtension<XetrievalApi>('xetrieval.xetrieval')!;
    api = await ext.activate();
    pairsFile = path.join(ext.extensionPath, 'examples', 'pairs.jsonl');
    const missing = missingForWorkerTests(ext.extensionPath, MODEL) ?? (api.patch ? undefined : 'api.patch is missing');
    if (missing) {
      console.log(`  skipping patch view: ${missing}`);
      this.skip();
    }
  });

  const nextPainted = () =>
    new Promise<Rendered>((resolve) => {
      const sub = api.patch.onDidLog((m) => {
        if (m.rendered) {
          sub.dispose();
          resolve(m);
        }
      });
    });

  it('from a case of the Cases view with TFC1: the painted maps are the engine’s (layers × positions per block, layers × heads)', async () => {
    const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(pairsFile));
    assert.strictEqual(r.status, 'ok', r.message);
    const painted = nextPainted();
    // the Cases view's context menu passes the tree node
    const node = { kind: 'case', file: pairsFile, key: caseKey('cook-soft-egg', 'cook-soft-egg-timing'), queryId: 'cook-soft-egg' };
    const c = await run<PatchCaseResult>('xetrieval.patchCase', node, { axiom: 'TFC1' });
    assert.strictEqual(c.status, 'ok', c.message);
    const s = c.state!;
    assert.strictEqual(s.query_id, 'cook-soft-egg');
    assert.strictEqual(s.doc_id, 'cook-soft-egg-timing');
    assert.strictEqual(s.query, QUERY);

    // the default term is the one `xetrieval patch --axiom TFC1` draws for this pair
    const auto = perturb('TFC1', { query_id: 'cook-soft-egg', doc_id: 'cook-soft-egg-timing', query: s.query, doc: s.doc }, { seed: DEFAULT_PATCH_SEED });
    assert.ok(!('error' in auto));
    assert.strictEqual(s.term, auto.term);
    assert.strictEqual(s.perturbed, auto.text);

    // the worker's own run on the same perturbed pair
    const ref = { model: MODEL, precision: 'fp32' as const, cacheDir: vscode.workspace.getConfiguration('xetrieval').get<string>('cacheFolder', '') };
    const direct = await api.client.request('patch', { ref, items: [{ query: s.query, doc: s.doc, perturbed: s.perturbed }], granularities: ['block', 'heads'] });
    const o = direct.result.results[0];
    assert.ok(o && 'ok' in o, JSON.stringify(o));
    const e: PairPatch = o.ok;
    const L = direct.result.layers;
    const H = direct.result.heads;
    assert.strictEqual(L, 6);
    assert.strictEqual(H, 12);
    assert.deepStrictEqual(s.maps.tokens, e.tokens);
    assert.deepStrictEqual(s.maps.changed, e.changed);
    assert.ok(e.changed.length >= 1);
    assert.ok(Math.abs(s.maps.score_perturbed - e.score_perturbed) < 1e-6);
    const eBlock = e.block!.flat(2);
    const eHeads = e.heads!.flat();
    const maxDiff = Math.max(...s.maps.block.flat(2).map((v, i) => Math.abs(v - eBlock[i])), ...s.maps.heads.flat().map((v, i) => Math.abs(v - eHeads[i])));
    assert.ok(maxDiff < 1e-5, `view maps vs engine: max |Δ| ${maxDiff}`);

    // what the page drew
    const shown = await painted;
    const P = e.tokens.length;
    const g = shown.rendered!;
    assert.deepStrictEqual({ layers: g.layers, positions: g.positions, heads: g.heads, cells: g.cells }, { layers: L, positions: P, heads: H, cells: 3 * L * P + L * H });
    assert.ok(Math.abs(g.blockSum - sum(eBlock)) < 1e-4, `block sum painted ${g.blockSum} vs engine ${sum(eBlock)}`);
    assert.ok(Math.abs(g.headSum - sum(eHeads)) < 1e-4, `head sum painted ${g.headSum} vs engine ${sum(eHeads)}`);
    assert.strictEqual(g.depths, L + 1, 'embeddings and every layer’s output');
    // on a real run: at layer 0 the residual stream is the embeddings, the same in both runs except at the changed positions
    const l0 = e.block![0][0];
    const unchanged = l0.filter((_, p) => !e.changed.includes(p));
    assert.ok(Math.max(...unchanged.map(Math.abs)) < 1e-4, `resid_pre at unchanged positions, layer 0: ${unchanged}`);
    assert.ok(e.changed.every((p) => Math.abs(l0[p]) > 0.01), `resid_pre at the changed positions, layer 0: ${e.changed.map((p) => l0[p])}`);
    assert.ok(s.depths.every((d) => d.query_top.length === 8 && d.doc_top.length === 8));
  });

  it('TDC on a case key: the query term with the highest IDF over the query’s candidates', async () => {
    const painted = nextPainted();
    const key = caseKey('cook-soft-egg', 'cook-green-ring');
    const c = await run<PatchCaseResult>('xetrieval.patchCase', key, { axiom: 'TDC' });
    assert.strictEqual(c.status, 'ok', c.message);
    const s = c.state!;
    assert.strictEqual(s.doc_id, 'cook-green-ring');
    const docs = (await api.flows.compare.candidates('cook-soft-egg'))!.candidates.map((x) => x.doc);
    assert.strictEqual(docs.length, 5);
    const want = perturb('TDC', { query_id: 'cook-soft-egg', doc_id: 'cook-green-ring', query: s.query, doc: s.doc }, { idf: Idf.fromTexts(docs) });
    assert.ok(!('error' in want));
    assert.strictEqual(s.term, want.term);
    assert.strictEqual(s.perturbed, `${s.doc} ${want.term}`);
    assert.match(s.termNote!, /highest IDF over the query's 5 candidate/);
    const g = (await painted).rendered!;
    assert.deepStrictEqual([g.layers, g.positions, g.heads], [s.layers, s.maps.tokens.length, s.heads]);
  });

  it('a pair given directly, LNC1: irrelevant text appended, maps painted', async () => {
    const painted = nextPainted();
    const doc = 'Boil the egg for six minutes for a runny yolk.';
    const c = await run<PatchCaseResult>('xetrieval.patchCase', { query: QUERY, doc }, { axiom: 'LNC1' });
    assert.strictEqual(c.status, 'ok', c.message);
    const s = c.state!;
    assert.ok(s.perturbed.startsWith(`${doc} `) && s.perturbed.length > doc.length + 20);
    assert.strictEqual(s.term, undefined);
    const g = (await painted).rendered!;
    assert.strictEqual(g.positions, s.maps.tokens.length);
    assert.strictEqual(g.cells, 3 * s.layers * g.positions + s.layers * s.heads);
    assert.ok(s.maps.changed.length > 5, 'the appended sentence changes several positions');
  });
});
