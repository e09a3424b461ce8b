import * as assert from 'assert';
import { Bm25Index, bm25Tokens } from '../../src/core/bm25';
import { modulate } from '../../src/core/modulation';
import { adamState, adamStep, cloneWeights, groupLoss, initWeights, tensorsOf, zeroGrad } from '../../src/core/modulationTrain';
import { lcg, tinyAdapter } from './helpers/imrnn';

describe('core/modulationTrain', () => {
  const rnd = lcg(21);
  const group = { zq: Float32Array.from({ length: 6 }, rnd), zd: Float32Array.from({ length: 4 * 6 }, rnd) };

  it("the loss is the margin loss over the forward pass's scores", () => {
    const w = tinyAdapter(31);
    const s = modulate(w, group.zq, group.zd).scores;
    const expected = [1, 2, 3].reduce((acc, j) => acc + Math.max(0, 0.3 - s[0] + s[j]), 0) / 3;
    assert.ok(Math.abs(groupLoss(w, group, 0.3, undefined, 1, 0, rnd) - expected) < 1e-6);
  });

  it('the hand-written gradient matches finite differences on every tensor', () => {
    const w = tinyAdapter(32);
    const grad = cloneWeights(w, true);
    groupLoss(w, group, 5, grad, 1, 0, rnd); // margin 5: every hinge is active, the loss is smooth
    const ps = tensorsOf(w);
    const gs = tensorsOf(grad);
    const eps = 1e-3;
    let checked = 0;
    ps.forEach((p, t) => {
      for (let i = 0; i < p.length; i += Math.max(1, Math.floor(p.length / 5))) {
        const keep = p[i];
        p[i] = keep + eps;
        const up = groupLoss(w, group, 5, undefined, 1, 0, rnd);
        p[i] = keep - eps;
        const down = groupLoss(w, group, 5, undefined, 1, 0, rnd);
        p[i] = keep;
        const num = (up - down) / (2 * eps);
        assert.ok(Math.abs(num - gs[t][i]) < 2e-3 + 2e-2 * Math.abs(num), `tensor ${t}[${i}]: numeric ${num}, analytic ${gs[t][i]}`);
        checked++;
      }
    });
    assert.ok(checked > 50);
  });

  it('Adam steps lower the loss of a group it trains on', () => {
    const u = lcg(5);
    const w = initWeights(6, 4, 4, () => (u() + 1) / 2); // uniform in [0, 1)
    const grad = cloneWeights(w, true);
    const st = adamState(w);
    const first = groupLoss(w, group, 2.5, undefined, 1, 0, rnd);
    for (let i = 0; i < 200; i++) {
      zeroGrad(grad);
      groupLoss(w, group, 2.5, grad, 1, 0, rnd);
      adamStep(w, grad, st, 1e-2, 1e-5);
    }
    const last = groupLoss(w, group, 2.5, undefined, 1, 0, rnd);
    assert.ok(first > 0.5 && last < first - 0.3, `${first} → ${last}`);
  });
});

describe('core/bm25', () => {
  it('ranks by term weight, shorter documents first on equal counts, no score without a shared term', () => {
    const idx = new Bm25Index(['the cat sat on the mat', 'a dog and a cat and a cat', 'dogs bark', 'cat']);
    assert.deepStrictEqual(bm25Tokens('The Cat, the MAT!'), ['cat', 'mat']);
    const top = idx.top('cat', 10);
    assert.deepStrictEqual(top.slice(0, 2), [1, 3]); // two mentions, then the one-word document
    assert.ok(!top.includes(2));
    assert.deepStrictEqual(idx.top('mat cat', 1), [0]);
    assert.deepStrictEqual(idx.top('unicorn', 5), []);
  });
});
