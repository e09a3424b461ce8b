/**
 * `xetrieval models list` in-process on a cache built from fake model
 * folders: what is cached, where from (a local folder with the digest of its
 * files), and a damaged entry named as such.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { filesDigest } from '../../src/engine/models/local';
import { pullModel } from '../../src/engine/models/pull';
import { cliInProcess } from './helpers/cli';
import { fakeModelFiles, tempDir } from './helpers/modelFixtures';

const cli = (argv: string[]) => cliInProcess(argv);

describe('cli: models list', () => {
  let work: string;
  before(async () => {
    work = await tempDir();
  });
  after(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  it('lists each cached model with its source, content digest and weights sha256; a damaged entry is named and exits 1', async () => {
    const cacheDir = path.join(work, 'cache');
    const empty = await cli(['--cache-dir', cacheDir, 'models', 'list']);
    assert.strictEqual(empty.code, 0, empty.stderr);
    assert.strictEqual(empty.stdout, `no models in ${cacheDir}\n`);

    for (const name of ['model-a', 'model-b']) {
      const src = path.join(work, name);
      for (const [rel, data] of Object.entries(fakeModelFiles(1000 + name.length))) {
        await fsp.mkdir(path.dirname(path.join(src, rel)), { recursive: true });
        await fsp.writeFile(path.join(src, rel), data);
      }
      await pullModel({ model: name, source: src, cacheDir });
    }
    const a = await pullModel({ model: 'model-a', source: path.join(work, 'model-a'), cacheDir });
    const ok = await cli(['--cache-dir', cacheDir, 'models', 'list', '--verify']);
    assert.strictEqual(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.includes(`model-a  `), ok.stdout);
    assert.ok(ok.stdout.includes('ok (verified)'), ok.stdout);
    assert.ok(ok.stdout.includes(`from file:${path.join(work, 'model-a')} (content sha256:${filesDigest(a.files)})`), ok.stdout);
    assert.ok(ok.stdout.includes(`weights sha256:${a.files['model.safetensors'].sha256}`), ok.stdout);
    assert.ok(ok.stdout.includes(a.dir), ok.stdout);

    await fsp.truncate(path.join(cacheDir, 'models', 'model-b', 'model.safetensors'), 10);
    const bad = await cli(['--cache-dir', cacheDir, 'models', 'list']);
    assert.strictEqual(bad.code, 1);
    assert.match(bad.stdout, /model-b {2}[\d.]+ KiB {2}corrupt: model\.safetensors has 10 bytes, expected \d+/);
    assert.match(bad.stdout, /model-a {2}[\d.]+ KiB {2}ok\n/);
  });
});
