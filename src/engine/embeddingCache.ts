/**
 * Embeddings the worker already computed, reused by later requests.
 *
 * The editor explains an eval file and then asks for its live-steering set, and
 * the user re-explains the same selection after moving a slider: without this
 * every one of those requests ran the encoder again over the same texts, which
 * is nearly all of their time. Entries belong to one encoder instance (a model
 * that is re-fetched or moved to another device gets a new one, and with it an
 * empty cache; so does each precision, and the precision is part of every
 * key besides, so an fp32 and an int8 vector of one text never stand in for
 * each other) and are evicted least-recently-used under a byte budget, so a
 * 100k-line file still runs in bounded memory.
 */
import type { Precision } from '../protocol/worker';
import type { Encoded, EncodeOptions, Encoder } from './encoder';

interface Entry {
  z: Float32Array;
  truncated: boolean;
  tokens: number;
  bytes: number;
}

/** texts whose embeddings are kept, at most this many bytes per encoder (vectors and keys) */
export const DEFAULT_EMBEDDING_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * Longer texts are encoded but not kept: a key is the whole text, and building
 * and hashing a key of megabytes (a 50 MB document) costs more than it saves.
 */
export const MAX_CACHED_TEXT_CHARS = 64 * 1024;

class Lru {
  readonly map = new Map<string, Entry>();
  bytes = 0;
  constructor(readonly maxBytes: number) {}

  get(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e) {
      // Map keeps insertion order: re-inserting marks it most recently used
      this.map.delete(key);
      this.map.set(key, e);
    }
    return e;
  }

  set(key: string, e: Entry): void {
    if (e.bytes > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.map.delete(key);
    }
    this.map.set(key, e);
    this.bytes += e.bytes;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.bytes;
    }
  }
}

export interface EmbeddingCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

/** The encoder surface the cache needs (an Encoder, or a test double in unit tests). */
export type Encodes = Pick<Encoder, 'encode' | 'dim'> & { readonly precision?: Precision };

export class EmbeddingCache {
  private readonly perEncoder = new WeakMap<Encodes, Lru>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes = DEFAULT_EMBEDDING_CACHE_BYTES) {}

  /**
   * `encoder.encode(texts, opts)`, running the encoder only on texts it has not
   * seen (each distinct text once). Per-layer hidden states are not kept: a
   * request for them goes to the encoder whole.
   */
  async encode(encoder: Encodes, texts: string[], opts: EncodeOptions): Promise<Encoded & { encodedTexts: number; fromCache: number }> {
    if (opts.pooledHiddenStates) return { ...(await encoder.encode(texts, opts)), encodedTexts: texts.length, fromCache: 0 };
    let lru = this.perEncoder.get(encoder);
    if (!lru) this.perEncoder.set(encoder, (lru = new Lru(this.maxBytes)));
    const H = encoder.dim;
    const precision = encoder.precision ?? 'fp32';
    const key = (t: string) => `${precision}\u0000${opts.kind}\u0000${t}`;
    const found = new Map<string, Entry>();
    const missingSet = new Set<string>();
    for (const t of texts) {
      if (found.has(t) || missingSet.has(t)) continue;
      const e = t.length <= MAX_CACHED_TEXT_CHARS ? lru.get(key(t)) : undefined;
      if (e) found.set(t, e);
      else missingSet.add(t);
    }
    const missing = [...missingSet];
    this.hits += found.size;
    this.misses += missing.length;
    if (missing.length) {
      const r = await encoder.encode(missing, opts);
      missing.forEach((t, i) => {
        const e: Entry = { z: r.embeddings.slice(i * H, (i + 1) * H), truncated: r.truncated[i], tokens: r.tokenCounts[i], bytes: H * 4 + (precision.length + 1 + opts.kind.length + 1 + t.length) * 2 + 64 };
        found.set(t, e);
        if (t.length <= MAX_CACHED_TEXT_CHARS) lru!.set(key(t), e);
      });
    } else opts.onBatch?.(texts.length, texts.length);
    const embeddings = new Float32Array(texts.length * H);
    const truncated: boolean[] = [];
    const tokenCounts: number[] = [];
    texts.forEach((t, i) => {
      const e = found.get(t)!;
      embeddings.set(e.z, i * H);
      truncated.push(e.truncated);
      tokenCounts.push(e.tokens);
    });
    return { dim: H, embeddings, truncated, tokenCounts, encodedTexts: missing.length, fromCache: found.size - missing.length };
  }

  stats(encoder: Encodes): EmbeddingCacheStats {
    const lru = this.perEncoder.get(encoder);
    return { hits: this.hits, misses: this.misses, entries: lru?.map.size ?? 0, bytes: lru?.bytes ?? 0 };
  }
}
