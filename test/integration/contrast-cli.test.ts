/**
 * `xetrieval contrast` end to end with the real all-MiniLM-L6-v2 and the
 * default bundle on examples/pairs.jsonl (five failing queries), and every
 * reported flip set re-scored here: the pair embedded again by the worker,
 * the set erased with the bundle's own decoder, the cosines recomputed.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineClient } from '../../src/client/engineClient';
import { isUnnamedDetection } from '../../src/core/explain/attribution';
import { erase } from '../../src/core/explain/erasure';
import { cosine64 } from '../../src/core/explain/sparse';
import { loadSae } from '../../src/engine/sae/model';
import type { ContrastRecord } from '../../src/protocol/worker';
import { cliReady, DEFAULT_MODEL, REPO_ROOT, runCli, testCacheDir, WORKER_PATH } from './helpers';

const PAIRS = path.join(REPO_ROOT, 'examples', 'pairs.jsonl');
const BUNDLE = path.join(REPO_ROOT, 'models', DEFAULT_MODEL);
const FAILING = ['weather-umbrella', 'git-undo-commit', 'shell-port', 'http-429', 'sci-plant-food'];

const xetrieval = (args: string[]) => runCli(args);

const readRecords = async (f: string) =>
  (await fsp.readFile(f, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as ContrastRecord);

describe('xetrieval contrast with the real model', function () {
  this.timeout(300_000);
  let dir: string;

  before(async function () {
    if (!cliReady() || !fs.existsSync(path.join(BUNDLE, 'manifest.json'))) this.skip();
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-contrast-it-'));
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('examples/pairs.jsonl: one record per failing query, the contrast adds up, every flip set flips when re-scored', async () => {
    const output = path.join(dir, 'contrast.jsonl');
    const r = await xetrieval(['contrast', '--input', PAIRS, '--output', output, '--controls', '10']);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /14 queries, 5 failing contrasted, 0 errors/);
    const recs = await readRecords(output);
    assert.deepStrictEqual(recs.map((x) => x.query_id).sort(), [...FAILING].sort());
    const detection = new Map(
      (await fsp.readFile(path.join(BUNDLE, 'labels.jsonl'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: number; detection: number | null })
        .map((l) => [l.id, l.detection]),
    );

    const pairs = (await fsp.readFile(PAIRS, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { query_id: string; doc_id: string; doc: string; label: number });
    for (const rec of recs) {
      // d− is the top non-relevant candidate, above d+, the best relevant one below a non-relevant candidate
      assert.strictEqual(rec.minus.label, 0);
      assert.strictEqual(rec.plus.label, 1);
      assert.ok(rec.minus.rank < rec.plus.rank && rec.minus.score > rec.plus.score, rec.query_id);
      const mine = pairs.filter((p) => p.query_id === rec.query_id);
      assert.strictEqual(mine.find((p) => p.doc_id === rec.minus.doc_id)?.doc, rec.minus.doc);
      // the split adds up (six-decimal rounding of about 25 terms)
      assert.ok(Math.abs(rec.difference - (rec.minus.score - rec.plus.score)) < 2e-6, `${rec.query_id}: difference`);
      const c = rec.contrast;
      const sum = [...c.favour_minus, ...c.favour_plus].reduce((s, f) => s + f.contrast, 0) + c.other_features + c.generic + c.bias + c.error;
      assert.ok(Math.abs(sum - rec.difference) < 3e-5, `${rec.query_id}: ${sum} vs ${rec.difference}`);
      assert.ok(c.favour_minus.length > 0 && c.favour_minus.every((f, i, a) => f.contrast > 0 && (i === 0 || a[i - 1].contrast >= f.contrast)));
      assert.ok(c.favour_plus.length > 0 && c.favour_plus.every((f, i, a) => f.contrast < 0 && (i === 0 || a[i - 1].contrast <= f.contrast)));
      assert.ok([...c.favour_minus, ...c.favour_plus].every((f) => typeof f.label === 'string' && f.label.length > 0), 'every row has a label');
      // a row is unnamed exactly when its label's detection in the bundle is under the bar
      for (const f of [...c.favour_minus, ...c.favour_plus, ...rec.flip.features]) assert.strictEqual(f.unnamed === true, isUnnamedDetection(detection.get(f.id)), `${rec.query_id}: feature ${f.id}`);
      assert.ok(c.favour_minus.some((f) => f.shared_in_minus.includes('original')));
      const fl = rec.flip;
      assert.strictEqual(fl.bound, 20);
      if (fl.found) {
        assert.ok(fl.size >= 1 && fl.size <= 20 && fl.features.length === fl.size && fl.margin > 0);
        assert.match(fl.text, /^without (this feature|these \d+ features) \(erased from (the query|d−|d\+)\), d\+ wins by /);
        assert.ok(fl.control && fl.control.draws === 10);
      } else {
        assert.strictEqual(fl.size, 0);
        assert.ok(fl.margin <= 0);
        assert.match(fl.text, /^no set of at most 20 features found that flips the order/);
      }
    }
    const found = recs.filter((x) => x.flip.found);
    assert.ok(found.length >= 1, 'at least one failing example query has a flip set');

    // re-score each flip set independently: the worker embeds the texts, the bundle's decoder erases the set
    const sae = loadSae(path.join(BUNDLE, 'sae.safetensors'));
    const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
    try {
      const ref = { model: DEFAULT_MODEL, cacheDir: testCacheDir() };
      for (const rec of found) {
        const q = (await client.request('embed', { ref, texts: [rec.query], kind: 'query' })).result.embeddings;
        const d = (await client.request('embed', { ref, texts: [rec.minus.doc, rec.plus.doc], kind: 'document' })).result.embeddings;
        let [zq, zm, zp] = [q, d.subarray(0, 384), d.subarray(384)] as Float32Array[];
        const ids = rec.flip.features.map((f) => f.id);
        if (rec.flip.target === 'query') zq = erase(sae, zq, ids);
        else if (rec.flip.target === 'minus') zm = erase(sae, zm, ids);
        else zp = erase(sae, zp, ids);
        const margin = cosine64(zq, zp) - cosine64(zq, zm);
        assert.ok(margin > 0, `${rec.query_id}: erasing ${ids} from ${rec.flip.target} leaves d− ahead (${margin})`);
        assert.ok(Math.abs(margin - rec.flip.margin) < 1e-5, `${rec.query_id}: margin ${margin} vs reported ${rec.flip.margin}`);
      }
    } finally {
      await client.dispose();
    }
  });

  it('a bad line is named by file:line:field and skipped; the good queries are still written; exit 1', async () => {
    const lines = (await fsp.readFile(PAIRS, 'utf8')).split('\n').filter(Boolean);
    const input = path.join(dir, 'bad.jsonl');
    const output = path.join(dir, 'bad-out.jsonl');
    const broken = JSON.stringify({ query_id: 'weather-umbrella', doc_id: 'x', query: 'Will I need an umbrella tomorrow?' });
    const retexted = JSON.stringify({ ...JSON.parse(lines[0]), doc_id: 'other', query: 'another text' });
    await fsp.writeFile(input, [...lines.slice(0, 3), broken, '{"query_id": ', retexted, ...lines.slice(3)].join('\n') + '\n');
    const r = await xetrieval(['contrast', '--input', input, '--output', output]);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${input}:4: field "doc": missing`), r.stderr);
    assert.ok(r.stderr.includes(`${input}:5: invalid JSON`), r.stderr);
    assert.ok(r.stderr.includes(`${input}:6: field "query": query_id "${JSON.parse(lines[0]).query_id}" has another query text on an earlier line`), r.stderr);
    assert.match(r.stderr, /14 queries, 5 failing contrasted, 3 errors/);
    assert.strictEqual((await readRecords(output)).length, 5);
  });

  it('refuses an output that is its input and a --bound that is not a whole number', async () => {
    const same = await xetrieval(['contrast', '--input', PAIRS, '--output', PAIRS]);
    assert.strictEqual(same.code, 2);
    assert.match(same.stderr, /is the same file as the input/);
    const bad = await xetrieval(['contrast', '--input', PAIRS, '--bound', '2.5']);
    assert.strictEqual(bad.code, 2);
    assert.match(bad.stderr, /--bound.*whole number from 1 to 200/);
  });
});
