/**
 * Tokenisation through @huggingface/tokenizers (pure JS, reads tokenizer.json)
 * plus the truncation sentence-transformers applies: keep the first
 * maxTokens-1 ids and end with the separator, reporting that it happened.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError } from '../../core/errors';

export interface TokenizedText {
  ids: number[];
  truncated: boolean;
  /** length before truncation, specials included */
  fullLength: number;
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
    const ids = this.tok.encode(text).ids;
    const fullLength = ids.length;
    if (fullLength <= this.maxTokens) return { ids, truncated: false, fullLength };
    const cut = ids.slice(0, this.maxTokens - 1);
    cut.push(this.sepId);
    return { ids: cut, truncated: true, fullLength };
  }

  tokens(text: string): string[] {
    return this.tok.tokenize(text, { add_special_tokens: true });
  }

  decodeId(id: number): string {
    return this.tok.decode([id]);
  }
}
