import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { XetrievalApi } from '../../src/extension/api';
import type { PulledModel } from '../../src/protocol/worker';

const EXTENSION_ID = 'xetrieval.xetrieval';
/** Not a registered model, so its weights are not pinned and any local folder is accepted. */
const TEST_MODEL = 'xetrieval-test-tiny';
const COMMANDS = [
  'xetrieval.pullModel',
  'xetrieval.showWorkerLog',
  'xetrieval.restartWorker',
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
  'xetrieval.compareWithBestRelevant',
  'xetrieval.compareCandidates',
  'xetrieval.applyFlipSet',
  'xetrieval.patchCase',
  'xetrieval.closeEvalFile',
  'xetrieval.reloadEvalFile',
  'xetrieval.modulateWithAdapter',
  'xetrieval.clearModulationAdapter',
];

const config = () => vscode.workspace.getConfiguration('xetrieval');

async function waitFor(cond: () => boolean, ms = 30_000): Promise<void> {
  for (const deadline = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
  }
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('extension', () => {
  let api: XetrievalApi;

  before(async () => {
    const ext = vscode.extensions.getExtension<XetrievalApi>(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not installed in this host`);
    api = await ext.activate();
  });

  it('activates and returns its API', () => {
    assert.ok(vscode.extensions.getExtension(EXTENSION_ID)?.isActive);
    assert.strictEqual(typeof api.pullModel, 'function');
    assert.strictEqual(typeof api.state, 'function');
  });

  it('registers every contributed command', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const contributed = (ext.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
    assert.deepStrictEqual([...contributed].sort(), [...COMMANDS].sort());
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of contributed) assert.ok(registered.has(c), `${c} is not registered`);
  });

  // Runs before any test file makes a request (files run in name order; keep lazy-start checks here).
  it('names every context-menu entry "Xetrieval: …" (menus show a title without its category)', () => {
    const pkg = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { commands: { command: string; title: string; category?: string }[]; menus: Record<string, { command: string }[]> } };
    const titles = new Map(pkg.contributes.commands.map((c) => [c.command, c.category ? `${c.category}: ${c.title}` : c.title]));
    for (const menu of ['editor/context', 'explorer/context']) {
      for (const item of pkg.contributes.menus[menu]) {
        const c = pkg.contributes.commands.find((x) => x.command === item.command)!;
        assert.match(c.title, /^Xetrieval: /, `${menu}: ${item.command} shows "${c.title}"`);
        assert.match(titles.get(item.command)!, /^Xetrieval: [^X]/, 'and the palette does not say it twice');
      }
    }
  });

  it('starts no worker before the first request', () => {
    const s = api.state();
    assert.strictEqual(s.worker.status, 'stopped');
    assert.strictEqual(api.client.pid, undefined);
    assert.match(s.text, /all-MiniLM-L6-v2 · \S+ · \S+ · idle/); // model · device · precision · state
  });

  it('shows the worker log without starting the worker', async () => {
    await vscode.commands.executeCommand('xetrieval.showWorkerLog');
    assert.strictEqual(api.state().worker.status, 'stopped');
  });

  describe('pulling a model from a local folder', () => {
    let tmp: string, source: string, cache: string;
    let previousCache: string | undefined;

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-pull-'));
      source = path.join(tmp, 'source');
      cache = path.join(tmp, 'cache');
      fs.mkdirSync(source);
      fs.writeFileSync(path.join(source, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: 384, num_hidden_layers: 6 }));
      fs.writeFileSync(path.join(source, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: {} } }));
      fs.writeFileSync(path.join(source, 'model.safetensors'), crypto.randomBytes(4096));
      // Pull into a scratch cache, never into the shared pre-filled one.
      previousCache = config().inspect<string>('cacheFolder')?.workspaceValue;
      await config().update('cacheFolder', cache, vscode.ConfigurationTarget.Workspace);
    });

    after(async () => {
      await config().update('cacheFolder', previousCache, vscode.ConfigurationTarget.Workspace);
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    it('pulls a model from a local folder into the cache folder and starts the worker', async () => {
      const pulled = await api.pullModel(TEST_MODEL, source);
      assert.ok(pulled);
      assert.strictEqual(pulled.model, TEST_MODEL);
      assert.strictEqual(pulled.fetched, true);
      assert.ok(path.resolve(pulled.dir).startsWith(cache + path.sep), `${pulled.dir} is not inside ${cache}`);
      for (const name of ['config.json', 'tokenizer.json', 'model.safetensors']) {
        const copied = path.join(pulled.dir, name);
        assert.ok(fs.existsSync(copied), `${copied} missing`);
        assert.strictEqual(sha256(copied), sha256(path.join(source, name)));
        assert.strictEqual(pulled.files[name]?.sha256, sha256(copied));
      }
      const s = api.state();
      assert.strictEqual(s.worker.status, 'ready');
      assert.match(s.text, / · (CPU|CUDA) · fp32 · ready/, 'device and precision (default fp32)');
      assert.match(s.tooltip, /Precision: fp32 \(setting: fp32\)/);
      if (s.worker.status === 'ready' && s.worker.providerNote) assert.ok(s.tooltip.includes(s.worker.providerNote), 'the fallback note is not in the tooltip');
    });

    it('xetrieval.pullModel with arguments skips the quick pick and reuses the cache entry', async () => {
      const pulled = await vscode.commands.executeCommand<PulledModel | undefined>('xetrieval.pullModel', TEST_MODEL, source);
      assert.ok(pulled, 'the command reported a failure');
      assert.strictEqual(pulled.fetched, false);
      assert.ok(pulled.dir.startsWith(cache + path.sep));
    });

    it('refuses other weights under a pinned model id', async () => {
      await assert.rejects(api.pullModel('all-MiniLM-L6-v2', source), (e: { code?: string }) => e.code === 'E_WEIGHTS_MISMATCH');
    });

    it('restarts the worker on xetrieval.restartWorker', async () => {
      const before = api.client.pid;
      await vscode.commands.executeCommand('xetrieval.restartWorker');
      assert.strictEqual(api.state().worker.status, 'ready');
      assert.ok(api.client.pid && api.client.pid !== before);
    });

    it('shows a changed xetrieval.precision in the status bar without restarting the worker', async () => {
      const before = api.client.pid;
      const previous = config().inspect<string>('precision')?.workspaceValue;
      await config().update('precision', 'auto', vscode.ConfigurationTarget.Workspace);
      try {
        await waitFor(() => / · (int8\/fp32|fp32) · /.test(api.state().text) && /setting: auto/.test(api.state().tooltip));
        assert.strictEqual(api.client.pid, before, 'same worker');
        assert.match(api.state().tooltip, /Precision: (int8 for scores and eval files, fp32 for explanations|fp32) \(setting: auto\)/);
      } finally {
        await config().update('precision', previous, vscode.ConfigurationTarget.Workspace);
      }
    });

    it('restarts a running worker when xetrieval.device changes', async () => {
      const before = api.client.pid;
      const previous = config().inspect<string>('device')?.workspaceValue;
      await config().update('device', 'cpu', vscode.ConfigurationTarget.Workspace);
      try {
        await waitFor(() => api.state().worker.status === 'ready' && api.client.pid !== before);
        assert.match(api.state().text, / · CPU · fp32 · ready/);
      } finally {
        await config().update('device', previous, vscode.ConfigurationTarget.Workspace);
        await waitFor(() => api.state().worker.status === 'ready');
      }
    });
  });
});
