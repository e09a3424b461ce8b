import * as assert from 'assert';
import { EmbeddingCache, type Encodes } from '../../src/engine/embeddingCache';
import type { EncodeOptions, Encoded } from '../../src/engine/encoder';

/** An encoder double: a text's vector is derived from its characters and kind; every call is recorded. */
class CountingEncoder implements Encodes {
  readonly calls: { texts: string[]; kind: string }[] = [];
  readonly dim = 3;
  async encode(texts: string[], opts: EncodeOptions): Promise<Encoded> {
    this.calls.push({ texts: [...texts], kind: opts.kind });
    const z = new Float32Array(texts.length * 3);
    texts.forEach((t, i) => z.set([t.length, t.charCodeAt(0) || 0, opts.kind === 'query' ? 1 : 2], i * 3));
    opts.onBatch?.(texts.length, texts.length);
    return { dim: 3, embeddings: z, truncated: texts.map((t) => t.length > 5), tokenCounts: texts.map((t) => t.length + 2) };
  }
}

const rows = (r: Encoded) => Array.from({ length: r.embeddings.length / r.dim }, (_, i) => Array.from(r.embeddings.subarray(i * r.dim, (i + 1) * r.dim)));

describe('engine/embedding cache', () => {
  it('encodes each distinct text once and answers repeats from the cache, in the order asked', async () => {
    const enc = new CountingEncoder();
    const cache = new EmbeddingCache();
    const first = await cache.encode(enc, ['ice', 'water', 'ice', 'eclipse'], { kind: 'document' });
    assert.deepStrictEqual(enc.calls, [{ texts: ['ice', 'water', 'eclipse'], kind: 'document' }]);
    assert.deepStrictEqual(rows(first), [[3, 105, 2], [5, 119, 2], [3, 105, 2], [7, 101, 2]]);
    assert.deepStrictEqual(first.truncated, [false, false, false, true]);
    assert.deepStrictEqual(first.tokenCounts, [5, 7, 5, 9]);

    const again = await cache.encode(enc, ['eclipse', 'ice', 'moon'], { kind: 'document' });
    assert.deepStrictEqual(enc.calls[1], { texts: ['moon'], kind: 'document' }, 'only the new text reaches the encoder');
    assert.deepStrictEqual(rows(again), [[7, 101, 2], [3, 105, 2], [4, 109, 2]]);
    assert.deepStrictEqual(again.truncated, [true, false, false]);

    let progress: number[] | undefined;
    await cache.encode(enc, ['ice'], { kind: 'document', onBatch: (d, t) => (progress = [d, t]) });
    assert.strictEqual(enc.calls.length, 2, 'a request the cache answers whole runs no encoder');
    assert.deepStrictEqual(progress, [1, 1], 'and still reports its progress as done');
    assert.deepStrictEqual({ hits: cache.hits, misses: cache.misses }, { hits: 3, misses: 4 });
  });

  it('keeps queries and documents apart (prefixes differ) and encoders apart (a re-fetched model starts empty)', async () => {
    const enc = new CountingEncoder();
    const cache = new EmbeddingCache();
    await cache.encode(enc, ['ice'], { kind: 'document' });
    const q = await cache.encode(enc, ['ice'], { kind: 'query' });
    assert.deepStrictEqual(rows(q), [[3, 105, 1]]);
    const other = new CountingEncoder();
    await cache.encode(other, ['ice'], { kind: 'document' });
    assert.strictEqual(enc.calls.length, 2);
    assert.strictEqual(other.calls.length, 1);
  });

  it('keeps precisions apart: an int8 encoder never gets an fp32 vector of the same text, and the key names the precision', async () => {
    class Int8Double extends CountingEncoder {
      readonly precision = 'int8' as const;
    }
    const fp32 = new CountingEncoder();
    const int8 = new Int8Double();
    const cache = new EmbeddingCache();
    await cache.encode(fp32, ['ice'], { kind: 'document' });
    await cache.encode(int8, ['ice'], { kind: 'document' });
    assert.strictEqual(int8.calls.length, 1, 'encoded by the int8 encoder itself');
    // the key holds the precision: 12 B + 2 B × "int8\0document\0ice".length + 64 B
    assert.strictEqual(cache.stats(int8).bytes, 12 + 2 * 'int8\u0000document\u0000ice'.length + 64);
  });

  it('evicts the least recently used texts beyond its byte budget', async () => {
    const enc = new CountingEncoder();
    // one entry: 3 floats (12 B) + 2 B per key character + 64 B; "fp32\0document\0x" is 15 characters → 106 B
    const cache = new EmbeddingCache(2 * 106);
    await cache.encode(enc, ['a', 'b'], { kind: 'document' });
    await cache.encode(enc, ['a'], { kind: 'document' }); // a is now the most recent
    await cache.encode(enc, ['c'], { kind: 'document' }); // evicts b
    assert.strictEqual(cache.stats(enc).entries, 2);
    assert.ok(cache.stats(enc).bytes <= 2 * 106);
    await cache.encode(enc, ['a', 'b', 'c'], { kind: 'document' });
    assert.deepStrictEqual(enc.calls.map((c) => c.texts), [['a', 'b'], ['c'], ['b']]);
  });

  it('sends requests for per-layer hidden states to the encoder whole', async () => {
    const enc = new CountingEncoder();
    const cache = new EmbeddingCache();
    await cache.encode(enc, ['ice'], { kind: 'document' });
    await cache.encode(enc, ['ice', 'ice'], { kind: 'document', pooledHiddenStates: true });
    assert.deepStrictEqual(enc.calls[1].texts, ['ice', 'ice']);
  });
});
