/**
 * "Xetrieval: Modulate with IMRNN Adapter…" in a real extension host with the
 * real worker: SciFact's sample pairs are explained, re-ranked with the
 * released scifact adapter (metrics before = the file's own, after from the
 * worker; on SciFact this adapter makes the ranking worse, and the test says
 * so rather than expecting a gain), a case's Modulation section reaches the
 * panel's webview, and bad adapters are refused naming the file and the
 * tensor, leaving the good adapter set.
 *
 * Needs the bundle, the model (XETRIEVAL_CACHE_DIR) and the shared SciFact
 * sample and adapters; skipped, saying why, without them.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { XetrievalApi } from '../../src/extension/api';
import type { CaseResult, EditorFlows, ModulationResult } from '../../src/extension/editorFlows';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { ExplanationPanel } from '../../src/extension/panel';
import { saveImrnnAdapter } from '../../src/engine/modulation/adapter';
import type { PanelLog } from '../../src/protocol/webview';
import { tinyAdapter } from '../unit/helpers/imrnn';
import { missingForWorkerTests } from './bundleReady';

const EXTENSION_ID = 'xetrieval.xetrieval';
const MODEL = 'all-MiniLM-L6-v2';
const SHARED = process.env.XETRIEVAL_SHARED ?? '/work/shared';
const ADAPTER = path.join(SHARED, 'models', 'imrnn-minilm', 'imrnns-minilm-scifact.safetensors');
const SAMPLE = path.join(SHARED, 'data', 'scifact', 'sample_pairs.jsonl');

const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;

async function waitFor(cond: () => boolean, what: string, ms = 120_000): Promise<void> {
  for (const deadline = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
  }
}

describe('modulate with an IMRNN adapter', function () {
  this.timeout(600_000);
  let flows: EditorFlows;
  let panel: ExplanationPanel;
  let tmp: string;
  let pairs: vscode.Uri;
  const logs: PanelLog[] = [];

  before(async function () {
    const ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID)!;
    const api = await ext.activate();
    flows = api.flows;
    panel = api.panel;
    const missing = missingForWorkerTests(ext.extensionPath, MODEL) ?? (!fs.existsSync(ADAPTER) ? `${ADAPTER} is missing` : !fs.existsSync(SAMPLE) ? `${SAMPLE} is missing` : undefined);
    if (missing) {
      console.log(`  skipping: ${missing}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-modulate-'));
    pairs = vscode.Uri.file(path.join(tmp, 'scifact-sample.jsonl'));
    fs.copyFileSync(SAMPLE, pairs.fsPath);
    panel.onDidLog((l) => logs.push(l));
  });

  after(async () => {
    if (!tmp) return;
    await run('xetrieval.clearModulationAdapter');
    for (const f of flows.snapshot().files) await run('xetrieval.closeEvalFile', f.file);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('re-ranks the loaded eval file: metrics before are the file\'s own, after come from the adapter; a case gets its Modulation section', async () => {
    const r = await run<EvalRunResult>('xetrieval.explainEvalFile', pairs);
    assert.strictEqual(r.status, 'ok', r.message);
    const base = flows.snapshot().baseMetrics;
    const m = await run<ModulationResult>('xetrieval.modulateWithAdapter', ADAPTER);
    assert.strictEqual(m.status, 'ok', m.message);
    assert.strictEqual(m.files?.length, 1);
    const fm = m.files![0].metrics;
    assert.strictEqual(fm.queries, 100);
    for (const k of ['ndcg@10', 'mrr@10', 'recall@100']) assert.ok(Math.abs(fm.before[k] - base[k]) < 1e-3, `${k}: ${fm.before[k]} vs the file's ${base[k]}`);
    assert.match(m.message!, /NDCG@10 0\.\d{3} → 0\.\d{3} \([+−]0\.\d{3}\) · MRR@10 .* · Recall@100 /);
    // the released scifact adapter lowers SciFact (as the CLI measured on the full test split): said, not hidden
    assert.ok(fm.after['ndcg@10'] < fm.before['ndcg@10'], `NDCG@10 ${fm.before['ndcg@10']} → ${fm.after['ndcg@10']}`);
    console.log(`    ${m.message}`);

    // a failing case: its relevant document, below a non-relevant one
    const tree = flows.snapshot(1000).tree;
    const q = tree.find((n) => n.failing) ?? tree[0];
    const key = (q.children!.find((c) => c.failing) ?? q.children![0]).key;
    logs.length = 0;
    const opened = await run<CaseResult>('xetrieval.openCase', key, pairs.toString());
    assert.strictEqual(opened.status, 'ok', opened.message);
    await waitFor(() => flows.shownCase?.modulation?.status === 'ready', 'the case\'s modulation measured');
    const mod = flows.shownCase!.modulation!;
    assert.strictEqual(mod.adapterPath, ADAPTER);
    const e = mod.explanation!;
    assert.strictEqual(`${e.query_id}\u0000${e.doc_id}`.length > 1, true);
    assert.strictEqual(e.query_id, flows.shownCase!.pair.query_id);
    assert.strictEqual(e.doc_id, flows.shownCase!.pair.doc_id);
    assert.strictEqual(e.rankBefore, opened.rank, 'rank before is the Cases view\'s');
    assert.ok(Math.abs(e.scoreBefore - opened.score!) < 1e-3, `${e.scoreBefore} vs ${opened.score}`);
    assert.ok(e.sae && e.query.tokens.length === 8 && e.doc.tokens.length === 8);
    assert.ok(e.query.amplified.every((f) => f.delta > 0 && f.label.length > 0));
    assert.ok(e.doc.suppressed.every((f) => f.delta < 0 && f.label.length > 0));
    assert.deepStrictEqual(mod.fileMetrics, fm);
    // the webview painted it (it logs each modulation it shows)
    await waitFor(() => logs.some((l) => l.message === `modulation ready for ${e.query_id}/${e.doc_id}`), 'the webview showed the modulation', 30_000);
    console.log(`    case ${e.query_id}/${e.doc_id}: rank ${e.rankBefore} → ${e.rankAfter} of ${e.candidates}, similarity ${e.scoreBefore.toFixed(3)} → ${e.scoreAfter.toFixed(3)}; query +${e.query.amplified[0]?.label} −${e.query.suppressed[0]?.label}`);
  });

  it('refuses a bad adapter naming the file and the tensor, and keeps the adapter that was set', async () => {
    const cut = path.join(tmp, 'cut.safetensors');
    const bytes = fs.readFileSync(ADAPTER);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    const r = await run<ModulationResult>('xetrieval.modulateWithAdapter', vscode.Uri.file(cut));
    assert.strictEqual(r.status, 'error');
    assert.match(r.message!, /cut\.safetensors: tensor "[a-z_.0-9]+" ends at byte \d+ but the file has \d+ bytes/);

    const six = path.join(tmp, 'six.safetensors');
    saveImrnnAdapter(six, tinyAdapter(), {});
    const d = await run<ModulationResult>('xetrieval.modulateWithAdapter', six);
    assert.strictEqual(d.status, 'error');
    assert.strictEqual(d.code, 'E_ADAPTER_DIM');
    assert.match(d.message!, /six\.safetensors: tensor "projector\.weight": has shape \[4, 6\]: the adapter takes 6-dimensional embeddings but the encoder gives 384/);
    // the panel still reads the case through the good adapter
    assert.strictEqual(flows.shownCase?.modulation?.adapterPath, ADAPTER);
  });
});
