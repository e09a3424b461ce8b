import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BUNDLE_FORMAT, parseManifest, readManifest } from '../../src/engine/bundle';
import { resolvePrecision } from '../../src/protocol/worker';

describe('precision', () => {
  it('auto is int8 on the CPU for plain encoding, fp32 with a bundle and on CUDA; an absent setting is fp32; a named one is kept', () => {
    assert.strictEqual(resolvePrecision('auto', 'cpu'), 'int8');
    assert.strictEqual(resolvePrecision('auto', 'cpu', true), 'fp32');
    assert.strictEqual(resolvePrecision('int8', 'cpu', true), 'int8', 'asked for, it is used with a bundle too');
    assert.strictEqual(resolvePrecision('auto', 'cuda'), 'fp32');
    assert.strictEqual(resolvePrecision(undefined, 'cpu'), 'fp32');
    assert.strictEqual(resolvePrecision('fp16', 'cuda'), 'fp16');
    assert.strictEqual(resolvePrecision('fp32', 'cpu'), 'fp32');
  });

  it('a bundle manifest records the precision it was trained on; absent means fp32, anything else is refused naming the field', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-precision-'));
    // the committed default bundle's manifest, with its base model replaced
    const whole = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'models', 'all-MiniLM-L6-v2', 'manifest.json'), 'utf8'));
    assert.strictEqual(whole.format, BUNDLE_FORMAT);
    const write = (baseModel: object) => fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...whole, baseModel }));
    const sha = 'a'.repeat(64);
    write({ id: 'm', weightsSha256: sha, dim: 4 });
    assert.strictEqual(readManifest(dir).baseModel.precision, undefined);
    write({ id: 'm', weightsSha256: sha, dim: 4, precision: 'int8' });
    assert.strictEqual(readManifest(dir).baseModel.precision, 'int8');
    write({ id: 'm', weightsSha256: sha, dim: 4, precision: 'int4' });
    assert.throws(() => readManifest(dir), /manifest\.json: field "baseModel\.precision" is "int4", expected "fp32", "int8" or "fp16"/);
  });

  it('a bundle manifest is checked field by field: wrong types, bad digests and paths leaving the folder are refused by name', () => {
    const whole = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'models', 'all-MiniLM-L6-v2', 'manifest.json'), 'utf8'));
    assert.strictEqual(parseManifest(structuredClone(whole), 'm.json').sae.dictSize, whole.sae.dictSize, 'the committed manifest passes');
    const bad: [string, (m: any) => void, RegExp][] = [
      ['not an object', (m) => Object.keys(m).forEach((k) => delete m[k]), /field "format" is missing/],
      ['sae.dictSize a string', (m) => (m.sae.dictSize = '4096'), /field "sae\.dictSize" is "4096", expected a whole number ≥ 1/],
      ['k above the dictionary', (m) => (m.sae.k = m.sae.dictSize + 1), /field "sae\.k" is \d+, expected at most sae\.dictSize/],
      ['short digest', (m) => (m.labels.sha256 = 'abc'), /field "labels\.sha256" is "abc", expected a sha256/],
      ['a view file outside the folder', (m) => (m.views[1].file = '../../etc/passwd'), /field "views\[1\]\.file" is "\.\.\/\.\.\/etc\/passwd", expected a path inside the bundle folder/],
      ['an absolute sae file', (m) => (m.sae.file = '/tmp/sae.safetensors'), /field "sae\.file" .* expected a path inside the bundle folder/],
      ['views not an array', (m) => (m.views = {}), /field "views" is \{\}, expected an array/],
      ['a held-out entry not a string', (m) => (m.heldOut = [3]), /field "heldOut\[0\]" is 3, expected a string/],
      ['generic threshold above 1', (m) => (m.generic = { threshold: 2, count: 0 }), /field "generic\.threshold" is 2, expected a share above 0 and at most 1/],
      ['seed missing', (m) => delete m.seed, /field "seed" is missing, expected a whole number ≥ 0/],
    ];
    for (const [what, edit, re] of bad) {
      const m = structuredClone(whole);
      edit(m);
      assert.throws(() => parseManifest(m, 'm.json'), (e: Error) => re.test(e.message) && e.message.startsWith('m.json: '), what);
    }
  });
});
