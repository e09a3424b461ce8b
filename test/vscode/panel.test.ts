/**
 * The explanation panel in a real extension host and a real webview: a
 * hand-built PanelCase (the sample, built from the protocol's types; no
 * worker) goes in, and the webview must answer `ready`, paint every feature
 * row and report it, come back after being hidden, and refuse malformed
 * messages. The sample steering owns the case and its sliders, as the flows
 * do for a real file: the panel keeps no copy.
 */
import * as assert from 'assert';
import * as vscode from 'vscode';
import { ExplanationPanel, type PanelHandlers } from '../../src/extension/panel';
import { samplePanelCase, SampleSteering } from '../../src/extension/samplePanel';
import type { PanelLog, ToWebview } from '../../src/protocol/webview';

const EXTENSION_ID = 'xetrieval.xetrieval';

/** Resolves with the first log line that `match` accepts (lines seen since `since` included). */
function nextLog(panel: ExplanationPanel, match: (l: PanelLog) => boolean, ms = 30_000): Promise<PanelLog> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no matching webview log within ${ms} ms`));
    }, ms);
    const sub = panel.onDidLog((l) => {
      if (!match(l)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(l);
    });
  });
}

describe('explanation panel', () => {
  let extensionUri: vscode.Uri;
  let panel: ExplanationPanel;
  const logs: PanelLog[] = [];
  const calls: string[] = [];
  let failSave = false;
  /** while set, answers to slider moves wait for it (α is taken at once, as the real steering does) */
  let holdMoves: Promise<void> | undefined;
  let owner: SampleSteering;
  let sample: PanelHandlers;
  /** texts the word attributions were asked for; those starting "held" wait for `release` */
  const wordCalls: string[] = [];
  let release: () => void = () => undefined;
  let held = Promise.resolve();

  before(async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not installed in this host`);
    extensionUri = ext.extensionUri;
    owner = new SampleSteering(200);
    sample = owner.handlers(() => panel);
    const handlers: PanelHandlers = {
      ...sample,
      onSetAlpha: async (id, alpha) => {
        calls.push(`setAlpha ${id} ${alpha}`);
        const u = await sample.onSetAlpha(id, alpha);
        if (holdMoves) await holdMoves;
        return u;
      },
      onSave: async () => {
        if (failSave) throw new Error('disk full');
        return sample.onSave();
      },
      onAttributeWords: async (query) => {
        wordCalls.push(query);
        if (query.startsWith('held')) await held;
        return { query: { window: 1, units: [{ text: query, start: 0, end: query.length, score: 0.01, features: {} }] }, doc: { window: 1, units: [] } };
      },
    };
    panel = new ExplanationPanel(extensionUri, handlers, { title: 'Xetrieval test' });
    panel.onDidLog((l) => logs.push(l));
  });

  after(async () => {
    panel.dispose();
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('answers ready and paints all 200 feature rows of a case', async () => {
    const c = samplePanelCase(200);
    assert.strictEqual(c.pair.features.length, 200);
    const ready = new Promise<void>((resolve) => panel.onDidBecomeReady(resolve));
    const painted = nextLog(panel, (l) => l.rendered?.reason === 'case');
    owner.show(panel, c, vscode.ViewColumn.One);
    await ready;
    assert.ok(panel.isReady);
    const log = await painted;
    assert.strictEqual(log.rendered?.rows, 200);
    assert.strictEqual(log.rendered?.features, 200);
    // Receive → paint of 200 rows; generous for a loaded 2-core machine (typically tens of ms).
    assert.ok(log.rendered.ms < 2000, `painted in ${log.rendered.ms} ms`);
    assert.strictEqual(panel.webviewPanel?.title, 'Xetrieval test: q-1 · d-13');
  });

  it('loads under its CSP without violations or script errors', async () => {
    // Violations and errors are posted as warn/error logs by the webview.
    await new Promise((r) => setTimeout(r, 300));
    const bad = logs.filter((l) => l.level !== 'info');
    assert.deepStrictEqual(
      bad.map((l) => l.message),
      [],
    );
  });

  it('repaints after steering is pushed from the host; the case it shows next is its owner\'s', async () => {
    const n = owner.sliders().length + 1;
    await sample.onAddSlider(5);
    await sample.onSetAlpha(5, 1.5);
    const repaint = nextLog(panel, (l) => l.rendered?.reason === 'steering');
    panel.pushSteering({ sliders: owner.sliders(), rerank: owner.rerank() });
    const log = await repaint;
    assert.strictEqual(log.rendered?.rows, n, 'rows = sliders in the update');
    assert.strictEqual(panel.case?.sliders.length, n, 'a reloaded webview gets the owner\'s case, with the added slider');
    assert.strictEqual(panel.case?.sliders.find((s) => s.id === 5)?.alpha, 1.5);
  });

  it('comes back with the case after being hidden (context is not retained)', async () => {
    const doc = await vscode.workspace.openTextDocument({ content: 'hide the panel' });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    assert.strictEqual(panel.webviewPanel?.visible, false);
    const painted = nextLog(panel, (l) => l.rendered?.reason === 'case');
    panel.webviewPanel?.reveal(vscode.ViewColumn.One);
    const log = await painted;
    assert.strictEqual(log.rendered?.rows, 200);
  });

  it('ignores malformed messages from the host and reports them', async () => {
    const warned = nextLog(panel, (l) => l.level === 'warn' && l.message.includes('malformed'));
    await panel.webviewPanel?.webview.postMessage({ type: 'case', state: { pair: {} } });
    await warned;
    // Still showing the real case: a valid push still repaints.
    const repaint = nextLog(panel, (l) => l.rendered?.reason === 'case');
    owner.show(panel, samplePanelCase(50));
    assert.strictEqual((await repaint).rendered?.rows, 50);
  });

  it('answers each request once, in order, handing every slider move on without waiting for the one before', async () => {
    const webview = panel.webviewPanel!.webview;
    const posted: ToWebview[] = [];
    const original = webview.postMessage.bind(webview);
    webview.postMessage = (m: unknown) => {
      posted.push(m as ToWebview);
      return original(m);
    };
    const [a, b] = panel.case!.sliders.map((x) => x.id);
    const tags = () => posted.map((m) => `${m.type} ${'replyTo' in m ? m.replyTo : '-'}`);
    let release: () => void = () => undefined;
    holdMoves = new Promise<void>((r) => (release = r));
    try {
      failSave = true;
      for (const m of [
        { type: 'setAlpha', requestId: 101, id: a, alpha: 0.5 },
        { type: 'setAlpha', requestId: 102, id: a, alpha: 0.7 },
        { type: 'setAlpha', requestId: 103, id: a, alpha: 0.9 },
        { type: 'setAlpha', requestId: 104, id: b, alpha: 1.5 },
        { type: 'setAlpha', requestId: 105, id: b, alpha: 3 }, // out of range: refused at the boundary, no reply
        { type: 'saveSteering', requestId: 106 },
        { type: 'resetSteering', requestId: 107 },
      ]) {
        panel.handleWebviewMessage(m);
      }
      for (const deadline = Date.now() + 10_000; posted.length < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      // every move reached the steering (which owns α and folds moves) while none was answered yet; save and reset, in order, did not wait for them
      assert.deepStrictEqual(calls, [`setAlpha ${a} 0.5`, `setAlpha ${a} 0.7`, `setAlpha ${a} 0.9`, `setAlpha ${b} 1.5`]);
      assert.deepStrictEqual(tags(), ['error 106', 'steering 107']);
      release();
      for (const deadline = Date.now() + 10_000; posted.length < 6 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    } finally {
      release();
      holdMoves = undefined;
      failSave = false;
      webview.postMessage = original;
    }
    assert.deepStrictEqual(tags(), ['error 106', 'steering 107', 'rerank 101', 'rerank 102', 'rerank 103', 'rerank 104']);
    const err = posted[0];
    assert.ok(err.type === 'error' && err.message === 'disk full');
    // The case is its owner's: reset, the last change, put every α back to 1.
    assert.ok(panel.case!.sliders.every((x) => x.alpha === 1));
    calls.length = 0;
  });

  it('word attributions: one pair at a time beside the steering queue, the latest waiting one kept', async () => {
    const webview = panel.webviewPanel!.webview;
    const posted: ToWebview[] = [];
    const original = webview.postMessage.bind(webview);
    webview.postMessage = (m: unknown) => {
      posted.push(m as ToWebview);
      return original(m);
    };
    held = new Promise<void>((r) => (release = r));
    const a = panel.case!.sliders[0].id;
    const wait = async (n: number) => {
      for (const deadline = Date.now() + 10_000; posted.length < n && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    };
    wordCalls.length = 0;
    try {
      panel.handleWebviewMessage({ type: 'attributeWords', requestId: 201, query: 'held 1', doc: 'd' });
      panel.handleWebviewMessage({ type: 'attributeWords', requestId: 202, query: 'held 2', doc: 'd' });
      panel.handleWebviewMessage({ type: 'attributeWords', requestId: 203, query: 'held 3', doc: 'd' });
      panel.handleWebviewMessage({ type: 'setAlpha', requestId: 204, id: a, alpha: 1 });
      // the slider is answered while the first attribution still runs; the second was replaced by the third
      await wait(2);
      assert.deepStrictEqual(posted.map((m) => `${m.type} ${'replyTo' in m ? m.replyTo : '-'}`), ['superseded 202', 'rerank 204']);
      release();
      await wait(4);
    } finally {
      release();
      webview.postMessage = original;
    }
    assert.deepStrictEqual(posted.map((m) => `${m.type} ${'replyTo' in m ? m.replyTo : '-'}`), ['superseded 202', 'rerank 204', 'words 201', 'words 203']);
    assert.deepStrictEqual(wordCalls, ['held 1', 'held 3']);
    const w = posted[3];
    assert.ok(w.type === 'words' && w.query === 'held 3' && w.words.query.units[0].text === 'held 3');
    calls.length = 0;
  });

  it('shows the empty state when the case is dropped, without errors', async () => {
    owner.clear(panel, 'nothing here');
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(panel.case, undefined);
    assert.deepStrictEqual(
      logs.filter((l) => l.level === 'error').map((l) => l.message),
      [],
    );
    assert.deepStrictEqual(calls, [], 'no slider moved in this suite');
  });
});
