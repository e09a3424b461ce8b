/**
 * Fault injection through the built CLI with the real all-MiniLM-L6-v2 (and
 * tiny BERT checkpoints made broken on purpose): ids above 2^53, invalid
 * UTF-8, a model with NaN weights, a degenerate model, a disk that fills up
 * mid-run, a skipped line in steer, steering configs with an unknown feature
 * or another SAE's fingerprint. Each run is a few pairs, so the suite stays
 * fast. Skips when the bundles are not built or the model is not cached.
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { defaultCacheDir, entryDir, MANIFEST_NAME } from '../../src/engine/models/cache';
import { minilm, REPO_ROOT, runCli, tmpDir } from './helpers';
import { writeTinyBert } from './tinyBert';

const MODEL = 'all-MiniLM-L6-v2';

const xetrieval = runCli;

const pair = (qid: string, did: string, query: string, doc: string, label?: number) => JSON.stringify({ query_id: qid, doc_id: did, query, doc, ...(label !== undefined ? { label } : {}) });

describe('faults through the CLI with the real model', function () {
  this.timeout(300_000);
  let dir: string;
  let tokenizerDir: string;
  const mounts: string[] = [];

  before(async function () {
    const built = ['cli.js', 'worker.js'].every((f) => fs.existsSync(path.join(REPO_ROOT, 'dist', f)));
    const cached = fs.existsSync(path.join(entryDir(defaultCacheDir(), MODEL), MANIFEST_NAME));
    if (!built || !cached) this.skip();
    dir = tmpDir('faults-it');
    tokenizerDir = (await minilm()).dir;
  });
  after(async () => {
    for (const m of mounts) execFileSync('umount', [m], { stdio: 'ignore' });
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('score: an id above 2^53 comes back with its exact text', async () => {
    const input = path.join(dir, 'big-ids.jsonl');
    await fsp.writeFile(
      input,
      '{"query_id":12345678901234567890,"doc_id":9007199254740993,"query":"why is the sky blue","doc":"Rayleigh scattering makes the sky blue."}\n' +
        '{"query_id":"q2","doc_id":7,"query":"how to bake bread","doc":"Knead the dough and bake it."}\n',
    );
    const r = await xetrieval(['score', '-i', input]);
    assert.strictEqual(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^\{"query_id":"12345678901234567890","doc_id":"9007199254740993","score":0\.\d+,"precision":"fp32"\}$/);
    assert.match(lines[1], /^\{"query_id":"q2","doc_id":"7","score":0\.\d+,"precision":"fp32"\}$/);
  });

  it('score: a line that is not UTF-8 is an error naming file:line; the other lines are scored (exit 1)', async () => {
    const input = path.join(dir, 'latin1.jsonl');
    await fsp.writeFile(
      input,
      Buffer.concat([
        Buffer.from(pair('q1', 'd1', 'coffee', 'a cup of coffee') + '\n'),
        // "café" saved as Latin-1: é is the one byte 0xE9
        Buffer.from('{"query_id":"q2","doc_id":"d2","query":"caf'),
        Buffer.from([0xe9]),
        Buffer.from('","doc":"menu"}\n' + pair('q3', 'd3', 'tea', 'green tea') + '\n'),
      ]),
    );
    const r = await xetrieval(['score', '-i', input, '-o', path.join(dir, 'latin1-out.jsonl')]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${path.basename(input)}:2: not valid UTF-8 \\(byte \\d+ of the line\\); save the file as UTF-8 \\(line skipped\\)`));
    assert.match(r.stderr, /2 scored, 1 error/);
    const out = (await fsp.readFile(path.join(dir, 'latin1-out.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { query_id: string });
    assert.deepStrictEqual(
      out.map((o) => o.query_id),
      ['q1', 'q3'],
    );
  });

  it('a model with NaN weights fails the run naming the model, never a null score with exit 0', async () => {
    const bad = path.join(dir, 'tiny-nan');
    writeTinyBert(bad, tokenizerDir, { nan: 'encoder.layer.0.output.dense.weight' });
    const input = path.join(dir, 'nan-pairs.jsonl');
    await fsp.writeFile(input, pair('q', 'd', 'a question', 'a document') + '\n');
    const out = path.join(dir, 'nan-out.jsonl');
    for (const cmd of [
      ['score', '-i', input, '-o', out],
      ['embed', '-i', '-', '-o', out],
    ]) {
      const r = await xetrieval(['--cache-dir', path.join(dir, 'cache-nan'), ...cmd, '-m', 'tiny-nan', '--source', bad], '{"id":"a","text":"x"}\n');
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /model tiny-nan gives non-finite embeddings \(NaN or infinity\) on plain probe texts/);
      assert.doesNotMatch(r.stderr, /0 errors/);
      assert.strictEqual(fs.existsSync(out), false, 'no output written');
    }
  });

  it('a degenerate model (max_seq_length 1: one vector for every text) is refused at load', async () => {
    const short = path.join(dir, 'tiny-short');
    writeTinyBert(short, tokenizerDir, { maxSeqLength: 1 });
    const input = path.join(dir, 'deg-pairs.jsonl');
    await fsp.writeFile(input, pair('q', 'd1', 'a question', 'a document') + '\n' + pair('q', 'd2', 'a question', 'something else') + '\n');
    const r = await xetrieval(['--cache-dir', path.join(dir, 'cache-short'), 'score', '-i', input, '-m', 'tiny-short', '--source', short]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /model tiny-short is degenerate: it gives the same embedding to 4 different probe texts \(max_seq_length 1\)/);
    assert.strictEqual(r.stdout, '', 'no score printed');
    // the same checkpoint with its normal length loads and scores
    const ok = path.join(dir, 'tiny-ok');
    writeTinyBert(ok, tokenizerDir);
    const good = await xetrieval(['--cache-dir', path.join(dir, 'cache-ok'), 'score', '-i', input, '-m', 'tiny-ok', '--source', ok]);
    assert.strictEqual(good.code, 0, good.stderr);
    assert.strictEqual(good.stdout.trim().split('\n').length, 2);
  });

  it('disk full mid-run: exit 1, the message names the file, the file holds whole lines only', async function () {
    const small = path.join(dir, 'full');
    await fsp.mkdir(small);
    if (process.getuid?.() !== 0) this.skip();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', small], { stdio: 'ignore' });
    } catch {
      this.skip();
    }
    mounts.push(small);
    const input = path.join(dir, 'many.jsonl');
    // a 384-d embedding line is about 4.4 KB: the first chunk of 256 lines (1.14 MB) fits in 1200 KB, all 300 (1.34 MB) do not
    await fsp.writeFile(input, Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: `t${i}`, text: `text number ${i}` })).join('\n') + '\n');
    const out = path.join(small, 'emb.jsonl');
    const r = await xetrieval(['embed', '-i', input, '-o', out]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`xetrieval: ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot write: no space left on the device \\(ENOSPC\\); the 256 results written before it are kept`));
    const text = await fsp.readFile(out, 'utf8');
    assert.ok(text.endsWith('\n'), 'no half line');
    const lines = text.split('\n').slice(0, -1).map((l) => JSON.parse(l) as { id: string; embedding: number[] });
    assert.deepStrictEqual(
      lines.map((l) => l.id),
      Array.from({ length: 256 }, (_, i) => `t${i}`),
    );
    for (const l of lines) assert.strictEqual(l.embedding.length, 384);
    assert.deepStrictEqual((await fsp.readdir(small)).filter((n) => n.endsWith('.partial')), [], 'no temporary file left');
  });

  it('steer: a skipped line makes the exit code 1, as README says, the curve is still printed, and an older --save file that this run did not write is removed', async () => {
    const lines = [
      pair('q1', 'd1', 'How do I bake sourdough bread?', 'Feed the starter, mix flour and water, proof overnight and bake in a hot oven.', 1),
      pair('q1', 'd2', 'How do I bake sourdough bread?', 'Volcanoes erupt when magma pressure builds up.', 0),
      pair('q2', 'd2', 'What causes volcanic eruptions?', 'Volcanoes erupt when magma pressure builds up.', 1),
      pair('q2', 'd1', 'What causes volcanic eruptions?', 'Feed the starter, mix flour and water, proof overnight and bake in a hot oven.', 0),
      '{"query_id":"q3","doc_id":"d3","query":"no label here","doc":"x"}',
    ];
    const input = path.join(dir, 'steer.jsonl');
    await fsp.writeFile(input, lines.join('\n') + '\n');
    // an older config where --save points: this run saves none (too few queries to validate), so it must not stay
    const save = path.join(dir, 'steer-old.json');
    await fsp.writeFile(save, JSON.stringify({ model: MODEL, features: [{ id: 1, alpha: 0 }] }));
    const r = await xetrieval(['steer', '--eval', input, '--key-features', '8', '--save', save]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /steer\.jsonl:5: field "label": missing: steering needs labelled pairs \(line skipped\)/);
    assert.match(r.stdout, /alpha\s+key:NDCG@10/);
    assert.match(r.stdout, /no steering config saved/);
    assert.match(r.stderr, /steer-old\.json: removed the older file there: this run wrote no results to it/);
    assert.strictEqual(fs.existsSync(save), false);
  });

  it('explain --steering: a feature the SAE lacks (999999) or another SAE fingerprint is refused naming file and field', async () => {
    const input = path.join(dir, 'steer-explain.jsonl');
    await fsp.writeFile(input, pair('q', 'd', 'why is the sky blue', 'Rayleigh scattering') + '\n');
    const unknown = path.join(dir, 'unknown.json');
    await fsp.writeFile(unknown, JSON.stringify({ model: MODEL, features: [{ id: 999999, alpha: 2 }] }));
    const other = path.join(dir, 'other-sae.json');
    await fsp.writeFile(other, JSON.stringify({ model: MODEL, saeSha256: 'a'.repeat(64), features: [{ id: 3, alpha: 2 }] }));
    const out = path.join(dir, 'explained.jsonl');
    const u = await xetrieval(['explain', '-i', input, '--no-erasure', '--steering', unknown, '-o', out]);
    assert.strictEqual(u.code, 1, u.stderr);
    assert.match(u.stderr, /unknown\.json: field "features\[0\]\.id": feature 999999 does not exist: the SAE has 4096 features/);
    const o = await xetrieval(['explain', '-i', input, '--no-erasure', '--steering', other, '-o', out]);
    assert.strictEqual(o.code, 1, o.stderr);
    assert.match(o.stderr, /other-sae\.json: field "saeSha256": the config was made with another SAE/);
    assert.strictEqual(fs.existsSync(out), false, 'nothing explained with a config that cannot apply');
  });

  it('explain --steering honours "apply": the query only, the document only and both give three different scores, and a bad side is refused naming the field', async () => {
    const input = path.join(dir, 'steer-side.jsonl');
    await fsp.writeFile(input, pair('q', 'd', 'why is the sky blue', 'The sky is blue because of Rayleigh scattering of sunlight by the air.') + '\n');
    const plain = path.join(dir, 'side-plain.jsonl');
    assert.strictEqual((await xetrieval(['explain', '-i', input, '--no-erasure', '-o', plain])).code, 0);
    // every feature the two texts share, removed (α = 0)
    const shared: number[] = JSON.parse(fs.readFileSync(plain, 'utf8').trim()).shared_features;
    assert.ok(shared.length > 0, 'the pair shares features');
    const score: Record<string, number> = {};
    for (const apply of ['both', 'query', 'document', undefined]) {
      const cfg = path.join(dir, `side-${apply}.json`);
      await fsp.writeFile(cfg, JSON.stringify({ model: MODEL, features: shared.map((id) => ({ id, alpha: 0 })), ...(apply ? { apply } : {}) }));
      const out = path.join(dir, `side-${apply}.jsonl`);
      const r = await xetrieval(['explain', '-i', input, '--no-erasure', '--steering', cfg, '-o', out]);
      assert.strictEqual(r.code, 0, r.stderr);
      score[apply ?? 'default'] = JSON.parse(fs.readFileSync(out, 'utf8').trim()).score;
    }
    assert.strictEqual(score.default, score.both, 'without "apply" both texts are steered');
    assert.ok(new Set([score.both, score.query, score.document].map((x) => x.toFixed(4))).size === 3, JSON.stringify(score));
    const bad = path.join(dir, 'side-bad.json');
    await fsp.writeFile(bad, JSON.stringify({ model: MODEL, apply: 'queries', features: [{ id: 3, alpha: 2 }] }));
    const b = await xetrieval(['explain', '-i', input, '--no-erasure', '--steering', bad, '-o', path.join(dir, 'side-bad.jsonl')]);
    assert.notStrictEqual(b.code, 0);
    assert.match(b.stderr, /side-bad\.json: field "apply": must be one of both, query, document, got "queries"/);
  });
});
