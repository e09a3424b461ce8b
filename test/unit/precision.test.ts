import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BUNDLE_FORMAT, readManifest } from '../../src/engine/bundle';
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
    const write = (baseModel: object) => fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: BUNDLE_FORMAT, baseModel }));
    write({ id: 'm', weightsSha256: 'a', dim: 4 });
    assert.strictEqual(readManifest(dir).baseModel.precision, undefined);
    write({ id: 'm', weightsSha256: 'a', dim: 4, precision: 'int8' });
    assert.strictEqual(readManifest(dir).baseModel.precision, 'int8');
    write({ id: 'm', weightsSha256: 'a', dim: 4, precision: 'int4' });
    assert.throws(() => readManifest(dir), /manifest\.json: field "baseModel\.precision" is "int4", expected "fp32", "int8" or "fp16"/);
  });
});
