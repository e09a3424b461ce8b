/**
 * `xetrieval modulate`'s refusals that come before any encoding: no model
 * needed. A bad adapter (truncated, incomplete) is named by file and tensor;
 * misuse is exit 2.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { saveImrnnAdapter } from '../../src/engine/modulation/adapter';
import { writeSafetensors } from '../../src/engine/safetensors';
import { cliInProcess } from './helpers/cli';
import { tinyAdapter } from './helpers/imrnn';

describe('modulate CLI: refusals before any encoding', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-modcli-'));
  const pairs = path.join(dir, 'pairs.jsonl');
  fs.writeFileSync(pairs, JSON.stringify({ query_id: 'q', doc_id: 'd', query: 'a', doc: 'b', label: 1 }) + '\n');

  it('needs exactly one of --input and --data', async () => {
    const f = path.join(dir, 'ok.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    const none = await cliInProcess(['modulate', '--adapter', f]);
    assert.strictEqual(none.code, 2);
    assert.match(none.stderr, /either --input <pairs.jsonl> or --data <BEIR folder>/);
    const both = await cliInProcess(['modulate', '--adapter', f, '--input', pairs, '--data', dir]);
    assert.strictEqual(both.code, 2);
  });

  it('refuses a truncated adapter, naming the file and the tensor', async () => {
    const f = path.join(dir, 'ok2.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    const cut = path.join(dir, 'cut.safetensors');
    const bytes = fs.readFileSync(f);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const r = await cliInProcess(['modulate', '--adapter', cut, '--input', pairs]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /cut\.safetensors: tensor "[a-z_.0-9]+" ends at byte \d+ but the file has \d+ bytes \(truncated download\?\)/);
  });

  it('refuses an adapter with missing tensors, naming the file and the tensor', async () => {
    const part = path.join(dir, 'part.safetensors');
    const w = tinyAdapter();
    writeSafetensors(part, { 'projector.weight': { dtype: 'F32', shape: [4, 6], data: w.projector.weight }, 'projector.bias': w.projector.bias });
    const r = await cliInProcess(['modulate', '--adapter', part, '--input', pairs]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /part\.safetensors: tensor "doc_hypernet\.hypernet\.0\.bias": missing \(and 15 more/);
  });

  it('refuses a missing pairs file by name', async () => {
    const f = path.join(dir, 'ok3.safetensors');
    saveImrnnAdapter(f, tinyAdapter(), {});
    const r = await cliInProcess(['modulate', '--adapter', f, '--input', path.join(dir, 'nope.jsonl')]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /nope\.jsonl/);
  });
});
