/**
 * The patchable encoder graph and activation patching on the real
 * all-MiniLM-L6-v2 (method.md §3): the hook graph agrees with the default
 * encoder, an all-false mask changes nothing, patching the whole residual
 * stream at layer 0 gives the perturbed score, patching nothing gives 0.
 */
import * as assert from 'assert';
import { Encoder } from '../../src/engine/encoder';
import { hookName, HOOK_KINDS } from '../../src/engine/bert/graph';
import { HookedEncoder } from '../../src/engine/patching/hooked';
import { patchedScores, patchPair, PatchInputError, preparePair } from '../../src/engine/patching/patch';
import { patchMetric } from '../../src/core/patching';
import { minilm } from './helpers';

const QUERY = 'How long do I boil an egg so the yolk stays runny?';
const DOC = 'For a soft-boiled egg, lower it into water that is already boiling and take it out after six minutes.';
const PERTURBED = `${DOC} yolk`;

describe('activation patching (hooked graph, real model)', function () {
  this.timeout(300_000);
  let enc: HookedEncoder;
  let plain: Encoder;

  before(async () => {
    const dir = (await minilm()).dir;
    enc = await HookedEncoder.load(dir);
    plain = await Encoder.load(dir, { provider: 'cpu' });
  });
  after(async () => {
    await enc?.release();
    await plain?.release();
  });

  it('the hooked graph gives the default encoder\'s embeddings (max |Δ| < 1e-5)', async () => {
    const texts = [QUERY, DOC, PERTURBED];
    const ref = await plain.encode(texts, { kind: 'document' });
    for (let i = 0; i < texts.length; i++) {
      const got = (await enc.run({ ids: [enc.tokenize(texts[i], 'document').ids] })).embeddings;
      let max = 0;
      for (let j = 0; j < enc.hidden; j++) max = Math.max(max, Math.abs(got[j] - ref.embeddings[i * enc.hidden + j]));
      assert.ok(max < 1e-5, `text ${i}: max |Δ| ${max}`);
    }
  });

  it('exposes every hook point with its shape', async () => {
    const ids = enc.tokenize(DOC, 'document').ids;
    const names = enc.hookPoints().map((h) => hookName(h.layer, h.kind));
    assert.strictEqual(names.length, enc.layers * HOOK_KINDS.length);
    const out = await enc.run({ ids: [ids, ids], fetch: names });
    for (const n of names) assert.strictEqual(out.outputs[n].length, 2 * ids.length * enc.hidden, n);
    assert.ok(names.includes('blocks.5.attn.hook_z') && names.includes('blocks.0.hook_resid_pre'));
  });

  it('an all-false mask with real patch values equals the unpatched output exactly', async () => {
    const prep = await preparePair(enc, QUERY, DOC, PERTURBED);
    // the same batch shape both times (onnxruntime's kernels may sum in another order for another shape)
    for (const rows of [1, 3]) {
      const ids = Array.from({ length: rows }, () => prep.orig);
      const unpatched = (await enc.run({ ids })).embeddings;
      // every hook gets the perturbed run's values; every mask is all false
      const masks = new Map(enc.hookPoints().map((h) => [hookName(h.layer, h.kind), new Uint8Array(rows * prep.orig.length * (h.kind === 'z' ? enc.heads : 1))]));
      const out = (await enc.run({ ids, patches: prep.patches, masks })).embeddings;
      const differ = out.filter((x, i) => x !== unpatched[i]).length;
      assert.strictEqual(differ, 0, `${rows} row(s): ${differ} values differ`);
    }
  });

  it('patching the whole residual stream at layer 0 gives metric 1, patching nothing gives 0', async () => {
    const prep = await preparePair(enc, QUERY, DOC, PERTURBED);
    assert.ok(Math.abs(prep.sPert - prep.sOrig) > 1e-4, `the perturbation moves the score (${prep.sOrig} → ${prep.sPert})`);
    const all = prep.orig.map((_, i) => i);
    const { scores } = await patchedScores(enc, prep, [
      { layer: 0, kind: 'resid_pre', positions: all },
      { layer: 0, kind: 'resid_pre', positions: [] },
      { layer: 3, kind: 'z', positions: [], head: 2 },
    ]);
    const m = scores.map((s) => patchMetric(s, prep.sOrig, prep.sPert)!);
    assert.ok(Math.abs(m[0] - 1) < 1e-5, `full residual patch at layer 0: metric ${m[0]}`);
    assert.strictEqual(m[1], 0);
    assert.strictEqual(m[2], 0);
  });

  it('batched patches give the same maps as one run per patch', async () => {
    const batched = await patchPair(enc, QUERY, DOC, PERTURBED, { granularities: ['heads'] });
    const single = await patchPair(enc, QUERY, DOC, PERTURBED, { granularities: ['heads'], batched: false });
    assert.strictEqual(batched.runs, 1);
    assert.strictEqual(single.runs, enc.layers * enc.heads);
    const a = batched.heads!.flat();
    const b = single.heads!.flat();
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-3, `head ${i}: ${x} vs ${b[i]}`));
  });

  it('block map is [3, layers, positions] over the aligned tokens, filler where the perturbed text has more', async () => {
    const r = await patchPair(enc, QUERY, DOC, PERTURBED, { granularities: ['block'] });
    assert.strictEqual(r.block!.length, 3);
    assert.strictEqual(r.block![0].length, enc.layers);
    assert.strictEqual(r.block![0][0].length, r.tokens.length);
    assert.deepStrictEqual(r.changed.map((i) => r.perturbed_tokens[i]), ['yo', '##lk']);
    assert.deepStrictEqual(r.changed.map((i) => r.tokens[i]), ['[PAD]', '[PAD]']);
    assert.strictEqual(r.perturbed_tokens[r.perturbed_tokens.length - 1], '[SEP]');
    for (const v of r.block!.flat(2)) assert.ok(Number.isFinite(v));
  });

  it('a perturbation that changes nothing, or a document without tokens, is refused with the reason', async () => {
    await assert.rejects(preparePair(enc, QUERY, DOC, `${DOC}  `), (e: unknown) => e instanceof PatchInputError && e.code === 'E_UNCHANGED' && /does not change/.test(e.message));
    const long = Array.from({ length: 300 }, () => 'egg').join(' ');
    await assert.rejects(preparePair(enc, QUERY, long, `${long} yolk`), (e: unknown) => e instanceof PatchInputError && /past the 256-token limit/.test(e.message));
    await assert.rejects(preparePair(enc, QUERY, '\u0301\u0301', 'yolk'), (e: unknown) => e instanceof PatchInputError && e.code === 'E_NO_TOKENS');
  });
});
