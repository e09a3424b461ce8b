/**
 * (Named to run after extension.test.ts, which needs a worker never started.)
 *
 * Several eval files loaded side by side, in a real extension host with the
 * real worker and bundle: the sequence a user hit (load a SciFact file, open
 * a case, load a FAQ file, move a slider, Reset, CodeLens on the first file),
 * then switching, reloading and closing. The panel must always show one
 * file's case with that file's sliders, metrics and baselines.
 *
 * Needs the bundle and the model in the workspace's cache folder
 * (XETRIEVAL_CACHE_DIR); skipped, saying why, without them.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { XetrievalApi } from '../../src/extension/api';
import type { CaseResult, EditorFlows } from '../../src/extension/editorFlows';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { ExplanationPanel } from '../../src/extension/panel';
import { missingForWorkerTests } from './bundleReady';
import { basisScores } from '../../src/core/explain/steeringBasis';
import { highlightTerms, scoreParts, steeredScore, unrelatedNote } from '../../webview/model';

const EXTENSION_ID = 'xetrieval.xetrieval';
const MODEL = 'all-MiniLM-L6-v2';

const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;

async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  for (const deadline = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
  }
}

function sharedData(extensionPath: string): string {
  const candidates = [path.resolve(extensionPath, '../shared'), path.join(extensionPath, 'shared'), '/work/shared'];
  return path.join(candidates.find((d) => fs.existsSync(path.join(d, 'data'))) ?? candidates[0], 'data');
}

describe('eval files, plural', function () {
  this.timeout(600_000);
  let api: XetrievalApi;
  let flows: EditorFlows;
  let panel: ExplanationPanel;
  let tmp: string;
  let scifact: vscode.Uri;
  let faq: vscode.Uri;
  let requestId = 9000;

  /** What the panel's webview would send when the user moves a slider or presses Reset; resolves once the file's steering has re-ranked with it. */
  const moveSlider = async (id: number, alpha: number): Promise<void> => {
    panel.handleWebviewMessage({ type: 'setAlpha', requestId: ++requestId, id, alpha });
    await waitFor(() => panel.case?.sliders.find((s) => s.id === id)?.alpha === alpha, `slider ${id} at ${alpha}`);
    await flows.steeringIdle();
  };
  const pressReset = async (): Promise<void> => {
    panel.handleWebviewMessage({ type: 'resetSteering', requestId: ++requestId });
    await waitFor(() => panel.case?.sliders.every((s) => s.alpha === 1) === true, 'every α back to 1');
    await flows.steeringIdle();
  };

  before(async function () {
    const ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID)!;
    api = await ext.activate();
    flows = api.flows;
    panel = api.panel;
    const missing = missingForWorkerTests(ext.extensionPath, MODEL);
    if (missing) {
      console.log(`  skipping: ${missing}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-files-'));
    // A SciFact eval file (the sample's first 30 queries) and a documentation FAQ file, as in the report.
    const sample = fs.readFileSync(path.join(sharedData(ext.extensionPath), 'scifact', 'sample_pairs.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
    scifact = vscode.Uri.file(path.join(tmp, 'scifact.jsonl'));
    fs.writeFileSync(scifact.fsPath, sample.slice(0, 60).join('\n') + '\n');
    faq = vscode.Uri.file(path.join(tmp, 'faq.jsonl'));
    fs.copyFileSync(path.join(ext.extensionPath, 'examples', 'pairs.jsonl'), faq.fsPath);
  });

  after(async () => {
    for (const f of flows?.snapshot().files ?? []) await run('xetrieval.closeEvalFile', f.file);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a second file leaves the first file\'s case, sliders, metrics and baselines in the panel; Reset clears the change; CodeLens on the first file still works', async () => {
    // 1. the SciFact file, and one of its cases in the panel
    const a = await run<EvalRunResult>('xetrieval.explainEvalFile', scifact);
    assert.strictEqual(a.status, 'ok', a.message);
    await flows.steeringIdle();
    const sA = flows.snapshot(1000);
    assert.ok(sA.steering.ready, 'steering ready for the SciFact file');
    assert.ok(sA.casesVisible, 'the Cases view opened for the run');
    // the arrow icons of failing candidates say what they mean
    const failingCase = sA.tree.flatMap((q) => q.children!).find((c) => c.failing);
    if (failingCase) assert.match(failingCase.tooltip ?? '', /^(↓ relevant, but ranked below a judged non-relevant document|↑ judged not relevant, but ranked above a relevant document)/);
    const keyA = sA.tree[0].children![0].key!;
    const opened = await run<CaseResult>('xetrieval.openCase', keyA, scifact.toString());
    assert.strictEqual(opened.status, 'ok', opened.message);
    const caseA = panel.case!;
    assert.strictEqual(caseA.file, 'scifact.jsonl');
    const slidersA = caseA.sliders.map((s) => s.id);
    assert.ok(slidersA.length > 0, 'the SciFact file has suggested sliders');
    assert.deepStrictEqual(caseA.baseMetrics, sA.baseMetrics);

    // 2. the FAQ file: both are loaded, the panel keeps the SciFact case with its own sliders and candidates
    const b = await run<EvalRunResult>('xetrieval.explainEvalFile', faq);
    assert.strictEqual(b.status, 'ok', b.message);
    await flows.steeringIdle();
    const sB = flows.snapshot(1000);
    assert.deepStrictEqual(
      sB.files.map((f) => f.label),
      ['scifact.jsonl', 'faq.jsonl'],
    );
    assert.ok(sB.files.every((f) => f.cases > 0));
    const slidersB = sB.steering.sliders.map((s) => s.id);
    assert.notDeepStrictEqual(slidersB, slidersA, 'the two files suggest different sliders (else this test shows nothing)');
    const still = panel.case!;
    assert.strictEqual(still.file, 'scifact.jsonl');
    assert.deepStrictEqual([still.pair.query_id, still.pair.doc_id], JSON.parse(keyA));
    assert.deepStrictEqual(
      still.sliders.map((s) => s.id),
      slidersA,
      'the panel shows the SciFact file\'s sliders',
    );
    assert.deepStrictEqual(
      still.candidates.map((c) => c.docId),
      caseA.candidates.map((c) => c.docId),
      'the candidate list stays',
    );
    assert.deepStrictEqual(still.baseMetrics, sA.baseMetrics);
    assert.deepStrictEqual(still.metrics, sA.baseMetrics);
    assert.strictEqual(sB.panelFile, scifact.fsPath);

    // 3. a slider moves the SciFact file's metrics against its own baseline; Reset brings them back (no ▲ left)
    await moveSlider(slidersA[0], 0);
    assert.deepStrictEqual(panel.case!.baseMetrics, sA.baseMetrics, 'the baseline stays the SciFact file\'s');
    assert.ok(Object.keys(panel.case!.metrics!).every((k) => k in sA.baseMetrics));
    await pressReset();
    assert.deepStrictEqual(panel.case!.metrics, panel.case!.baseMetrics, 'after Reset the metrics are the baseline: no change shown');
    assert.deepStrictEqual(panel.case!.metrics, sA.baseMetrics);

    // 4. CodeLens on the SciFact file: ranks in the titles, and a lens opens the file's case with its metrics
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(scifact));
    const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', scifact)).filter((l) => l.command?.command === 'xetrieval.explainLine');
    assert.strictEqual(lenses.length, 60);
    assert.ok(lenses.every((l) => /Explain · #\d+ · -?\d\.\d{3}/.test(l.command!.title)), lenses[0].command!.title);
    const line = await run<CaseResult>('xetrieval.explainLine', scifact, 2);
    assert.strictEqual(line.status, 'ok', line.message);
    assert.ok(line.rank! >= 1);
    assert.strictEqual(panel.case!.file, 'scifact.jsonl');
    assert.deepStrictEqual(panel.case!.baseMetrics, sA.baseMetrics);
  });

  it('switching to the other file\'s case brings its sliders, metrics and basis; reloading or closing one file leaves the other\'s case alone', async () => {
    const files = flows.snapshot().files;
    assert.strictEqual(files.length, 2);
    // open a FAQ case from the tree (the command its rows carry)
    const notLoaded = await run<CaseResult>('xetrieval.openCase', 'not a key', faq.toString());
    assert.strictEqual(notLoaded.status, 'warning');
    const faqFile = flows.snapshot().files.find((f) => f.label === 'faq.jsonl')!;
    assert.strictEqual(faqFile.file, faq.fsPath);
    await run<CaseResult>('xetrieval.explainLine', faq, 0);
    const sB = flows.snapshot(1000);
    assert.strictEqual(sB.source, faq.fsPath, 'opening a FAQ case makes that file the active one');
    const caseB = panel.case!;
    assert.strictEqual(caseB.file, 'faq.jsonl');
    assert.deepStrictEqual(
      caseB.sliders.map((s) => s.id),
      sB.steering.sliders.map((s) => s.id),
    );
    assert.deepStrictEqual(caseB.baseMetrics, sB.baseMetrics);
    await waitFor(() => flows.steeringBasis !== undefined, 'the FAQ file\'s basis');
    const faqQueries = new Set(fs.readFileSync(faq.fsPath, 'utf8').split('\n').filter((l) => l.trim()).map((l) => (JSON.parse(l) as { query_id: string }).query_id));
    assert.ok(flows.steeringBasis!.queryIds.every((q) => faqQueries.has(q)), 'the panel re-ranks with the FAQ file\'s basis, not SciFact\'s');

    // reloading the SciFact file while the FAQ case is shown changes nothing in the panel
    const again = await run<EvalRunResult>('xetrieval.explainEvalFile', scifact);
    assert.strictEqual(again.status, 'ok', again.message);
    await flows.steeringIdle();
    assert.strictEqual(panel.case!.file, 'faq.jsonl');
    assert.deepStrictEqual(panel.case!.baseMetrics, sB.baseMetrics);
    assert.deepStrictEqual(
      panel.case!.sliders.map((s) => s.id),
      caseB.sliders.map((s) => s.id),
    );

    // reloading the FAQ file while its case is shown: the case comes back, with the file's fresh numbers
    const keyB = JSON.stringify([caseB.pair.query_id, caseB.pair.doc_id]);
    const reloaded = await run<EvalRunResult>('xetrieval.explainEvalFile', faq);
    assert.strictEqual(reloaded.status, 'ok', reloaded.message);
    assert.strictEqual(panel.case!.file, 'faq.jsonl');
    assert.strictEqual(JSON.stringify([panel.case!.pair.query_id, panel.case!.pair.doc_id]), keyB);
    assert.deepStrictEqual(panel.case!.baseMetrics, flows.snapshot().baseMetrics);

    // closing the FAQ file empties the panel; the SciFact file stays, CodeLens ranks and all
    const closed = await run<{ status: string }>('xetrieval.closeEvalFile', faq);
    assert.strictEqual(closed.status, 'ok');
    assert.strictEqual(panel.case, undefined, 'the panel no longer shows a closed file\'s case');
    assert.strictEqual(flows.steeringBasis, undefined);
    const left = flows.snapshot();
    assert.deepStrictEqual(
      left.files.map((f) => f.label),
      ['scifact.jsonl'],
    );
    assert.strictEqual(left.source, scifact.fsPath);
    const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', scifact)).filter((l) => l.command?.command === 'xetrieval.explainLine');
    assert.ok(lenses.every((l) => /#\d+/.test(l.command!.title)));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(faq));
    const faqLenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', faq)).filter((l) => l.command?.command === 'xetrieval.explainLine');
    assert.ok(faqLenses.every((l) => !/#\d+/.test(l.command!.title)), 'a closed file\'s lenses carry no ranks');
  });

  it('expanded rows get the bundle\'s top-activating examples and the label\'s words, for a file\'s case and a single pair', async () => {
    const ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID)!;
    const labels = new Map<number, { terms: string[]; examples: { text: string; activation: number; source: string }[] }>();
    for (const line of fs.readFileSync(path.join(ext.extensionPath, 'models', MODEL, 'labels.jsonl'), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const l = JSON.parse(line) as { id: number; terms: string[]; examples: { text: string; activation: number; source: string }[] };
      labels.set(l.id, l);
    }
    const check = (what: string) => {
      const features = panel.case!.pair.features;
      assert.ok(features.length > 0, `${what}: no features`);
      let examples = 0;
      let marked = 0;
      for (const f of features) {
        const want = labels.get(f.id)!;
        assert.deepStrictEqual(f.examples, want.examples.slice(0, 5), `${what}: feature ${f.id}'s examples are the bundle's first five`);
        assert.deepStrictEqual(f.terms, want.terms);
        for (const ex of f.examples!) {
          examples++;
          if (highlightTerms(ex.text, f.terms!).some((r) => r.hit)) marked++;
        }
      }
      console.log(`      ${what}: ${features.length} features, ${examples} examples, ${marked} with the label's words marked`);
      assert.ok(examples > 0 && marked > 0);
    };
    const s = flows.snapshot(1000);
    const opened = await run<CaseResult>('xetrieval.openCase', s.tree[1].children![0].key!, scifact.toString());
    assert.strictEqual(opened.status, 'ok', opened.message);
    check('a SciFact case');
    const editor = await vscode.window.showTextDocument(
      await vscode.workspace.openTextDocument({ content: 'How do I undo the last git commit?\n\nUse git reset --soft HEAD~1 to undo the last commit and keep its changes staged.\n', language: 'markdown' }),
    );
    editor.selections = [new vscode.Selection(0, 0, 0, 34), new vscode.Selection(2, 0, 2, 80)];
    const sel = await run<{ status: string; message?: string }>('xetrieval.explainSelection');
    assert.strictEqual(sel.status, 'ok', sel.message);
    check('a selection');
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('the score adds up on screen, an unrelated pair is said to be one, and the panel is titled for a selection', async () => {
    // the texts as the command's argument: the same path as two selections, without depending on editor focus
    const explainText = async (query: string, doc: string) => {
      const r = await run<{ status: string; message?: string }>('xetrieval.explainSelection', { query, doc });
      assert.strictEqual(r.status, 'ok', r.message);
      assert.strictEqual(panel.case!.doc, doc);
      return panel.case!.pair;
    };
    const related = await explainText('How do I undo the last git commit?', 'Use git reset --soft HEAD~1 to undo the last commit and keep its changes staged.');
    const parts = scoreParts(related.score_terms!, related.features.length);
    const sum = parts.reduce((s, p) => s + p.value, 0);
    assert.ok(Math.abs(sum - related.score) < 2e-3, `parts add up to ${sum}, score ${related.score}`);
    assert.strictEqual(unrelatedNote(related.score, related.score_terms!.shared), undefined, `a related pair (score ${related.score}) gets no "unrelated" note`);
    assert.strictEqual(panel.webviewPanel?.title, 'Xetrieval: selection', 'not "selection · selection"');
    const unrelated = await explainText('How do I undo the last git commit?', 'The Sargasso Sea is bounded by ocean currents and named after the floating seaweed found there.');
    console.log(`      related pair ${related.score.toFixed(3)}, unrelated pair ${unrelated.score.toFixed(3)} (${unrelated.features.length} features listed)`);
    assert.match(unrelatedNote(unrelated.score, unrelated.score_terms!.shared) ?? '', /The retriever sees these texts as unrelated/);
  });

  it('sliders worth moving: every suggestion moves a rank, α shows in the case\'s score, unknown and repeated ids are refused, short lists are named', async () => {
    // the SciFact file is still loaded (the FAQ one was closed above); open one of its cases
    const sA = flows.snapshot(1000);
    assert.strictEqual(sA.source, scifact.fsPath);
    const opened = await run<CaseResult>('xetrieval.openCase', sA.tree[0].children![0].key!, scifact.toString());
    assert.strictEqual(opened.status, 'ok', opened.message);
    const suggested = panel.case!.sliders.filter((x) => x.suggested).map((x) => x.id);
    console.log(`      ${suggested.length} suggested sliders on ${sA.cases} SciFact pairs (${sA.queries} queries)${sA.steering.note ? `; note: ${sA.steering.note}` : ''}`);
    assert.ok(suggested.length > 0);
    await waitFor(() => flows.steeringBasis !== undefined && suggested.every((id) => flows.steeringBasis!.features.includes(id)), 'a basis over the suggestions');
    const basis = flows.steeringBasis!;
    const groups = new Map<string, number[]>();
    basis.queryIds.forEach((q, i) => groups.set(q, [...(groups.get(q) ?? []), i]));
    const order = (sc: ArrayLike<number>, g: number[]) => [...g].sort((a, b) => sc[b] - sc[a] || a - b).join(',');
    const base = basisScores(basis, new Map());
    for (const id of suggested) {
      const moves = [0, 2].some((alpha) => {
        const sc = basisScores(basis, new Map([[id, alpha]]));
        return [...groups.values()].some((g) => order(sc, g) !== order(base, g));
      });
      assert.ok(moves, `suggested slider #${id} moves no rank at α = 0 or 2`);
    }

    // α in the case's own score: open a case that a suggested slider at 0 changes (a slider that moves a rank changes some score)
    let hit: { i: number; id: number } | undefined;
    for (const f of suggested) {
      const sc = basisScores(basis, new Map([[f, 0]]));
      const k = sc.findIndex((v, j) => Math.abs(v - base[j]) > 1e-4);
      if (k >= 0) {
        hit = { i: k, id: f };
        break;
      }
    }
    assert.ok(hit, 'some suggested slider changes some score');
    const { i, id } = hit;
    const reopened = await run<CaseResult>('xetrieval.openCase', JSON.stringify([basis.queryIds[i], basis.docIds[i]]), scifact.toString());
    assert.strictEqual(reopened.status, 'ok', reopened.message);
    await moveSlider(id, 0);
    await waitFor(() => steeredScore(panel.case!) !== undefined, 'a steered score');
    const st = steeredScore(panel.case!)!;
    const want = basisScores(basis, new Map([[id, 0]]))[i];
    assert.ok(Math.abs(st.score - want) < 1e-5, `steered score ${st.score}, basis ${want}`);
    assert.ok(Math.abs(st.delta) > 1e-4);
    await pressReset();
    assert.strictEqual(steeredScore(panel.case!), undefined, 'no steered score once every α is 1');

    // Add slider: an id beyond the SAE and an id that has a slider are refused with a message, and nothing is kept
    const before = panel.case!.sliders.map((x) => x.id);
    await assert.rejects(flows.handlers.onAddSlider(99999), /#99999 is not a feature of this SAE: its \d+ features are #0 to #\d+/);
    await assert.rejects(flows.handlers.onAddSlider(suggested[0]), new RegExp(`#${suggested[0]} \\(.*\\) already has a slider`));
    panel.handleWebviewMessage({ type: 'addSlider', requestId: ++requestId, id: 99999 });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepStrictEqual(
      panel.case!.sliders.map((x) => x.id),
      before,
    );
    const cfg = path.join(tmp, 'bad-steer.json');
    fs.writeFileSync(cfg, JSON.stringify({ model: MODEL, features: [{ id: 99999, alpha: 0 }] }));
    const loaded = await run<{ status: string; message?: string; code?: string }>('xetrieval.loadSteering', vscode.Uri.file(cfg));
    assert.strictEqual(loaded.status, 'error');
    assert.strictEqual(loaded.code, 'E_STEERING_MISMATCH');
    assert.match(loaded.message!, /bad-steer\.json: field "features\[0\]\.id": feature 99999 does not exist: the SAE has \d+ features/);

    // a file whose queries have one candidate each: no suggestion, and a note that says why
    const single = vscode.Uri.file(path.join(tmp, 'single.jsonl'));
    const seen = new Set<string>();
    const lines = fs
      .readFileSync(scifact.fsPath, 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !seen.has((JSON.parse(l) as { query_id: string }).query_id) && seen.add((JSON.parse(l) as { query_id: string }).query_id));
    fs.writeFileSync(single.fsPath, lines.join('\n') + '\n');
    const r = await run<EvalRunResult>('xetrieval.explainEvalFile', single);
    assert.strictEqual(r.status, 'ok', r.message);
    await flows.steeringIdle();
    const s1 = flows.snapshot();
    assert.strictEqual(s1.source, single.fsPath);
    assert.strictEqual(s1.steering.sliders.filter((x) => x.suggested).length, 0);
    assert.match(s1.steering.note ?? '', /every query has a single candidate, so no α can move a rank/);
    await run('xetrieval.closeEvalFile', single);
  });
});
