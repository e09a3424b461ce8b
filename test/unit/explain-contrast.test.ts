import * as assert from 'assert';
import {
  contrast,
  ContrastInput,
  describeFlip,
  failingPair,
  findFlip,
  flipControl,
  rescoreErased,
} from '../../src/core/explain/contrast';
import { ColumnCache, erase, RidgeProjector } from '../../src/core/explain/erasure';
import { mulberry32 } from '../../src/core/explain/rng';
import { columnDots, cosine64, dot64, SaeDecoder, topKCode } from '../../src/core/explain/sparse';

/** A random decoder with unit columns, and a stand-in encoder: top-k of W_decᵀ(z − b). */
function toySae(D: number, F: number, seed: number, bias = 0.05): SaeDecoder {
  const rnd = mulberry32(seed);
  const wDec = new Float32Array(D * F);
  for (let j = 0; j < F; j++) {
    let n = 0;
    for (let r = 0; r < D; r++) {
      const v = rnd() * 2 - 1;
      wDec[r * F + j] = v;
      n += v * v;
    }
    for (let r = 0; r < D; r++) wDec[r * F + j] /= Math.sqrt(n);
  }
  const bDec = Float32Array.from({ length: D }, () => (rnd() * 2 - 1) * bias);
  return { dim: D, dictSize: F, wDec, bDec };
}

function unit(v: number[]): Float32Array {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return Float32Array.from(v, (x) => x / n);
}

function encode(sae: SaeDecoder, z: Float32Array, k: number) {
  const all = Array.from({ length: sae.dictSize }, (_, j) => j);
  const c = new Float64Array(sae.dim);
  for (let r = 0; r < sae.dim; r++) c[r] = z[r] - sae.bDec[r];
  return topKCode(columnDots(sae, all, c), k);
}

/** A query and two documents near it, d− the closer one (a failing pair). */
function toyCase(sae: SaeDecoder, seed: number, k = 8, spread = 0.9): ContrastInput {
  const rnd = mulberry32(seed);
  const D = sae.dim;
  const zq = unit(Array.from({ length: D }, () => rnd() * 2 - 1));
  const near = () => unit(Array.from(zq, (x) => x + spread * (rnd() * 2 - 1)));
  let a = near();
  let b = near();
  if (cosine64(zq, a) < cosine64(zq, b)) [a, b] = [b, a];
  return {
    sae,
    zq,
    qCode: encode(sae, zq, k),
    minus: { z: a, code: encode(sae, a, k), views: { qa: encode(sae, near(), k) } },
    plus: { z: b, code: encode(sae, b, k), views: { qa: encode(sae, near(), k) } },
  };
}

describe('explain/contrast', () => {
  const sae = toySae(24, 96, 3);

  it('adds up to s(q,d−) − s(q,d+) within 1e-6, generic features on one line', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const input = { ...toyCase(sae, seed), isGeneric: (id: number) => id % 7 === 0 };
      const c = contrast(input);
      const diff = dot64(input.zq, input.minus.z) - dot64(input.zq, input.plus.z);
      assert.ok(Math.abs(c.difference - diff) < 1e-12);
      const listed = c.features.reduce((s, f) => s + f.contrast, 0);
      assert.ok(Math.abs(listed - c.terms.features) < 1e-12, 'listed features are the features term');
      const total = c.terms.features + c.terms.generic + c.terms.bias + c.terms.error;
      assert.ok(Math.abs(total - diff) < 1e-6, `seed ${seed}: ${total} vs ${diff}`);
      assert.ok(c.features.every((f) => f.id % 7 !== 0), 'no generic feature among the rows');
      assert.ok(c.generic.length > 0 && c.generic.every((id) => id % 7 === 0));
      // each feature's parts by side add up to its contrast
      for (const f of c.features) assert.ok(Math.abs(f.parts.query + f.parts.minus + f.parts.plus - f.contrast) < 1e-9, `feature ${f.id}`);
      // those favouring d− first, then those favouring d+
      const signs = c.features.map((f) => Math.sign(f.contrast));
      assert.deepStrictEqual(signs, [...signs].sort((x, y) => y - x));
    }
  });

  it('names the views a feature is shared in on each side', () => {
    const input = toyCase(sae, 5);
    const c = contrast(input);
    const q = new Set(Array.from(input.qCode.indices));
    for (const f of c.features) {
      if (!q.has(f.id)) {
        assert.deepStrictEqual([f.sharedInMinus, f.sharedInPlus], [[], []]);
        continue;
      }
      const inMinus = Array.from(input.minus.code.indices).includes(f.id);
      assert.strictEqual(f.sharedInMinus.includes('original'), inMinus);
      assert.strictEqual(f.sharedInMinus.includes('qa'), Array.from(input.minus.views!.qa.indices).includes(f.id));
    }
    assert.ok(c.features.some((f) => f.sharedInMinus.length > 0));
  });

  it('every reported flip set flips the order when re-scored, and no member can be dropped', () => {
    let flips = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const input = toyCase(sae, 100 + seed);
      const c = contrast(input);
      const r = findFlip(input, c, { bound: 20 });
      assert.ok(r.baseMargin <= 0, 'the toy case is a failing pair');
      if (!r.flip) continue;
      flips++;
      const { target, ids } = r.flip;
      assert.ok(ids.length >= 1 && ids.length <= 20);
      // recomputed here with erase() and the cosine, independently of findFlip's bookkeeping
      const q = target === 'query' ? erase(sae, input.zq, ids) : input.zq;
      const m = target === 'minus' ? erase(sae, input.minus.z, ids) : input.minus.z;
      const p = target === 'plus' ? erase(sae, input.plus.z, ids) : input.plus.z;
      const margin = cosine64(q, p) - cosine64(q, m);
      assert.ok(margin > 0, `seed ${seed}: reported set ${ids} on ${target} does not flip (${margin})`);
      assert.ok(Math.abs(margin - r.flip.margin) < 1e-9, 'the reported margin is the recomputed one');
      for (const drop of ids) {
        if (ids.length === 1) break;
        assert.ok(rescoreErased(input, target, ids.filter((x) => x !== drop)).margin <= 0, `seed ${seed}: ${drop} could be dropped`);
      }
      assert.match(describeFlip(r), new RegExp(`^without (this feature|these ${ids.length} features) \\(erased from (the query|d−|d\\+)\\), d\\+ wins by ${r.flip.margin.toFixed(4)}$`));
    }
    assert.ok(flips >= 20, `only ${flips} of 40 toy failing pairs got a flip set`);
  });

  it('a projector built through the column cache erases exactly as one built without it', () => {
    const input = toyCase(sae, 21);
    const cache = new ColumnCache(sae);
    for (const ids of [[3], [3, 17, 40], [40, 3, 95, 17, 60], [17, 60]]) {
      for (const t of ['query', 'minus', 'plus'] as const) {
        const a = rescoreErased(input, t, ids);
        const b = rescoreErased(input, t, ids, undefined, cache);
        assert.strictEqual(b.margin, a.margin, `${t} ${ids}`);
        assert.strictEqual(b.scoreMinus, a.scoreMinus);
      }
    }
    assert.throws(() => new RidgeProjector(toySae(24, 96, 4), [1], undefined, cache), /another SAE/);
  });

  it('says so when no set of at most 20 features flips the order', () => {
    // d− = q and d+ = −q, no decoder bias: erasing from any side leaves cos(q,d−) ≥ 0 ≥ cos(q,d+)
    const big = toySae(48, 64, 9, 0);
    const zq = unit(Array.from({ length: 48 }, (_, i) => Math.sin(i + 1)));
    const neg = Float32Array.from(zq, (x) => -x);
    const input: ContrastInput = {
      sae: big,
      zq,
      qCode: encode(big, zq, 24),
      minus: { z: zq, code: encode(big, zq, 24) },
      plus: { z: neg, code: encode(big, neg, 24) },
    };
    const c = contrast(input);
    const r = findFlip(input, c, { bound: 20 });
    assert.strictEqual(r.flip, undefined);
    assert.ok(r.rescored > 0 && r.best && r.best.margin <= 0);
    assert.strictEqual(r.bound, 20);
    assert.match(describeFlip(r), /^no set of at most 20 features found that flips the order/);
  });

  it('an already-won pair needs the empty set', () => {
    const input = toyCase(sae, 7);
    const swapped = { ...input, minus: input.plus, plus: input.minus };
    const r = findFlip(swapped, contrast(swapped));
    assert.ok(r.flip && r.flip.ids.length === 0 && r.flip.margin > 0);
    assert.match(describeFlip(r), /^d\+ already outranks d−/);
  });

  it('the random control draws sets of the flip size from d−, seeded', () => {
    const input = toyCase(sae, 111);
    const c = contrast(input);
    const r = findFlip(input, c, { controls: 25, seed: 4 });
    assert.ok(r.flip, 'this toy case flips');
    assert.strictEqual(r.control!.draws, 25);
    assert.ok(r.control!.flipped >= 0 && r.control!.flipped <= 25);
    assert.deepStrictEqual(flipControl(input, c, r.flip!, 25, 4), r.control);
  });

  it('failingPair: d+ is the best relevant with a non-relevant above it, d− the best non-relevant', () => {
    const c = (doc_id: string, score: number, label?: number) => ({ doc_id, score, label });
    assert.deepStrictEqual(failingPair([c('a', 0.9, 1), c('b', 0.5, 0)]), undefined);
    assert.deepStrictEqual(failingPair([c('a', 0.9), c('b', 0.5, 1)]), undefined, 'unlabelled candidates never make a query fail');
    const r = failingPair([c('r1', 0.4, 1), c('n1', 0.7, 0), c('u', 0.8), c('n2', 0.6, 0), c('r2', 0.3, 2)]);
    assert.deepStrictEqual([r?.minus.doc_id, r?.minusRank, r?.plus.doc_id, r?.plusRank], ['n1', 2, 'r1', 4]);
    // the top relevant ranks first; a lower relevant is beaten
    const s = failingPair([c('r1', 0.9, 1), c('n1', 0.7, 0), c('r2', 0.6, 1)]);
    assert.deepStrictEqual([s?.minus.doc_id, s?.plus.doc_id], ['n1', 'r2']);
  });
});
