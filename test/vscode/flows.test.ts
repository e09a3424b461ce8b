/**
 * The editor flows inside the real extension host: selection commands, eval
 * files (errors, Problems entries, the Cases tree), CodeLenses, failing-case
 * navigation, steering and a worker crash mid-run. Commands return result
 * objects, which is what most checks read; the flows' state comes from
 * `api.flows` (EditorFlows) where the extension exposes it.
 *
 * The "with the trained bundle" suite needs models/all-MiniLM-L6-v2/manifest.json
 * in the extension folder and the model in the workspace's cache folder
 * (XETRIEVAL_CACHE_DIR); it is skipped, saying why, without them.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { XetrievalApi } from '../../src/extension/api';
import type { CaseResult, EditorFlows, SteeringResult } from '../../src/extension/editorFlows';
import { heatScale, heatStep, LocalSteering } from '../../webview/model';
import type { HeatReport, PanelLog } from '../../src/protocol/webview';
import type { UnitAttribution } from '../../src/core/explain/occlusion';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { SelectionResult } from '../../src/extension/selection';
import { missingForWorkerTests } from './bundleReady';

const EXTENSION_ID = 'xetrieval.xetrieval';
const MODEL = 'all-MiniLM-L6-v2';
const FLOW_COMMANDS = [
  'xetrieval.setQueryFromSelection',
  'xetrieval.explainSelection',
  'xetrieval.explainEvalFile',
  'xetrieval.nextFailingCase',
  'xetrieval.previousFailingCase',
  'xetrieval.explainLine',
  'xetrieval.openCase',
  'xetrieval.showPanel',
  'xetrieval.loadSteering',
  'xetrieval.saveSteering',
  'xetrieval.resetSteering',
  'xetrieval.exportExplanation',
  'xetrieval.closeEvalFile',
  'xetrieval.reloadEvalFile',
];

function sharedData(extensionPath: string): string {
  const candidates = [path.resolve(extensionPath, '../shared'), path.join(extensionPath, 'shared'), '/work/shared'];
  return path.join(candidates.find((d) => fs.existsSync(path.join(d, 'data'))) ?? candidates[0], 'data');
}

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  for (const deadline = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
  }
}

const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;

async function editorWith(content: string): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument({ content, language: 'plaintext' });
  return vscode.window.showTextDocument(doc);
}

/**
 * Makes `editor`'s document the active editor again and sets its selections
 * there: a panel or an editor opened by an earlier test's late reply can take
 * the focus between a plain `editor.selection =` and the command.
 */
async function select(editor: vscode.TextEditor, ...selections: vscode.Selection[]): Promise<vscode.TextEditor> {
  const e = await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  e.selections = selections;
  assert.strictEqual(vscode.window.activeTextEditor?.document, editor.document, 'the test editor is the active one');
  return e;
}

describe('editor flows', () => {
  let api: XetrievalApi;
  let flows: EditorFlows | undefined;
  let ext: vscode.Extension<XetrievalApi>;
  let tmp: string;
  let pairsFile: string;
  let samplePairs: string;
  /** 0-based line of the malformed line appended to the sample */
  let badLine: number;

  before(async () => {
    ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID)!;
    assert.ok(ext, `${EXTENSION_ID} is not installed in this host`);
    api = await ext.activate();
    flows = (api as XetrievalApi & { flows?: EditorFlows }).flows;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-flows-'));
    samplePairs = path.join(sharedData(ext.extensionPath), 'scifact', 'sample_pairs.jsonl');
    assert.ok(fs.existsSync(samplePairs), `${samplePairs} is missing`);
    // The sample plus one line whose "doc" is missing.
    const text = fs.readFileSync(samplePairs, 'utf8').replace(/\n*$/, '\n');
    badLine = text.split('\n').length - 1;
    pairsFile = path.join(tmp, 'pairs.jsonl');
    fs.writeFileSync(pairsFile, `${text}{"query_id": "q-bad", "doc_id": "d-bad", "query": "a query without its document"}\n`);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('registers the editor-flow commands', async () => {
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of FLOW_COMMANDS) assert.ok(registered.has(c), `${c} is not registered`);
  });

  it('exposes the flows on the API', function () {
    if (!flows) this.skip(); // the API of this build does not carry `flows` (see src/extension/editorFlows.ts)
    assert.strictEqual(typeof flows.snapshot, 'function');
    assert.strictEqual(typeof flows.handlers.onSetAlpha, 'function');
  });

  describe('selection', () => {
    it('Set Query from Selection: nothing selected or whitespace only → a warning, a selection → the query', async () => {
      const editor = await editorWith('what causes fever in children\nfever   vs temperature\nFever is a rise in body temperature.\n');
      await select(editor, new vscode.Selection(0, 3, 0, 3));
      let r = await run<SelectionResult>('xetrieval.setQueryFromSelection');
      assert.strictEqual(r.status, 'warning');
      assert.match(r.message!, /nothing is selected/);

      // whitespace inside a line: VS Code itself may trim a whitespace-only line of an untitled editor once the cursor has been there
      await select(editor, new vscode.Selection(1, 5, 1, 8));
      r = await run<SelectionResult>('xetrieval.setQueryFromSelection');
      assert.strictEqual(r.status, 'warning');
      assert.match(r.message!, /only whitespace/);

      await select(editor, new vscode.Selection(0, 0, 0, 29));
      r = await run<SelectionResult>('xetrieval.setQueryFromSelection');
      assert.strictEqual(r.status, 'ok');
      assert.strictEqual(r.query, 'what causes fever in children');
      if (flows) {
        assert.strictEqual(flows.snapshot().query, 'what causes fever in children');
        assert.match(flows.snapshot().queryItem!, /what causes fever/);
      }
    });

    it('Explain Selection: an empty selection or an empty second selection → a warning, no request', async () => {
      const editor = await editorWith('query text here\n  \ndocument text here\n');
      await select(editor, new vscode.Selection(2, 0, 2, 0));
      let r = await run<SelectionResult>('xetrieval.explainSelection');
      assert.strictEqual(r.status, 'warning');
      assert.match(r.message!, /nothing is selected/);

      await select(editor, new vscode.Selection(0, 0, 0, 10), new vscode.Selection(1, 0, 1, 2));
      r = await run<SelectionResult>('xetrieval.explainSelection');
      assert.strictEqual(r.status, 'warning');
      assert.match(r.message!, /second selection \(the document\) is empty/);
    });
  });

  describe('eval files without the worker', () => {
    it('a file that is not JSON Lines gets a clear error and no Problems entries', async () => {
      const md = path.join(tmp, 'README.md');
      fs.writeFileSync(md, '# Notes\n\nThese are not pairs.\n');
      const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(md));
      assert.strictEqual(r.status, 'error');
      assert.strictEqual(r.code, 'E_NOT_JSONL');
      assert.ok(r.message.includes(md), r.message);
      assert.match(r.message, /not a JSON Lines pairs file/);
      assert.strictEqual(vscode.languages.getDiagnostics(vscode.Uri.file(md)).length, 0);
    });

    it('a folder that is not a BEIR dataset gets a clear error', async () => {
      const dir = path.join(tmp, 'not-beir');
      fs.mkdirSync(dir);
      const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(dir));
      assert.strictEqual(r.status, 'error');
      assert.strictEqual(r.code, 'E_NOT_BEIR');
      assert.match(r.message, /corpus\.jsonl, queries\.jsonl and qrels/);
    });

    it('CodeLens: an "Explain" lens on each pair line, none on the malformed line', async () => {
      const uri = vscode.Uri.file(pairsFile);
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
      const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri)).filter((l) => l.command?.command === 'xetrieval.explainLine');
      assert.strictEqual(lenses.length, badLine, 'one lens per valid line');
      assert.ok(lenses.every((l) => /Explain/.test(l.command!.title)));
      assert.ok(!lenses.some((l) => l.range.start.line === badLine), 'the malformed line has no lens');
      const [lensUri, lensLine] = lenses[3].command!.arguments as [vscode.Uri, number];
      assert.strictEqual(lensUri.toString(), uri.toString());
      assert.strictEqual(lensLine, lenses[3].range.start.line);
    });

    it('Explain This Pair on a malformed line names the line and the field', async () => {
      const r = await run<CaseResult>('xetrieval.explainLine', vscode.Uri.file(pairsFile), badLine);
      assert.strictEqual(r.status, 'warning');
      assert.ok(r.message!.includes(`${pairsFile}:${badLine + 1}: field "doc": missing`), r.message);
    });

    it('Next Failing Case with nothing loaded says so', async function () {
      if (flows?.snapshot().loaded) this.skip();
      const r = await run<CaseResult>('xetrieval.nextFailingCase');
      assert.strictEqual(r.status, 'warning');
      assert.match(r.message!, /no cases loaded/);
    });
  });

  describe('with the trained bundle', function () {
    this.timeout(600_000);

    before(function () {
      const missing = missingForWorkerTests(ext.extensionPath, MODEL) ?? (flows ? undefined : 'api.flows is missing');
      if (missing) {
        console.log(`  skipping the worker-backed flow tests: ${missing}`);
        this.skip();
      }
    });

    it('explains the eval file: the malformed line is a Problem, the rest are cases, failing queries first', async () => {
      const uri = vscode.Uri.file(pairsFile);
      const r = await run<EvalRunResult>('xetrieval.explainEvalFile', uri);
      assert.strictEqual(r.status, 'ok', r.message);
      assert.strictEqual(r.pairs, badLine);
      assert.strictEqual(r.explained, badLine);

      const diags = vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'xetrieval');
      assert.strictEqual(diags.length, 1, JSON.stringify(diags));
      assert.strictEqual(diags[0].range.start.line, badLine);
      assert.strictEqual(diags[0].message, 'field "doc": missing');
      assert.strictEqual(diags[0].source, 'xetrieval');
      assert.strictEqual(diags[0].severity, vscode.DiagnosticSeverity.Error);

      const s = flows!.snapshot(1000);
      assert.strictEqual(s.cases, badLine);
      assert.strictEqual(s.queries, 100);
      assert.strictEqual(s.tree.length, 100);
      assert.strictEqual(s.tree.reduce((n, q) => n + q.children!.length, 0), badLine);
      // failing queries first, each with the warning icon
      const firstPassing = s.tree.findIndex((q) => !q.failing);
      assert.ok(s.tree.slice(firstPassing < 0 ? s.tree.length : firstPassing).every((q) => !q.failing), 'a failing query after a passing one');
      assert.strictEqual(s.tree.filter((q) => q.failing).length, s.failingQueries);
      for (const q of s.tree) {
        assert.strictEqual(q.icon, q.failing ? 'warning' : 'pass');
        q.children!.forEach((c, i) => assert.match(c.description, new RegExp(`^#${i + 1} · -?\\d\\.\\d{3} · label [01]$`), c.description));
      }
      assert.ok(s.metrics['ndcg@10'] > 0 && s.metrics['ndcg@10'] <= 1);
      // the sample's queries each have one relevant and one unjudged-as-relevant candidate: failing = the label-0 one on top
      for (const q of s.tree) assert.strictEqual(q.failing, q.children![0].description.endsWith('label 0'));
    });

    it('Next/Previous Failing Case walk the failing cases, revealing and opening them', async function () {
      const s = flows!.snapshot();
      if (s.failingCases < 2) this.skip();
      const a = await run<CaseResult>('xetrieval.nextFailingCase');
      assert.strictEqual(a.status, 'ok', a.message);
      assert.strictEqual(a.index, 0);
      assert.strictEqual(a.of, s.failingCases);
      assert.strictEqual(a.failing, true);
      const b = await run<CaseResult>('xetrieval.nextFailingCase');
      assert.strictEqual(b.index, 1);
      assert.notStrictEqual(b.key, a.key);
      const back = await run<CaseResult>('xetrieval.previousFailingCase');
      assert.strictEqual(back.key, a.key);
      const shown = flows!.shownCase!;
      assert.deepStrictEqual(JSON.parse(a.key!), [shown.pair.query_id, shown.pair.doc_id]);
      assert.ok(shown.candidates.some((c) => c.selected && c.docId === shown.pair.doc_id));
      assert.ok(shown.query.length > 0 && shown.doc.length > 0);
    });

    it('opens a case from the tree command and from a CodeLens line with its rank', async () => {
      const key = flows!.snapshot().tree[0].children![1].key!;
      const r = await run<CaseResult>('xetrieval.openCase', key);
      assert.strictEqual(r.status, 'ok', r.message);
      assert.strictEqual(r.rank, 2);
      const line = await run<CaseResult>('xetrieval.explainLine', vscode.Uri.file(pairsFile), 0);
      assert.strictEqual(line.status, 'ok', line.message);
      assert.ok(line.rank === 1 || line.rank === 2);
    });

    it('Explain Selection with two selections explains the lower one against the upper one', async () => {
      const editor = await editorWith('Upregulation of mosGCTL-1 is induced upon infection with West Nile virus.\n\nA C-Type Lectin Collaborates with a CD45 Phosphatase Homolog to Facilitate West Nile Virus Infection of Mosquitoes.\n');
      editor.selections = [new vscode.Selection(2, 0, 2, 40), new vscode.Selection(0, 0, 0, 74)];
      const r = await run<SelectionResult>('xetrieval.explainSelection');
      assert.strictEqual(r.status, 'ok', r.message);
      assert.ok(Number.isFinite(r.score));
      assert.match(flows!.shownCase!.query, /^Upregulation of mosGCTL-1/);
      assert.match(flows!.shownCase!.doc, /^A C-Type Lectin/);
    });

    it('Explain Selection marks the words the score rests on, in both selections, with their measured Δ', async () => {
      const text = 'How do I undo my last git commit but keep the changes?\n\n   Run git reset --soft HEAD~1: it moves the branch back one commit and leaves your changes staged.\n';
      const editor = await editorWith(text);
      editor.selections = [new vscode.Selection(0, 0, 0, 55), new vscode.Selection(2, 0, 2, 200)];
      const r = await run<SelectionResult>('xetrieval.explainSelection');
      assert.strictEqual(r.status, 'ok', r.message);
      const words = flows!.snapshot().words;
      assert.strictEqual(words.uri, editor.document.uri.toString());
      // the pair is about git: it is the query's and the document's strongest word
      assert.strictEqual(words.query[0]?.text, 'git', JSON.stringify(words.query.slice(0, 3)));
      assert.strictEqual(words.doc[0]?.text, 'git', JSON.stringify(words.doc.slice(0, 3)));
      assert.ok(words.doc[0].score > 0.01);
      const attr = flows!.shownCase!.pair.token_attributions;
      assert.ok(attr, 'the shown case carries the attributions');
      // offsets are into the trimmed document text; the decorated word in the editor is the same word
      const unit = attr.doc.units.find((u) => u.text === 'git')!;
      const docStart = text.indexOf('Run git');
      assert.strictEqual(text.slice(docStart + unit.start, docStart + unit.end), 'git');
      // editing the text takes the highlights away: they would point at the wrong words
      await editor.edit((e) => e.insert(new vscode.Position(0, 0), 'x'));
      assert.deepStrictEqual(flows!.snapshot().words.doc, []);
    });

    it('the panel overlays which words matter on its texts: a case without attributions asks the host for them, a selection brings its own', async () => {
      const logs: PanelLog[] = [];
      const sub = api.panel.onDidLog((l) => logs.push(l));
      const heatAfter = async (from: number, ok: (h: HeatReport) => boolean): Promise<HeatReport> => {
        let found: HeatReport | undefined;
        await waitFor(() => (found = logs.slice(from).find((l) => l.heat && ok(l.heat))?.heat) !== undefined, 120_000);
        return found!;
      };
      try {
        // a pair line opened as a case: explained without word attributions, so the panel asks for those of the case it shows
        const from = logs.length;
        const line = await run<CaseResult>('xetrieval.explainLine', vscode.Uri.file(pairsFile), 0);
        assert.strictEqual(line.status, 'ok', line.message);
        // the overlay's report is debounced: one for the case shown before may still arrive; take this case's (its texts' lengths)
        const shown0 = flows!.shownCase!;
        const heat = await heatAfter(from, (h) => (h.mode === 'score' || h.mode === 'none') && h.query.chars === shown0.query.length && h.doc.chars === shown0.doc.length);
        assert.strictEqual(heat.mode, 'score', logs.slice(from).map((l) => l.message).join('\n'));
        const shown = flows!.shownCase!;
        const attr = shown.pair.token_attributions;
        assert.ok(attr, 'the measured attributions are kept with the shown case (a reloaded panel does not ask again)');
        // what the webview painted is the host's measurement: the same strongest words, the same number marked
        const max = heatScale([attr.query, attr.doc]);
        assert.ok(max > 0.005, `some word moves the score (largest |Δ| ${max})`);
        for (const side of ['query', 'doc'] as const) {
          const units: UnitAttribution[] = attr[side].units;
          const text = shown[side];
          assert.ok(units.length > 0, `${side}: no units`);
          for (const u of units) assert.strictEqual(text.slice(u.start, u.end), u.text, `${side}: offsets of "${u.text}"`);
          assert.strictEqual(heat[side].marked, units.filter((u) => heatStep(u.score, max) !== 0).length, side);
          const strongest = [...units].sort((a, b) => Math.abs(b.score) - Math.abs(a.score))[0];
          if (heatStep(strongest.score, max) !== 0) {
            assert.strictEqual(heat[side].top[0].text, strongest.text, side);
            assert.strictEqual(heat[side].top[0].delta, strongest.score);
            assert.strictEqual(Math.abs(heat[side].top[0].step), Math.abs(heatStep(strongest.score, max)));
          }
        }
        // one scale over both texts: the strongest word of all is at the top step
        assert.ok([heat.query, heat.doc].some((s) => s.top.some((t) => Math.abs(t.step) === 5)), JSON.stringify(heat));

        // Explain Selection's case carries its attributions: painted from them, the strongest word of the pair about git is "git"
        const from2 = logs.length;
        const editor = await editorWith('How do I undo my last git commit but keep the changes?\n\nRun git reset --soft HEAD~1: it moves the branch back one commit and leaves your changes staged.\n');
        editor.selections = [new vscode.Selection(0, 0, 0, 55), new vscode.Selection(2, 0, 2, 200)];
        const r = await run<SelectionResult>('xetrieval.explainSelection');
        assert.strictEqual(r.status, 'ok', r.message);
        const sel = await heatAfter(from2, (h) => h.mode === 'score' && h.query.top[0]?.text === 'git');
        assert.strictEqual(sel.doc.top[0]?.text, 'git', JSON.stringify(sel.doc.top));
        assert.ok(sel.doc.top[0].delta > 0.01 && sel.doc.top[0].step === 5, JSON.stringify(sel.doc.top[0]));
        assert.ok(!logs.slice(from2).some((l) => l.heat?.mode === 'pending'), 'no request when the case brings its attributions');
      } finally {
        sub.dispose();
      }
    });

    it('steering: a loaded config re-ranks the cases, saving writes it back, reset restores the base ranking', async function () {
      await flows!.steeringIdle();
      const before = flows!.snapshot(1000);
      if (!before.steering.ready) this.skip(); // rerankSet failed (see the Xetrieval log)
      // Suppress the features a failing case shares: scores of the cases using them must move.
      await run<CaseResult>('xetrieval.nextFailingCase');
      const ids = flows!.shownCase!.pair.shared_features.slice(0, 8);
      assert.ok(ids.length > 0, 'the case shares no feature to steer');
      const cfgFile = path.join(tmp, 'steer.json');
      fs.writeFileSync(cfgFile, JSON.stringify({ model: MODEL, features: ids.map((id) => ({ id, alpha: 0 })) }));
      const loaded = await run<SteeringResult>('xetrieval.loadSteering', vscode.Uri.file(cfgFile));
      assert.strictEqual(loaded.status, 'ok', loaded.message);
      assert.ok(loaded.elapsedMs! >= 0);
      const steered = flows!.snapshot(1000);
      const descriptions = (t: typeof before.tree) => new Map(t.flatMap((q) => q.children!.map((c) => [c.key!, c.description] as const)));
      const was = descriptions(before.tree);
      const changed = [...descriptions(steered.tree)].filter(([k, d]) => was.has(k) && was.get(k) !== d);
      assert.ok(changed.length > 0, 'no candidate score changed under steering');
      assert.strictEqual(steered.steering.sliders.filter((sl) => sl.alpha === 0).length, ids.length);
      assert.deepStrictEqual(steered.baseMetrics, before.baseMetrics);

      // The panel re-ranks slider moves itself with the steering basis: on this real file it must agree with
      // the worker's re-rank (the Cases view's scores and metrics) for the case on screen and the whole file.
      let basis = flows!.steeringBasis;
      for (let i = 0; i < 100 && !(basis && ids.every((id) => basis!.features.includes(id))); i++) {
        await new Promise((r) => setTimeout(r, 100));
        basis = flows!.steeringBasis;
      }
      assert.ok(basis && ids.every((id) => basis!.features.includes(id)), 'the panel got a basis covering the loaded sliders');
      const shownNow = flows!.shownCase!;
      const local = new LocalSteering(basis).rerank(new Map(steered.steering.sliders.map((sl) => [sl.id, sl.alpha])), shownNow.pair.query_id!, shownNow.pair.doc_id!, shownNow.candidates);
      assert.ok(local, 'the basis holds the case on screen');
      for (const [k, v] of Object.entries(steered.metrics)) assert.ok(Math.abs(local.metrics[k] - v) < 1e-6, `${k}: panel ${local.metrics[k]}, host ${v}`);
      assert.deepStrictEqual(local.candidates.map((c) => c.docId), shownNow.candidates.map((c) => c.docId));
      local.candidates.forEach((c, i) => assert.ok(Math.abs(c.score - shownNow.candidates[i].score) < 1e-5, `${c.docId}: panel ${c.score}, host ${shownNow.candidates[i].score}`));

      const out = path.join(tmp, 'saved.json');
      const saved = await run<SteeringResult>('xetrieval.saveSteering', vscode.Uri.file(out));
      assert.strictEqual(saved.status, 'ok', saved.message);
      const written = JSON.parse(fs.readFileSync(out, 'utf8')) as { model: string; modelSha256?: string; saeSha256?: string; features: { id: number; alpha: number }[] };
      assert.strictEqual(written.model, MODEL);
      // the fingerprints of the weights and the SAE the ids belong to
      assert.match(written.modelSha256 ?? '', /^[0-9a-f]{64}$/);
      assert.match(written.saeSha256 ?? '', /^[0-9a-f]{64}$/);
      assert.deepStrictEqual(fs.readdirSync(tmp).filter((n) => n.endsWith('.partial')), [], 'no temporary file left');
      // saving over the loaded eval file is refused, and the file is left as it was
      const pairsBefore = fs.readFileSync(pairsFile, 'utf8');
      const over = await run<SteeringResult>('xetrieval.saveSteering', vscode.Uri.file(pairsFile));
      assert.strictEqual(over.status, 'error');
      assert.strictEqual(over.code, 'E_SAME_FILE');
      assert.strictEqual(fs.readFileSync(pairsFile, 'utf8'), pairsBefore);
      // a config for another SAE, or with a feature the SAE lacks, is refused on load
      for (const [name, cfg, field] of [
        ['other-sae.json', { ...written, saeSha256: 'a'.repeat(64) }, 'saeSha256'],
        ['unknown.json', { model: MODEL, features: [{ id: 999999, alpha: 2 }] }, 'features[0].id'],
      ] as const) {
        const f = path.join(tmp, name);
        fs.writeFileSync(f, JSON.stringify(cfg));
        const bad = await run<SteeringResult>('xetrieval.loadSteering', vscode.Uri.file(f));
        assert.strictEqual(bad.status, 'error', name);
        assert.strictEqual(bad.code, 'E_STEERING_MISMATCH', name);
        assert.ok(bad.message?.includes(`field "${field}"`), bad.message);
      }
      assert.deepStrictEqual(
        written.features,
        [...ids].sort((a, b) => a - b).map((id) => ({ id, alpha: 0 })),
      );

      const reset = await run<SteeringResult>('xetrieval.resetSteering');
      assert.strictEqual(reset.status, 'ok', reset.message);
      assert.deepStrictEqual(flows!.snapshot().metrics, before.baseMetrics);

      // A config that steers the queries only ("apply": "query"): the worker's re-rank and the panel's basis both
      // honour it and agree; the caption says so, a save keeps it, and Reset steers both texts again.
      const queryOnly = path.join(tmp, 'query-only.json');
      fs.writeFileSync(queryOnly, JSON.stringify({ model: MODEL, apply: 'query', features: ids.map((id) => ({ id, alpha: 0 })) }));
      const loadedQ = await run<SteeringResult>('xetrieval.loadSteering', vscode.Uri.file(queryOnly));
      assert.strictEqual(loadedQ.status, 'ok', loadedQ.message);
      const steeredQ = flows!.snapshot(1000);
      assert.strictEqual(steeredQ.steering.apply, 'query');
      assert.match(flows!.shownCase!.steeringNote ?? '', /steers only the queries/);
      assert.strictEqual(flows!.shownCase!.steers, 'query', 'the panel is told which texts the sliders steer');
      const descQ = descriptions(steeredQ.tree);
      assert.ok([...descriptions(steered.tree)].some(([k, d]) => descQ.has(k) && descQ.get(k) !== d), 'steering the queries only scores differently from steering both');
      let basisQ = flows!.steeringBasis;
      for (let i = 0; i < 100 && basisQ?.apply !== 'query'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        basisQ = flows!.steeringBasis;
      }
      assert.strictEqual(basisQ?.apply, 'query', 'the panel got the query-only basis');
      const shownQ = flows!.shownCase!;
      const localQ = new LocalSteering(basisQ).rerank(new Map(steeredQ.steering.sliders.map((sl) => [sl.id, sl.alpha])), shownQ.pair.query_id!, shownQ.pair.doc_id!, shownQ.candidates)!;
      for (const [k, v] of Object.entries(steeredQ.metrics)) assert.ok(Math.abs(localQ.metrics[k] - v) < 1e-6, `query only, ${k}: panel ${localQ.metrics[k]}, host ${v}`);
      localQ.candidates.forEach((c, i) => assert.ok(Math.abs(c.score - shownQ.candidates[i].score) < 1e-5, `query only, ${c.docId}: panel ${c.score}, host ${shownQ.candidates[i].score}`));
      const savedQ = await run<SteeringResult>('xetrieval.saveSteering', vscode.Uri.file(path.join(tmp, 'saved-query.json')));
      assert.strictEqual(savedQ.status, 'ok', savedQ.message);
      assert.strictEqual(JSON.parse(fs.readFileSync(path.join(tmp, 'saved-query.json'), 'utf8')).apply, 'query');
      await run<SteeringResult>('xetrieval.resetSteering');
      assert.strictEqual(flows!.snapshot().steering.apply, 'both');
      assert.deepStrictEqual(flows!.snapshot().metrics, before.baseMetrics);
    });

    it('explains a BEIR folder from its judged pairs, with a malformed corpus line as a Problem', async () => {
      const rows = fs
        .readFileSync(samplePairs, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .slice(0, 6)
        .map((l) => JSON.parse(l) as { query_id: string; doc_id: string; query: string; doc: string; label: number });
      const dir = path.join(tmp, 'mini-beir');
      fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
      const docs = [...new Map(rows.map((r) => [r.doc_id, r.doc])).entries()];
      fs.writeFileSync(path.join(dir, 'corpus.jsonl'), [...docs.map(([id, text]) => JSON.stringify({ _id: id, title: '', text })), '{"_id": "broken", "title": "x"'].join('\n') + '\n');
      const queries = [...new Map(rows.map((r) => [r.query_id, r.query])).entries()];
      fs.writeFileSync(path.join(dir, 'queries.jsonl'), queries.map(([id, text]) => JSON.stringify({ _id: id, text })).join('\n') + '\n');
      fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), ['query-id\tcorpus-id\tscore', ...rows.map((r) => `${r.query_id}\t${r.doc_id}\t${r.label}`), `${rows[0].query_id}\tnot-in-corpus\t1`].join('\n') + '\n');

      const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(dir));
      assert.strictEqual(r.status, 'ok', r.message);
      assert.strictEqual(r.kind, 'beir');
      assert.strictEqual(r.split, 'test');
      assert.strictEqual(r.explained, rows.length);
      assert.match(r.message, /1 judged document\(s\) not in the corpus were skipped/);
      const corpusDiags = vscode.languages.getDiagnostics(vscode.Uri.file(path.join(dir, 'corpus.jsonl'))).filter((d) => d.source === 'xetrieval');
      assert.strictEqual(corpusDiags.length, 1);
      assert.strictEqual(corpusDiags[0].range.start.line, docs.length);
      assert.match(corpusDiags[0].message, /invalid JSON/);
      const s = flows!.snapshot();
      assert.strictEqual(s.cases, rows.length);
      assert.strictEqual(s.queries, queries.length);
      // BEIR labels come from qrels: every candidate shows one
      assert.ok(s.tree.every((q) => q.children!.every((c) => /label [01]$/.test(c.description))));
      // the pairs file stays loaded beside the folder, and so do its Problems entries: each file reports its own
      assert.strictEqual(vscode.languages.getDiagnostics(vscode.Uri.file(pairsFile)).filter((d) => d.source === 'xetrieval').length, 1);
      // (an earlier suite may have left its own file loaded before these two)
      assert.deepStrictEqual(
        s.files.map((f) => f.file).slice(-2),
        [pairsFile, dir],
      );
    });

    it('a file whose first line is too long to hold (600 MB, no newline): a clear error naming file and line; the loaded cases stay', async () => {
      const before = flows!.snapshot().cases;
      assert.ok(before > 0, 'cases are loaded');
      const huge = path.join(tmp, 'huge-first-line.jsonl');
      fs.writeFileSync(huge, '');
      fs.truncateSync(huge, 600 << 20); // sparse: 600 MB of NUL characters, one line
      try {
        const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(huge));
        assert.strictEqual(r.status, 'error', r.message);
        assert.strictEqual(r.code, 'E_LINE_TOO_LONG');
        assert.match(r.message, new RegExp(`^${huge.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1: line is longer than \\d+ bytes`));
        assert.strictEqual(flows!.snapshot().cases, before, 'the loaded cases stay');
      } finally {
        fs.rmSync(huge, { force: true });
      }
    });

    it('a read that fails mid-stream (a 600 MB line after good ones): the error names the line, a Problem marks it, the loaded cases stay', async () => {
      const before = flows!.snapshot().cases;
      const file = path.join(tmp, 'huge-fourth-line.jsonl');
      fs.writeFileSync(file, fs.readFileSync(samplePairs, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
      fs.truncateSync(file, 600 << 20);
      try {
        const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(file));
        assert.strictEqual(r.status, 'error', r.message);
        assert.strictEqual(r.code, 'E_LINE_TOO_LONG');
        assert.match(r.message, /huge-fourth-line\.jsonl:4: line is longer than \d+ bytes/);
        assert.match(r.message, /The cases loaded before are kept\./);
        assert.strictEqual(flows!.snapshot().cases, before, 'the loaded cases stay: the new file never loaded');
        const diags = vscode.languages.getDiagnostics(vscode.Uri.file(file)).filter((d) => d.source === 'xetrieval');
        assert.deepStrictEqual(diags.map((d) => d.range.start.line), [3]);
      } finally {
        fs.rmSync(file, { force: true });
      }
    });

    it('Cancel while a large BEIR corpus is being scanned stops the scan: cancelled, the corpus never read to its end, the loaded cases stay', async () => {
      const before = flows!.snapshot().cases;
      const dir = path.join(tmp, 'big-beir');
      fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'queries.jsonl'), JSON.stringify({ _id: 'q1', text: 'protein kinase' }) + '\n');
      fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t1\n');
      // 1.5 million documents, then a malformed line: reading to the end would report it
      const fd = fs.openSync(path.join(dir, 'corpus.jsonl'), 'w');
      const block = Array.from({ length: 10_000 }, (_, i) => `{"_id":"d${i}","title":"","text":"document ${i}"}`).join('\n') + '\n';
      for (let i = 0; i < 150; i++) fs.writeSync(fd, block);
      fs.writeSync(fd, '{"_id": "last", "text": \n');
      fs.closeSync(fd);
      const ac = new AbortController();
      const pending = run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(dir), undefined, { signal: ac.signal });
      setTimeout(() => ac.abort(), 300);
      const r = await pending;
      assert.strictEqual(r.status, 'cancelled', r.message);
      assert.strictEqual(r.explained, 0);
      const corpusDiags = vscode.languages.getDiagnostics(vscode.Uri.file(path.join(dir, 'corpus.jsonl'))).filter((d) => d.source === 'xetrieval');
      assert.deepStrictEqual(corpusDiags, [], 'the scan stopped before the last line');
      assert.strictEqual(flows!.snapshot().cases, before, 'the loaded cases stay');
    });

    it('explains an unsaved editor as shown, with its bad line as a Problem', async () => {
      const lines = fs.readFileSync(samplePairs, 'utf8').split('\n').slice(0, 2);
      const doc = await vscode.workspace.openTextDocument({ content: `${lines[0]}\n{"query_id": "x", "doc_id": 5, "query": "q", "doc": 7}\n${lines[1]}\n`, language: 'json' });
      await vscode.window.showTextDocument(doc);
      const r = await run<EvalRunResult>('xetrieval.explainEvalFile');
      assert.strictEqual(r.status, 'ok', r.message);
      assert.strictEqual(r.explained, 2);
      // (the JSON language service adds its own entries for a multi-object document; only ours count here)
      const diags = vscode.languages.getDiagnostics(doc.uri).filter((d) => d.source === 'xetrieval');
      assert.strictEqual(diags.length, 1);
      assert.strictEqual(diags[0].range.start.line, 1);
      assert.strictEqual(diags[0].message, 'field "doc": expected a string, got number');
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    });

    it('a worker crash mid-run reports it and keeps the cases explained so far', async () => {
      const pending = run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(pairsFile), undefined, { chunkSize: 4 });
      // The new run empties the set first; wait for its first chunk, then kill the worker.
      await waitFor(() => flows!.snapshot().cases >= 4 && flows!.snapshot().cases < badLine, 120_000);
      const pid = api.client.pid;
      assert.ok(pid, 'no worker running');
      process.kill(pid, 'SIGKILL');
      const r = await pending;
      assert.strictEqual(r.status, 'crashed', r.message);
      assert.strictEqual(r.code, 'E_WORKER_DIED');
      assert.ok(r.explained >= 4 && r.explained < badLine, `explained ${r.explained}`);
      assert.match(r.message, /next run starts a new worker/);
      const s = flows!.snapshot();
      assert.strictEqual(s.cases, r.explained, 'the explained cases stay loaded');
      // the next request gets a fresh worker
      const again = await run<CaseResult>('xetrieval.explainLine', vscode.Uri.file(pairsFile), 0);
      assert.strictEqual(again.status, 'ok', again.message);
    });
  });
});
