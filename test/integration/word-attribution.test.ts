/**
 * `explain --tokens`: word attributions by occlusion with the real model. The
 * Δ a unit reports must be what `score` gives for the text without it.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { occlude } from '../../src/core/explain/occlusion';
import { PairExplanation } from '../../src/protocol/worker';
import { cliReady, runCli, tmpDir } from './helpers';

const PAIR = {
  query_id: 'q',
  doc_id: 'd',
  query: 'How do I undo my last git commit but keep the changes?',
  doc: 'Run git reset --soft HEAD~1: it moves the branch back one commit and leaves your changes staged in the index, so nothing you committed is lost.',
};

describe('explain --tokens with the real model', function () {
  this.timeout(180_000);
  let dir: string;
  let ex: PairExplanation;

  before(async function () {
    if (!cliReady()) this.skip();
    dir = tmpDir('tokens');
    const input = path.join(dir, 'pairs.jsonl');
    fs.writeFileSync(input, JSON.stringify(PAIR) + '\n');
    const out = path.join(dir, 'out.jsonl');
    const r = await runCli(['explain', '-i', input, '-o', out, '--tokens', '-q']);
    assert.strictEqual(r.code, 0, r.stderr);
    ex = JSON.parse(fs.readFileSync(out, 'utf8').trim()) as PairExplanation;
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('attributes every word of a short pair, with offsets into the texts', () => {
    const ta = ex.token_attributions!;
    assert.ok(ta, 'token_attributions written');
    assert.strictEqual(ta.query.window, 1);
    assert.strictEqual(ta.query.units.length, 12);
    for (const [side, text] of [['query', PAIR.query], ['doc', PAIR.doc]] as const) {
      for (const u of ta[side].units) assert.strictEqual(text.slice(u.start, u.end), u.text);
    }
    // the word the pair is about carries the most score on both sides
    const top = (side: 'query' | 'doc') => [...ta[side].units].sort((a, b) => b.score - a.score)[0].text;
    assert.strictEqual(top('query'), 'git');
    assert.strictEqual(top('doc'), 'git');
  });

  it('reports the Δ that scoring the occluded text gives', async () => {
    const ta = ex.token_attributions!;
    const units = [...ta.doc.units].sort((a, b) => Math.abs(b.score) - Math.abs(a.score)).slice(0, 3);
    const input = path.join(dir, 'occluded.jsonl');
    fs.writeFileSync(input, units.map((u, i) => JSON.stringify({ query_id: 'q', doc_id: `d${i}`, query: PAIR.query, doc: occlude(PAIR.doc, u) })).join('\n') + '\n');
    const out = path.join(dir, 'scored.jsonl');
    const r = await runCli(['score', '-i', input, '-o', out, '-q']);
    assert.strictEqual(r.code, 0, r.stderr);
    const scores = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { score: number }).score);
    units.forEach((u, i) => assert.ok(Math.abs(ex.score - u.score - scores[i]) < 1e-4, `${u.text}: ${ex.score} − ${u.score} vs ${scores[i]}`));
  });

  it('gives each listed feature its words', () => {
    const git = ex.features.find((f) => f.label === 'git');
    assert.ok(git, `a "git" feature among ${ex.features.map((f) => f.label).join(' | ')}`);
    const byFeature = [...ex.token_attributions!.query.units].sort((a, b) => (b.features[git.id] ?? 0) - (a.features[git.id] ?? 0));
    assert.strictEqual(byFeature[0].text, 'git');
    // removing "git" takes most of the feature away
    assert.ok(byFeature[0].features[git.id] > 0.5 * git.query, `${byFeature[0].features[git.id]} of ${git.query}`);
  });

  it('occludes a long document in windows, and only the words the encoder keeps', async () => {
    const doc = Array.from({ length: 40 }, (_, i) => `Sentence ${i + 1} says git keeps every commit in the object database until garbage collection.`).join(' ');
    const input = path.join(dir, 'long.jsonl');
    fs.writeFileSync(input, JSON.stringify({ ...PAIR, doc }) + '\n');
    const out = path.join(dir, 'long.out.jsonl');
    const r = await runCli(['explain', '-i', input, '-o', out, '--tokens', '--token-units', '16', '--no-erasure', '-q']);
    assert.strictEqual(r.code, 0, r.stderr);
    const e = JSON.parse(fs.readFileSync(out, 'utf8').trim()) as PairExplanation;
    const d = e.token_attributions!.doc;
    assert.ok(e.doc_truncated);
    assert.ok(d.truncated_at !== undefined && d.truncated_at > 0 && d.truncated_at < doc.length);
    assert.ok(d.units.length <= 16 && d.window > 1, `${d.units.length} units of ${d.window} words`);
    assert.ok(d.units.every((u) => u.end <= d.truncated_at!));
    // the words after the cut, occluded, would change nothing: the score of the kept prefix is the score
    const scored = path.join(dir, 'prefix.jsonl');
    fs.writeFileSync(scored, JSON.stringify({ ...PAIR, doc: doc.slice(0, d.truncated_at) }) + '\n');
    const s = await runCli(['score', '-i', scored, '-q']);
    assert.strictEqual(s.code, 0, s.stderr);
    assert.ok(Math.abs((JSON.parse(s.stdout) as { score: number }).score - e.score) < 1e-4);
  });

  it('rejects a bad --token-units with exit 2 and names the flag', async () => {
    const r = await runCli(['explain', '-i', path.join(dir, 'pairs.jsonl'), '--tokens', '--token-units', '0']);
    assert.strictEqual(r.code, 2);
    assert.match(r.stderr, /--token-units/);
  });
});
