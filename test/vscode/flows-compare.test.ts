/**
 * Compare mode inside the real extension host, with the real model and
 * bundle: examples/pairs.jsonl explained as an eval file, "Compare with the
 * Best Relevant Document" on a failing case of the Cases view, what the
 * compare view painted, the flip set applied as steering sliders, and two
 * chosen candidates compared. Skipped (saying why) without the bundle or the
 * cached model, like the worker-backed flow tests.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { XetrievalApi } from '../../src/extension/api';
import type { CompareResult } from '../../src/extension/compare';
import type { EvalRunResult } from '../../src/extension/evalFile';
import type { CompareWords, FromCompareView } from '../../src/protocol/compare';
import { missingForWorkerTests } from './bundleReady';

const MODEL = 'all-MiniLM-L6-v2';
const run = <T>(command: string, ...args: unknown[]) => vscode.commands.executeCommand<T>(command, ...args) as Promise<T>;
type Rendered = Extract<FromCompareView, { type: 'log' }>;

describe('compare mode', function () {
  this.timeout(600_000);
  let api: XetrievalApi;
  let pairsFile: string;

  before(async function () {
    const ext = vscode.extensions.getExtension<XetrievalApi>('xetrieval.xetrieval')!;
    api = await ext.activate();
    pairsFile = path.join(ext.extensionPath, 'examples', 'pairs.jsonl');
    const missing = missingForWorkerTests(ext.extensionPath, MODEL) ?? (api.compare ? undefined : 'api.compare is missing');
    if (missing) {
      console.log(`  skipping compare mode: ${missing}`);
      this.skip();
    }
  });

  after(async () => {
    await run('xetrieval.resetSteering');
  });

  it('from a failing case: d− and d+ side by side, the contrast, the verified flip set; one click puts it on the sliders', async () => {
    const r = await run<EvalRunResult>('xetrieval.explainEvalFile', vscode.Uri.file(pairsFile));
    assert.strictEqual(r.status, 'ok', r.message);
    const s = api.flows.snapshot(100);
    const failing = s.tree.find((q) => q.failing && q.label.includes('undo my last git commit'));
    assert.ok(failing, `the git query is not among the failing ones: ${JSON.stringify(s.tree.map((q) => q.label))}`);

    // the Cases view's context menu passes the tree node
    const painted = new Promise<Rendered>((resolve) => {
      const sub = api.compare.onDidLog((m) => {
        if (m.rendered) {
          sub.dispose();
          resolve(m);
        }
      });
    });
    const c = await run<CompareResult>('xetrieval.compareWithBestRelevant', { kind: 'query', id: 'git-undo-commit' });
    assert.strictEqual(c.status, 'ok', c.message);
    const rec = c.record!;
    assert.strictEqual(rec.minus.doc_id, 'git-revert');
    assert.strictEqual(rec.plus.doc_id, 'git-reset-soft');
    assert.ok(rec.minus.score > rec.plus.score);
    assert.ok(rec.contrast.favour_minus.length > 0 && rec.contrast.favour_plus.length > 0);
    assert.ok(rec.flip.found && rec.flip.size >= 1, rec.flip.text);
    assert.match(rec.flip.text, /d\+ wins by/);

    const shown = await painted;
    assert.strictEqual(shown.rendered!.bars, rec.contrast.favour_minus.length + rec.contrast.favour_plus.length, 'one bar per listed feature');
    assert.strictEqual(shown.rendered!.flip, rec.flip.size);
    assert.match(shown.message, /git-revert vs git-reset-soft/);
    assert.deepStrictEqual(api.compare.current?.record.query_id, 'git-undo-commit');

    // the words behind the top contrast features, marked in both documents once occlusion has run
    const marked = new Promise<Rendered>((resolve) => {
      const sub = api.compare.onDidLog((m) => {
        if (m.marked) {
          sub.dispose();
          resolve(m);
        }
      });
    });
    const words = await run<CompareWords | undefined>('xetrieval.compareWords');
    assert.ok(words, 'word attributions came back');
    assert.ok(words!.minus.length + words!.plus.length > 0, 'some words are marked');
    for (const [side, doc] of [['minus', rec.minus.doc], ['plus', rec.plus.doc]] as const) {
      for (const m of words![side]) {
        assert.strictEqual(doc.slice(m.start, m.end), m.text, `${side}: the mark's offsets cut its words`);
        const favours = side === 'minus' ? rec.contrast.favour_minus : rec.contrast.favour_plus;
        assert.ok(favours.slice(0, 3).some((f) => f.id === m.feature), `${side}: a mark for a top feature favouring that document`);
        assert.ok(m.delta > 0);
      }
    }
    const seen = await marked;
    assert.deepStrictEqual(seen.marked, { minus: words!.minus.length, plus: words!.plus.length }, 'the page marked what the host sent');

    const before = api.flows.snapshot().steering;
    const applied = await run<CompareResult>('xetrieval.applyFlipSet');
    assert.strictEqual(applied.status, 'ok', applied.message);
    const after = api.flows.snapshot().steering;
    for (const f of rec.flip.features) {
      const slider = after.sliders.find((x) => x.id === f.id);
      assert.ok(slider, `no slider for flip feature ${f.id}`);
      assert.strictEqual(slider!.alpha, 0);
    }
    assert.ok(after.sliders.length >= before.sliders.length);
  });

  it('any two candidates: the pair asked for, in that order', async () => {
    const c = await run<CompareResult>('xetrieval.compareCandidates', { kind: 'query', id: 'http-429' }, 'http-too-many-requests', 'http-4xx');
    assert.strictEqual(c.status, 'ok', c.message);
    assert.strictEqual(c.record!.minus.doc_id, 'http-too-many-requests');
    assert.strictEqual(c.record!.plus.doc_id, 'http-4xx');
    // d+ already ranks above d− here: the empty set "flips" it
    assert.ok(c.record!.plus.score > c.record!.minus.score);
    assert.match(c.record!.flip.text, /d\+ already outranks d−/);
  });

  it('a query that does not fail says so', async () => {
    const c = await run<CompareResult>('xetrieval.compareWithBestRelevant', { kind: 'query', id: 'sci-sky-blue' });
    assert.strictEqual(c.status, 'warning');
    assert.match(c.message!, /does not fail/);
  });
});
