/**
 * Encoder lanes with the real all-MiniLM-L6-v2: the same vectors as one
 * session in the calling thread, cancellation, release, and a graph a lane
 * cannot load.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CancelledError, ModelError } from '../../src/core/errors';
import { Encoder } from '../../src/engine/encoder';
import { EncoderLanes } from '../../src/engine/encoderLanes';
import { FIXTURES, minilm } from './helpers';

const texts: string[] = fs
  .readFileSync(path.join(FIXTURES, 'parity', 'texts.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { text: string }).text);

describe('encoder lanes (real all-MiniLM-L6-v2)', function () {
  this.timeout(600_000);
  let dir: string;
  before(async () => {
    dir = (await minilm()).dir;
  });

  for (const precision of ['fp32', 'int8'] as const) {
    it(`${precision}: two lanes give bit for bit the vectors of one session, in input order, with progress per batch`, async () => {
      const one = await Encoder.load(dir, { provider: 'cpu', precision });
      const two = await Encoder.load(dir, { provider: 'cpu', precision, lanes: 2 });
      try {
        assert.strictEqual(one.runs, '1 session');
        assert.strictEqual(two.runs, '2 lanes × 1 thread');
        const a = await one.encode(texts, { kind: 'document' });
        const seen: number[] = [];
        const b = await two.encode(texts, { kind: 'document', onBatch: (done, total) => seen.push(done / total) });
        assert.deepStrictEqual(b.embeddings, a.embeddings);
        assert.deepStrictEqual(b.truncated, a.truncated);
        assert.deepStrictEqual(b.tokenCounts, a.tokenCounts);
        assert.ok(seen.length > 1 && seen.every((x, i) => i === 0 || x > seen[i - 1]), `progress ${seen}`);
        assert.strictEqual(seen[seen.length - 1], 1);
        // per-layer tools go through the lanes too
        const h1 = await one.hiddenStates(texts[0], 'query');
        const h2 = await two.hiddenStates(texts[0], 'query');
        assert.deepStrictEqual(h2.layers, h1.layers);
      } finally {
        await Promise.all([one.release(), two.release()]);
      }
    });
  }

  it('a cancelled encode stops handing out batches and throws CancelledError; the lanes keep working', async () => {
    const enc = await Encoder.load(dir, { provider: 'cpu', precision: 'int8', lanes: 2 });
    try {
      const ac = new AbortController();
      let batches = 0;
      await assert.rejects(
        enc.encode(texts, {
          kind: 'document',
          batchSize: 4,
          signal: ac.signal,
          onBatch: () => {
            if (++batches === 2) ac.abort();
          },
        }),
        CancelledError,
      );
      assert.ok(batches < texts.length / 4, `${batches} batches ran after the abort`);
      const r = await enc.encode(texts.slice(0, 3), { kind: 'query' });
      assert.strictEqual(r.embeddings.length, 3 * 384);
    } finally {
      await enc.release();
    }
  });

  it('after release, a run is refused with a clear error', async () => {
    const enc = await Encoder.load(dir, { provider: 'cpu', precision: 'int8', lanes: 2 });
    await enc.release();
    await assert.rejects(enc.encode(['x'], { kind: 'query' }), (e: unknown) => e instanceof ModelError && /released/.test(e.message));
  });

  it('a graph a lane cannot load: ModelError naming the model', async () => {
    await assert.rejects(EncoderLanes.start(new Uint8Array([1, 2, 3, 4]), { lanes: 2, threadsPerLane: 1 }, 'broken-model'), (e: unknown) => e instanceof ModelError && /broken-model: an encoder lane could not load the graph/.test(e.message));
  });
});
