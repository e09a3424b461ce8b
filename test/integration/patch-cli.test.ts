/**
 * `xetrieval patch` and `xetrieval layers` end to end with the real
 * all-MiniLM-L6-v2: streamed JSONL out, bad lines named by file and line and
 * skipped, MechIR's TSV read as it is, undefined metrics said rather than NaN.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { cliReady, REPO_ROOT, runCli, SHARED, tmpDir } from './helpers';

const lines = (f: string) =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('xetrieval patch / layers (real model)', function () {
  this.timeout(600_000);
  let dir: string;
  const egg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'examples', 'pairs.jsonl'), 'utf8').split('\n')[0]);

  before(function () {
    if (!cliReady()) this.skip();
    dir = tmpDir('patch-cli');
  });

  it('patches pairs with an axiom, skips bad lines naming them, writes maps and their mean', async () => {
    const input = path.join(dir, 'pairs.jsonl');
    fs.writeFileSync(
      input,
      [
        JSON.stringify(egg),
        JSON.stringify({ ...egg, doc_id: 'stop', query: 'what is it?' }),
        JSON.stringify({ ...egg, doc_id: 'same', perturbed_doc: `${egg.doc}   ` }),
        '{"query_id": "x"',
      ].join('\n') + '\n',
    );
    const out = path.join(dir, 'maps.jsonl');
    const mean = path.join(dir, 'mean.json');
    const r = await runCli(['patch', '--axiom', 'TFC1', '-i', input, '-o', out, '--mean', mean, '--granularity', 'heads,block-groups']);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /pairs\.jsonl:2: the query has no terms besides stop words/);
    assert.match(r.stderr, /pairs\.jsonl:3: the perturbation does not change the document's tokens: the metric is undefined/);
    assert.match(r.stderr, /pairs\.jsonl:4: /);
    assert.match(r.stderr, /1 patched, 3 errors/);
    const [rec] = lines(out);
    assert.strictEqual(rec.axiom, 'TFC1');
    assert.ok(egg.query.toLowerCase().includes(rec.term), rec.term);
    assert.strictEqual(rec.heads.length, 6);
    assert.strictEqual(rec.heads[0].length, 12);
    assert.strictEqual(rec.block_groups_patched.length, 3);
    for (const v of rec.heads.flat()) assert.ok(Number.isFinite(v));
    assert.ok(rec.changed.length >= 1 && rec.changed.every((i: number) => rec.tokens[i] === '[PAD]'));
    const m = JSON.parse(fs.readFileSync(mean, 'utf8'));
    assert.strictEqual(m.pairs, 1);
    assert.ok(Math.abs(m.heads_mean[0][0] - rec.heads[0][0]) < 1e-6);
  });

  it('reads MechIR axiom pairs from shared data as they are', async function () {
    const tsv = path.join(SHARED, 'data', 'mechir-axioms', 'tasb_TDC_topk_4000.tsv');
    if (!fs.existsSync(tsv)) this.skip();
    const out = path.join(dir, 'tdc.jsonl');
    const r = await runCli(['patch', '-i', tsv, '-o', out, '--granularity', 'heads', '--limit', '2']);
    assert.strictEqual(r.code, 0, r.stderr);
    const recs = lines(out);
    assert.strictEqual(recs.length, 2);
    assert.strictEqual(recs[0].axiom, 'given');
    assert.strictEqual(recs[0].query_id, '768208');
    assert.deepStrictEqual(recs[0].changed.map((i: number) => recs[0].perturbed_tokens[i]).join(' '), 'ma ##me ##y');
  });

  it('layers: ablation per layer and vocabulary projection per depth', async () => {
    const input = path.join(dir, 'one.jsonl');
    fs.writeFileSync(input, JSON.stringify(egg) + '\n');
    const r = await runCli(['layers', '-i', input, '--top', '5', '--head-top', '3']);
    assert.strictEqual(r.code, 0, r.stderr);
    const [rec] = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.strictEqual(rec.ablation.length, 6);
    assert.strictEqual(rec.depths.length, 7);
    assert.strictEqual(rec.depths[6].query_top.length, 5);
    // the last depth's pooled score is the model's score (mean pooling, before normalisation)
    assert.ok(Math.abs(rec.depths[6].score - rec.score) < 1e-5);
    // the embedding layer projects onto the text's own words
    assert.ok(rec.depths[0].query_top.includes('egg'), rec.depths[0].query_top.join(' '));
    // each head's output projected too: 6 layers × 12 heads, 3 tokens a side
    assert.strictEqual(rec.heads.length, 72);
    assert.deepStrictEqual([rec.heads[71].layer, rec.heads[71].head, rec.heads[71].doc_top.length], [5, 11, 3]);
    for (const a of rec.ablation) assert.ok(Number.isFinite(a.attn_zero) && Math.abs(a.attn_zero_delta - (a.attn_zero - rec.score)) < 1e-5);
  });
});
