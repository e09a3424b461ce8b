import * as assert from 'assert';
import { isFromPatchView, isPatchViewState, isToPatchView, viewMaps, type PatchViewState } from '../../src/protocol/patchView';
import type { PairPatch } from '../../src/protocol/worker';

const L = 2;
const H = 3;
const tokens = ['[CLS]', 'egg', '[PAD]', '[SEP]'];
const P = tokens.length;
const grid = (r: number, c: number, f: (i: number, j: number) => number) => Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => f(i, j)));

function pairPatch(): PairPatch {
  return {
    tokens,
    perturbed_tokens: ['[CLS]', 'egg', 'yolk', '[SEP]'],
    changed: [2],
    score_original: 0.5,
    score_original_unpadded: 0.51,
    score_perturbed: 0.6,
    block: [0, 1, 2].map((b) => grid(L, P, (l, p) => (p === 2 ? 1 : b * 0.01 + l * 0.001))),
    heads: grid(L, H, (l, h) => (l === 1 && h === 0 ? 0.4 : -0.01)),
    patched_rows: 3 * L * P + L * H,
    runs: 2,
    elapsedMs: 12,
  };
}

function state(): PatchViewState {
  return {
    query_id: 'q',
    doc_id: 'd',
    query: 'how to boil an egg',
    doc: 'egg',
    axiom: 'TFC1',
    term: 'yolk',
    perturbed: 'egg yolk',
    layers: L,
    heads: H,
    maps: viewMaps(pairPatch())!,
    depths: [0, 1, 2].map((depth) => ({ depth, score: 0.5, query_top: [{ token: 'egg', cos: 0.3 }], doc_top: [{ token: 'egg', cos: 0.2 }] })),
    model: 'all-MiniLM-L6-v2',
    device: 'CPU',
    elapsedMs: 100,
  };
}

describe('patch view protocol', () => {
  it('viewMaps keeps the engine maps as they are, and needs both block and heads', () => {
    const p = pairPatch();
    const m = viewMaps(p)!;
    assert.strictEqual(m.block, p.block);
    assert.strictEqual(m.heads, p.heads);
    assert.deepStrictEqual(m.changed, [2]);
    assert.strictEqual(viewMaps({ ...p, heads: undefined }), undefined);
    assert.strictEqual(viewMaps({ ...p, block: undefined }), undefined);
  });

  it('accepts a well-formed state and message', () => {
    assert.ok(isPatchViewState(state()));
    assert.ok(isToPatchView({ type: 'patch', state: state() }));
    assert.ok(isToPatchView({ type: 'busy', message: 'Patching…' }));
    assert.ok(isFromPatchView({ type: 'ready' }));
    assert.ok(isFromPatchView({ type: 'log', level: 'info', message: 'x', rendered: { layers: L, positions: P, heads: H, cells: 3 * L * P + L * H, blockSum: 1, headSum: 0.3, depths: 3, ms: 1.5 } }));
  });

  it('rejects maps whose shape is not layers × positions / layers × heads', () => {
    const s = state();
    const short = { ...s, maps: { ...s.maps, block: [s.maps.block[0], s.maps.block[1], s.maps.block[2].map((r) => r.slice(1))] } };
    assert.ok(!isPatchViewState(short), 'a row shorter than the tokens');
    assert.ok(!isPatchViewState({ ...s, maps: { ...s.maps, block: s.maps.block.slice(0, 2) } }), 'two blocks');
    assert.ok(!isPatchViewState({ ...s, heads: H + 1 }), 'heads count differs from the head map');
    assert.ok(!isPatchViewState({ ...s, maps: { ...s.maps, heads: [[NaN, 0, 0], [0, 0, 0]] } }), 'NaN');
    assert.ok(!isPatchViewState({ ...s, maps: { ...s.maps, changed: [P] } }), 'a changed position past the end');
    assert.ok(!isPatchViewState({ ...s, axiom: 'TFC2' }), 'unknown axiom');
  });

  it('rejects malformed messages from the page', () => {
    assert.ok(!isFromPatchView({ type: 'log', level: 'debug', message: 'x' }));
    assert.ok(!isFromPatchView({ type: 'log', level: 'info', message: 'x', rendered: { layers: -1 } }));
    assert.ok(!isFromPatchView({ type: 'applyFlip' }));
    assert.ok(!isToPatchView({ type: 'patch', state: { ...state(), device: 'TPU' } }));
  });
});
