/**
 * Tokenisation through @huggingface/tokenizers (pure JS, reads tokenizer.json)
 * plus the truncation sentence-transformers applies: keep the first
 * maxTokens-1 ids and end with the separator, reporting that it happened.
 *
 * A long text is not tokenised whole: the library normalises and splits the
 * entire string before any truncation (a 50 MB text took about a minute and
 * gigabytes), while only the first few hundred tokens are kept. So a long
 * text is tokenised from a prefix that ends at a whitespace character (no
 * pre-tokenizer joins words across one) and yields more than maxTokens ids;
 * a second, longer prefix must give the same kept ids before they are used.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError } from '../../core/errors';

export interface TokenizedText {
  ids: number[];
  truncated: boolean;
}

/** Characters per kept token below which a text is simply tokenised whole (a token is rarely over 8 characters). */
const CHARS_PER_TOKEN = 8;

/** Index of the last whitespace character in text[from, to), or -1. */
function lastSpace(text: string, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) return i;
  }
  return -1;
}

export class BertTokenizer {
  private readonly tok: Tokenizer;
  readonly sepId: number;
  readonly clsId: number;
  readonly padId: number;

  constructor(dir: string, readonly maxTokens: number) {
    const file = path.join(dir, 'tokenizer.json');
    let json: object;
    let cfg: object = {};
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ModelError(`${file}: cannot read tokenizer (${(e as Error).message})`, 'E_MODEL_FILE', file);
    }
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    if (fs.existsSync(cfgFile)) cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    this.tok = new Tokenizer(json, cfg);
    const vocab = (json as { model?: { vocab?: Record<string, number> } }).model?.vocab ?? {};
    const id = (t: string, d: number) => (typeof vocab[t] === 'number' ? vocab[t] : d);
    this.clsId = id('[CLS]', 101);
    this.sepId = id('[SEP]', 102);
    this.padId = id('[PAD]', 0);
  }

  encode(text: string): TokenizedText {
    const initial = this.maxTokens * CHARS_PER_TOKEN;
    // up to a few times that, tokenising whole costs less than two prefixes
    if (text.length <= 4 * initial) return this.encodeWhole(text);
    for (let n = initial; n < text.length; n *= 4) {
      const kept = this.keptFromPrefix(text, n);
      // the same ids from a prefix about twice as long: the cut did not change them
      if (kept && sameIds(kept, this.keptFromPrefix(text, 2 * n))) return { ids: kept, truncated: true };
    }
    return this.encodeWhole(text);
  }

  /** Tokenises the whole text, then truncates. */
  encodeWhole(text: string): TokenizedText {
    const ids = this.tok.encode(text).ids;
    if (ids.length <= this.maxTokens) return { ids, truncated: false };
    return { ids: this.cut(ids), truncated: true };
  }

  /**
   * The kept ids from a prefix of about `n` characters ending before a
   * whitespace character, when that prefix alone already has more than
   * maxTokens ids; undefined when it has not, or no such cut lies in the
   * prefix's second half.
   */
  private keptFromPrefix(text: string, n: number): number[] | undefined {
    if (n >= text.length) return this.encodeWhole(text).ids;
    const end = lastSpace(text, n >> 1, n);
    if (end <= 0) return undefined;
    const ids = this.tok.encode(text.slice(0, end)).ids;
    return ids.length > this.maxTokens ? this.cut(ids) : undefined;
  }

  private cut(ids: number[]): number[] {
    const kept = ids.slice(0, this.maxTokens - 1);
    kept.push(this.sepId);
    return kept;
  }

  tokens(text: string): string[] {
    return this.tok.tokenize(text, { add_special_tokens: true });
  }

  decodeId(id: number): string {
    return this.tok.decode([id]);
  }
}

function sameIds(a: number[], b: number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
