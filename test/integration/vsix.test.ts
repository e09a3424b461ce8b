/**
 * The packaged extension: `npm run package`'s .vsix installs into the VS Code
 * server, and the installed copy's worker runs with the onnxruntime binary
 * and the default bundle it ships (found next to the worker, no repo needed).
 * test/host/ui-vsix.mjs activates the installed copy in a real workbench.
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient } from '../../src/client/engineClient';
import { DEFAULT_MODEL, REPO_ROOT, minilm, testCacheDir, tmpDir } from './helpers';

const SERVER = path.join(REPO_ROOT, '.cache', 'code-server', 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js');

describe('packaged extension (.vsix)', function () {
  this.timeout(300_000);
  let installed: string;

  before(function () {
    if (!fs.existsSync(SERVER)) this.skip(); // test/host/install.sh provides the VS Code server
    const out = tmpDir('vsix');
    const vsix = path.join(out, 'xetrieval.vsix');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--target', 'linux-x64', '--allow-missing-repository', '--skip-license', '-o', vsix], { cwd: REPO_ROOT, stdio: 'pipe' });
    const size = fs.statSync(vsix).size;
    assert.ok(size > 20e6 && size < 80e6, `vsix size ${size}`);
    // Left for test/host/ui-vsix.mjs (which reuses it while it matches the built tree); copy then rename, never half a file.
    const shared = path.join(REPO_ROOT, 'out', 'vsix', 'xetrieval-linux-x64.vsix');
    fs.mkdirSync(path.dirname(shared), { recursive: true });
    fs.copyFileSync(vsix, `${shared}.${process.pid}.tmp`);
    fs.renameSync(`${shared}.${process.pid}.tmp`, shared);
    const exts = path.join(out, 'exts');
    const log = execFileSync(process.execPath, [SERVER, '--install-extension', vsix, '--extensions-dir', exts, '--server-data-dir', path.join(out, 'data')], { encoding: 'utf8' });
    assert.match(log, /successfully installed/);
    installed = path.join(exts, fs.readdirSync(exts).find((d) => d.startsWith('xetrieval.xetrieval-'))!);
  });

  it('ships the bundles, the default explanation bundle and only the linux-x64 onnxruntime binary, not test data', () => {
    for (const f of ['dist/extension.js', 'dist/worker.js', 'dist/lane.js', 'dist/webview.js', 'dist/webview.css', 'models/all-MiniLM-L6-v2/manifest.json', 'models/all-MiniLM-L6-v2/sae.safetensors']) {
      assert.ok(fs.existsSync(path.join(installed, f)), f);
    }
    const bin = path.join(installed, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
    assert.deepStrictEqual(fs.readdirSync(bin), ['linux']);
    assert.ok(!fs.existsSync(path.join(installed, 'test')) && !fs.existsSync(path.join(installed, 'src')));
    assert.deepStrictEqual(fs.readdirSync(path.join(installed, 'dist')).filter((f) => f.endsWith('.map')), [], 'no source maps');
  });

  it('the installed worker explains a pair with the bundle it ships', async () => {
    await minilm();
    const client = new EngineClient({ device: 'cpu', workerPath: path.join(installed, 'dist', 'worker.js') });
    try {
      const r = await client.request('explain', {
        ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() },
        pairs: [{ query: 'why does ice float on water?', doc: 'Ice is less dense than liquid water because water expands when it freezes.' }],
      });
      const e = r.result.explanations[0];
      assert.ok(e.shared_features.length > 0);
      assert.ok(e.features.every((f) => typeof f.label === 'string'));
      assert.strictEqual(r.meta.provider, 'cpu');
    } finally {
      await client.dispose();
    }
  });
});
