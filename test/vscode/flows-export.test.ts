/**
 * (Named to run after extension.test.ts, which needs a worker never started.)
 *
 * "Xetrieval: Export Explanation…" in a real extension host with the real
 * worker and bundle: a case of an eval file is explained, then exported in
 * each format (by the command's argument, and from the panel's Export button
 * through the dialogs, which the test answers), and every file is read back:
 * JSON.parse, an RFC 4180 reader, the Markdown tables split into cells.
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
import type { CaseResult, EditorFlows, ExportResult } from '../../src/extension/editorFlows';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { ExplanationPanel } from '../../src/extension/panel';
import type { SelectionResult } from '../../src/extension/selection';
import { missingForWorkerTests } from './bundleReady';
import { isListed } from '../../src/core/explain/attribution';
import { exportBaseName } from '../../src/core/exportExplanation';
import { isPairExplanation } from '../../src/protocol/webview';
import type { PairExplanation } from '../../src/protocol/worker';
import { parseCsv, tablesUnder } from '../unit/helpers/exportParse';

const EXTENSION_ID = 'xetrieval.xetrieval';
const MODEL = 'all-MiniLM-L6-v2';

const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;

async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  for (const deadline = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
  }
}

describe('export an explanation', function () {
  this.timeout(600_000);
  let flows: EditorFlows;
  let panel: ExplanationPanel;
  let tmp: string;
  let pairs: vscode.Uri;
  let requestId = 7000;
  const saved: Partial<EditorFlows['exportDialogs']> = {};

  before(async function () {
    const ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID)!;
    const api = await ext.activate();
    flows = api.flows;
    panel = api.panel;
    const missing = missingForWorkerTests(ext.extensionPath, MODEL);
    if (missing) {
      console.log(`  skipping: ${missing}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-export-'));
    pairs = vscode.Uri.file(path.join(tmp, 'faq.jsonl'));
    fs.copyFileSync(path.join(ext.extensionPath, 'examples', 'pairs.jsonl'), pairs.fsPath);
    Object.assign(saved, flows.exportDialogs);
  });

  afterEach(() => Object.assign(flows.exportDialogs, saved));

  after(async () => {
    if (!tmp) return;
    for (const f of flows.snapshot().files) await run('xetrieval.closeEvalFile', f.file);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The case the panel shows, with its explanation, as the files must carry it. */
  const shown = () => {
    const c = flows.shownCase;
    assert.ok(c, 'a case is shown');
    return c;
  };

  function checkJson(file: string, c: { pair: PairExplanation; query: string; doc: string; file?: string; precision?: string }): void {
    const back = JSON.parse(fs.readFileSync(file, 'utf8')) as PairExplanation & { precision?: string; query: string; doc: string; context: { model: string; file?: string; bundle?: string } };
    assert.ok(isPairExplanation(back), 'the JSON is an explanation record');
    assert.strictEqual(back.query_id, c.pair.query_id);
    assert.strictEqual(back.doc_id, c.pair.doc_id);
    assert.strictEqual(back.score, c.pair.score);
    assert.deepStrictEqual(back.shared_features, c.pair.shared_features);
    assert.deepStrictEqual(back.features.map((f) => f.id), c.pair.features.map((f) => f.id));
    assert.strictEqual(back.query, c.query);
    assert.strictEqual(back.doc, c.doc);
    assert.strictEqual(back.context.model, MODEL);
    assert.strictEqual(back.context.file, c.file);
    assert.ok(back.context.bundle && fs.existsSync(path.join(back.context.bundle, 'manifest.json')), `the bundle folder: ${back.context.bundle}`);
    assert.strictEqual(back.precision, c.precision);
  }

  function checkCsv(file: string, p: PairExplanation): void {
    const [head, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'));
    assert.strictEqual(rows.length, p.features.length, 'one row per feature, minor ones included');
    assert.ok(rows.every((r) => r.length === head.length), 'every row has every column');
    const col = (n: string) => head.indexOf(n);
    const byId = new Map(p.features.map((f) => [f.id, f]));
    for (const r of rows) {
      const f = byId.get(Number(r[col('feature_id')]));
      assert.ok(f, `feature ${r[col('feature_id')]} is the explanation's`);
      assert.strictEqual(r[col('label')], f.label);
      assert.strictEqual(Number(r[col('share')]), f.share);
      assert.strictEqual(Number(r[col('erasure_delta')]), f.erasureDelta);
      assert.strictEqual(r[col('minor')], String(f.minor === true));
      assert.strictEqual(r[col('weak')], String(f.weak === true));
    }
    const shares = rows.map((r) => Number(r[col('share')]));
    assert.deepStrictEqual(shares, [...shares].sort((a, b) => b - a), 'by share, largest first');
  }

  function checkMarkdown(file: string, p: PairExplanation): string {
    const md = fs.readFileSync(file, 'utf8');
    const [split] = tablesUnder(md, '## Score');
    const parts = split.slice(1, -1).map((r) => Number(r[1].replace('−', '-')));
    assert.strictEqual(parts.length, 5, 'shared, one-sided, generic, bias, error');
    assert.ok(Math.abs(parts.reduce((a, b) => a + b, 0) - p.score) < 5e-4 * 5, 'the parts (4 decimals) add up to the score');
    const listed = p.features.filter(isListed);
    const [table] = tablesUnder(md, '## Features');
    if (!listed.length) {
      assert.strictEqual(table, undefined, 'no feature table when nothing is listed');
      assert.match(md, /\nNo shared feature adds 0\.01 to the score/);
    } else {
      assert.strictEqual(table.length - 1, listed.length, 'a row per listed feature');
      assert.ok(table.every((r) => r.length === table[0].length), 'no label split a row');
      assert.deepStrictEqual(table.slice(1).map((r) => r[1]).sort(), listed.map((f) => f.label.replace(/\r\n|\r|\n/g, ' ').trim()).sort(), 'the labels read back');
    }
    const minor = p.features.filter((f) => f.minor).length;
    if (minor) assert.match(md, new RegExp(`\\n${minor} minor features? \\(each adds under 0\\.01`));
    const weak = p.features.filter((f) => f.weak && !f.minor).length;
    if (weak) assert.match(md, new RegExp(`\\n${weak} weakly active features? \\(under a quarter`));
    const unnamed = p.features.filter((f) => f.unnamed && !f.weak && !f.minor).length;
    if (unnamed) assert.match(md, new RegExp(`\\n${unnamed} unnamed features? \\(`));
    if (p.erasure) assert.deepStrictEqual(tablesUnder(md, '## Erasure of O(q,d)')[0].slice(1).map((r) => r[0]), ['O(q,d)', 'control']);
    return md;
  }

  it('exports an explained case of an eval file as Markdown, JSON and CSV, each file read back whole', async () => {
    const r = await run<EvalRunResult>('xetrieval.explainEvalFile', pairs);
    assert.strictEqual(r.status, 'ok', r.message);
    const key = flows.snapshot(1000).tree[0].children![0].key!;
    const opened = await run<CaseResult>('xetrieval.openCase', key, pairs.toString());
    assert.strictEqual(opened.status, 'ok', opened.message);
    const c = shown();
    assert.strictEqual(c.file, 'faq.jsonl');
    assert.ok(c.pair.score_terms && c.pair.erasure && c.pair.features.length > 0);
    const offered: string[] = [];
    flows.exportDialogs.offerOpen = (m) => void offered.push(m);

    const target = (ext: string) => vscode.Uri.file(path.join(tmp, `case.${ext}`));
    const md = await run<ExportResult>('xetrieval.exportExplanation', { format: 'markdown', target: target('md') });
    assert.strictEqual(md.status, 'ok', md.message);
    const text = checkMarkdown(target('md').fsPath, c.pair);
    assert.ok(text.includes(c.query), 'the report has the query');
    const json = await run<ExportResult>('xetrieval.exportExplanation', { format: 'json', target: target('json').fsPath });
    assert.strictEqual(json.status, 'ok', json.message);
    checkJson(target('json').fsPath, c);
    const csv = await run<ExportResult>('xetrieval.exportExplanation', { format: 'csv', target: target('csv') });
    assert.strictEqual(csv.status, 'ok', csv.message);
    checkCsv(target('csv').fsPath, c.pair);
    assert.strictEqual(offered.length, 3, '"Open" offered after each export');
    // nothing but the three files (no temporary file left beside them) and the eval file
    assert.deepStrictEqual(fs.readdirSync(tmp).sort(), ['case.csv', 'case.json', 'case.md', 'faq.jsonl']);
  });

  it('the panel\'s Export button asks for the format and the file (default named after the case, beside the eval file) and answers where it went', async () => {
    const c = shown();
    const out = path.join(tmp, 'from-panel.csv');
    let defaultUri: vscode.Uri | undefined;
    flows.exportDialogs.pickFormat = async () => 'csv';
    flows.exportDialogs.pickTarget = async (d) => {
      defaultUri = d;
      return vscode.Uri.file(out);
    };
    const offered: string[] = [];
    flows.exportDialogs.offerOpen = (m, f) => void offered.push(`${m} @ ${f.fsPath}`);
    await waitFor(() => panel.isReady, 'the panel webview is ready');
    panel.handleWebviewMessage({ type: 'exportExplanation', requestId: ++requestId });
    await waitFor(() => offered.length > 0, 'the export from the panel');
    assert.strictEqual(defaultUri?.fsPath, path.join(tmp, `${exportBaseName(c.pair)}.csv`));
    assert.ok(path.basename(defaultUri.fsPath).startsWith(`xetrieval-${c.pair.query_id}-`), defaultUri.fsPath);
    assert.match(offered[0], /CSV feature table .* @ .*from-panel\.csv$/);
    checkCsv(out, c.pair);
  });

  it('cancelling a dialog writes nothing; the loaded eval file (or a link to it) is never overwritten', async () => {
    const before = fs.readFileSync(pairs.fsPath, 'utf8');
    flows.exportDialogs.pickFormat = async () => undefined;
    assert.strictEqual((await run<ExportResult>('xetrieval.exportExplanation')).status, 'cancelled');
    flows.exportDialogs.pickFormat = async () => 'json';
    flows.exportDialogs.pickTarget = async () => undefined;
    assert.strictEqual((await run<ExportResult>('xetrieval.exportExplanation')).status, 'cancelled');

    const same = await run<ExportResult>('xetrieval.exportExplanation', { format: 'json', target: pairs });
    assert.strictEqual(same.status, 'error');
    assert.strictEqual(same.code, 'E_SAME_FILE');
    assert.match(same.message!, /is the same file as the loaded eval file/);
    const link = path.join(tmp, 'link.jsonl');
    fs.symlinkSync(pairs.fsPath, link);
    const viaLink = await run<ExportResult>('xetrieval.exportExplanation', { format: 'csv', target: link });
    assert.strictEqual(viaLink.code, 'E_SAME_FILE', viaLink.message);
    assert.match(viaLink.message!, /a hard or symbolic link to it/);
    assert.strictEqual(fs.readFileSync(pairs.fsPath, 'utf8'), before, 'the eval file is untouched');
    const missing = await run<ExportResult>('xetrieval.exportExplanation', { format: 'csv', target: path.join(tmp, 'no-such-folder', 'x.csv') });
    assert.strictEqual(missing.code, 'E_WRITE');
    assert.match(missing.message!, /no such file or folder/);
    assert.ok(!fs.readdirSync(tmp).some((f) => f.endsWith('.partial')), 'no temporary file left');
  });

  it('a selection\'s explanation exports its word attributions in the Markdown report', async () => {
    const text = 'How do I undo my last git commit but keep the changes?\n\n   Run git reset --soft HEAD~1: it moves the branch back one commit and leaves your changes staged.\n';
    const editor = await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content: text, language: 'plaintext' }));
    editor.selections = [new vscode.Selection(0, 0, 0, 55), new vscode.Selection(2, 0, 2, 200)];
    const r = await run<SelectionResult>('xetrieval.explainSelection');
    assert.strictEqual(r.status, 'ok', r.message);
    const c = shown();
    assert.ok(c.pair.token_attributions, 'the selection carries word attributions');
    const out = path.join(tmp, 'selection.md');
    const e = await run<ExportResult>('xetrieval.exportExplanation', { format: 'markdown', target: out });
    assert.strictEqual(e.status, 'ok', e.message);
    const md = checkMarkdown(out, c.pair);
    const [queryWords, docWords] = tablesUnder(md, '## Word attributions');
    const top = (a: NonNullable<PairExplanation['token_attributions']>['query']) => [...a.units].filter((u) => u.score > 0).sort((x, y) => y.score - x.score)[0].text;
    assert.deepStrictEqual(queryWords[1].slice(0, 2), ['supports', top(c.pair.token_attributions.query)]);
    assert.deepStrictEqual(docWords[1].slice(0, 2), ['supports', top(c.pair.token_attributions.doc)]);
  });
});
