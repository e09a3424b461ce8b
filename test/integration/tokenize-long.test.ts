/**
 * Long texts with the real all-MiniLM-L6-v2 tokenizer: tokenisation stops
 * near the token limit (the library is never handed the whole of a long
 * text), and the kept ids are exactly those of tokenising the whole text.
 */
import * as assert from 'assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { BertTokenizer } from '../../src/engine/bert/tokenize';
import { minilm } from './helpers';

/** A seeded generator, so a failure names a text that can be made again. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = [
  'protein', 'kinase', 'Signalling', 'ΟΔΟΣ', 'Σίσυφος', 'naïve', 'café', 'e\u0301', 'straße', '東京大学', '研究',
  'x86_64', 'C++', '3.14159', '—', '...', '(', ')', '"quoted"', "don't", '😀', '👩‍🔬', 'ﬁne', 'İstanbul',
  'a'.repeat(120), 'Supercalifragilisticexpialidocious', 'https://example.org/a?b=c', '\u0000', '\u200b', '\u00ad',
];
const SPACES = [' ', ' ', ' ', '  ', '\n', '\t', '\r\n', '\u00a0', '\u3000', ''];

function text(seed: number, chars: number): string {
  const r = rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    const p = PIECES[Math.floor(r() * PIECES.length)] + SPACES[Math.floor(r() * SPACES.length)];
    parts.push(p);
    n += p.length;
  }
  return parts.join('');
}

describe('tokenizer on long texts', function () {
  this.timeout(120_000);
  let tok: BertTokenizer;

  before(async () => {
    tok = new BertTokenizer((await minilm()).dir, 256);
  });

  it('keeps exactly the ids of whole-text tokenisation, on texts of many lengths and scripts', () => {
    let truncated = 0;
    for (let seed = 1; seed <= 60; seed++) {
      // around the thresholds (2,048 and 8,192 characters) and well past them
      const chars = [1500, 2100, 4000, 8200, 9000, 20_000, 70_000][seed % 7] + seed * 13;
      const t = text(seed, chars);
      const got = tok.encode(t);
      const want = tok.encodeWhole(t);
      assert.deepStrictEqual(got, want, `seed ${seed}, ${t.length} characters`);
      if (got.truncated) truncated++;
    }
    assert.ok(truncated >= 40, `${truncated} of 60 texts were over the limit`);
  });

  it('a 5 MB text: the library is handed at most a few thousand characters, and the ids are those of the whole text', () => {
    const big = text(7, 5_000_000);
    const seen: number[] = [];
    const encode = Tokenizer.prototype.encode;
    Tokenizer.prototype.encode = function (this: Tokenizer, input: string, ...rest: unknown[]) {
      seen.push(input.length);
      return (encode as (this: Tokenizer, input: string, ...r: unknown[]) => ReturnType<typeof encode>).call(this, input, ...rest);
    } as typeof encode;
    let got;
    try {
      got = tok.encode(big);
    } finally {
      Tokenizer.prototype.encode = encode;
    }
    assert.ok(seen.length > 0);
    assert.ok(Math.max(...seen) <= 64 * 256, `the tokenizer was handed ${seen.join(', ')} characters`);
    assert.strictEqual(got.truncated, true);
    assert.strictEqual(got.ids.length, 256);
    // the reference: the whole text tokenised, then cut (slow, which is the point of the prefix)
    assert.deepStrictEqual(got, tok.encodeWhole(big));
  });

  it('a text without any whitespace is tokenised whole, still correctly', () => {
    const t = 'abc,def.'.repeat(3000);
    assert.deepStrictEqual(tok.encode(t), tok.encodeWhole(t));
  });
});
