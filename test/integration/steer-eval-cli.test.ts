/**
 * `steer` and `eval --score internalized` through the built CLI with the
 * real all-MiniLM-L6-v2 and the default bundle. Skips when the bundles are
 * not built or the model is not cached.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultCacheDir, entryDir, MANIFEST_NAME } from '../../src/engine/models/cache';
import { runCli } from './helpers';

const ROOT = path.resolve(__dirname, '../../..');
const MODEL = 'all-MiniLM-L6-v2';

const xetrieval = runCli;

/**
 * Twenty queries on unrelated topics; each one's relevant document restates
 * it, its irrelevant one is another topic's. Unsteered, every query already
 * ranks its relevant document first (NDCG@10 = 1 on any split), so no (m, α)
 * can be strictly better: steer must refuse to save.
 */
const TOPICS: [string, string][] = [
  ['How do I bake sourdough bread at home?', 'Baking sourdough bread at home: feed the starter, mix flour and water, proof the dough overnight and bake it in a hot Dutch oven.'],
  ['What causes volcanic eruptions?', 'Volcanic eruptions happen when magma, gas and pressure build up under the crust until molten rock breaks through a volcano.'],
  ['How do I change a flat bicycle tyre?', 'To fix a flat bicycle tyre, remove the wheel, lever the tyre off, patch or replace the inner tube and pump it up again.'],
  ['Why is the sky blue?', 'The sky looks blue because air molecules scatter short blue wavelengths of sunlight more strongly than red ones (Rayleigh scattering).'],
  ['How does a credit card interest rate work?', 'Credit card interest: the annual percentage rate is charged on any balance not paid in full by the statement due date.'],
  ['What do honey bees eat?', 'Honey bees feed on nectar and pollen collected from flowers; nectar becomes honey, pollen gives the colony protein.'],
  ['How to train a puppy to sit?', 'Training a puppy to sit: hold a treat above its nose, move it back until the puppy sits, then reward and repeat daily.'],
  ['What is the rule of offside in football?', 'In football (soccer), a player is offside when nearer the opponents goal line than both the ball and the second-last defender as the ball is played.'],
  ['How do solar panels produce electricity?', 'Solar panels produce electricity when photovoltaic cells of silicon absorb sunlight and free electrons that flow as direct current.'],
  ['What is the capital of Australia?', 'The capital city of Australia is Canberra, chosen as a compromise between Sydney and Melbourne.'],
  ['How to remove a red wine stain from a carpet?', 'To remove a red wine stain from carpet, blot it, pour on cold water and a paste of baking soda, then vacuum when dry.'],
  ['How many strings does a violin have?', 'A violin has four strings tuned in fifths: G, D, A and E.'],
  ['Why do leaves change colour in autumn?', 'Leaves change colour in autumn because trees stop making green chlorophyll, revealing yellow and orange pigments.'],
  ['How do I reset a forgotten router password?', 'To reset a forgotten router password, hold the reset button for ten seconds and log in with the default admin credentials.'],
  ['What is the boiling point of water at high altitude?', 'At high altitude water boils below 100 °C because the air pressure is lower; at 3,000 m it boils near 90 °C.'],
  ['How long should you boil an egg?', 'Boil an egg for about seven minutes for a jammy yolk and ten to twelve minutes for a hard-boiled egg.'],
  ['Who painted the Mona Lisa?', 'The Mona Lisa was painted by Leonardo da Vinci in the early sixteenth century; it hangs in the Louvre.'],
  ['How do vaccines train the immune system?', 'Vaccines train the immune system by showing it a harmless antigen so it makes antibodies and memory cells against the pathogen.'],
  ['What is a black hole?', 'A black hole is a region of spacetime where gravity is so strong that nothing, not even light, can escape past its event horizon.'],
  ['How do I plant tomato seedlings?', 'Plant tomato seedlings deep in sunny, well-drained soil after the last frost, water them well and stake them as they grow.'],
];

describe('steer and eval --score internalized with the real model', function () {
  this.timeout(300_000);
  let dir: string;

  before(async function () {
    const built = ['cli.js', 'worker.js'].every((f) => fs.existsSync(path.join(ROOT, 'dist', f)));
    const cached = fs.existsSync(path.join(entryDir(defaultCacheDir(), MODEL), MANIFEST_NAME));
    if (!built || !cached) this.skip();
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-steer-it-'));
  });
  after(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('steer --save writes nothing when no (m, α) beat α = 1 on the validation split (exit 0), and says how many key features exist', async () => {
    const pairs = path.join(dir, 'easy.jsonl');
    const lines: string[] = [];
    TOPICS.forEach(([q, d], i) => {
      const other = TOPICS[(i + 7) % TOPICS.length][1];
      lines.push(JSON.stringify({ query_id: `q${i}`, doc_id: `d${i}`, query: q, doc: d, label: 1 }));
      lines.push(JSON.stringify({ query_id: `q${i}`, doc_id: `d${(i + 7) % TOPICS.length}`, query: q, doc: other, label: 0 }));
    });
    await fsp.writeFile(pairs, lines.join('\n') + '\n');
    const save = path.join(dir, 'steer.json');
    const r = await xetrieval(['steer', '--train', pairs, '--eval', pairs, '--key-features', '4096', '--save', save]);
    assert.strictEqual(r.code, 0, r.stderr);
    const split = /RUS on (\d+) queries, NDCG@10 on (\d+)/.exec(r.stdout);
    assert.ok(split, r.stdout);
    assert.ok(+split[1] >= 4 && +split[2] >= 4 && +split[1] + +split[2] === TOPICS.length, split[0]);
    assert.match(r.stdout, /—\s+1\.00\s+1\.0000\s+\(α = 1, unsteered\)/, 'α = 1 is perfect on validation');
    assert.match(
      r.stdout,
      /nothing beat α = 1 on the validation split by NDCG@10 with at least 2 more queries up than down \(best: m=\d+, α=[\d.]+ NDCG@10 [\d.]+ vs 1\.0000 unsteered[^)]*\); no steering config saved\n/,
      r.stdout,
    );
    assert.strictEqual(fs.existsSync(save), false, 'no config written');
    assert.match(r.stdout, /asked for 4096 key features; only \d+ have a positive RUS on the training pairs/);
    assert.doesNotMatch(r.stderr, /saved to/);
  });

  it('steer: a non-number or out-of-range flag is a usage error naming it (exit 2)', async () => {
    const pairs = path.join(dir, 'any.jsonl');
    await fsp.writeFile(pairs, JSON.stringify({ query_id: 'q', doc_id: 'd', query: 'a', doc: 'b', label: 1 }) + '\n');
    for (const [args, re] of [
      [['--alphas', 'a,b'], /--alphas <list>' argument 'a,b' is invalid/],
      [['--alphas', '-2'], /--alphas <list>' argument '-2' is invalid/],
      [['--key-features', 'abc'], /--key-features <n>' argument 'abc' is invalid/],
      [['--key-features', '0'], /--key-features <n>' argument '0' is invalid/],
    ] as [string[], RegExp][]) {
      const r = await xetrieval(['steer', '--eval', pairs, ...args]);
      assert.strictEqual(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /device:/, 'no worker started');
    }
  });

  it("eval --score internalized ranks by s' on a tiny BEIR folder and says so", async () => {
    const ds = path.join(dir, 'tiny');
    await fsp.mkdir(path.join(ds, 'qrels'), { recursive: true });
    const docs = TOPICS.slice(0, 8).map(([, d], i) => ({ _id: `d${i}`, title: '', text: d }));
    const queries = TOPICS.slice(0, 4).map(([q], i) => ({ _id: `q${i}`, text: q }));
    await fsp.writeFile(path.join(ds, 'corpus.jsonl'), docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
    await fsp.writeFile(path.join(ds, 'queries.jsonl'), queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
    await fsp.writeFile(path.join(ds, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\n' + queries.map((q, i) => `${q._id}\td${i}\t1`).join('\n') + '\n');

    const out = path.join(dir, 'sprime.json');
    const runFile = path.join(dir, 'sprime.run');
    const r = await xetrieval(['eval', ds, '--score', 'internalized', '-o', out, '--run', runFile]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /^score\s+s′\(q,d\) = ⟨z_q,z_d⟩ \+ Σ_t ⟨z_q,R_t\(z_d\)⟩, internalised \(views: qa, summary\)\n/);
    assert.match(r.stdout, /ndcg@10\s+1\.0000/);
    const json = JSON.parse(await fsp.readFile(out, 'utf8'));
    assert.strictEqual(json.score, 'internalized');
    assert.deepStrictEqual(json.views, ['qa', 'summary']);
    assert.strictEqual(json.queries, 4);
    for (const k of ['ndcg@10', 'recall@100', 'mrr@10']) assert.ok(json.metrics[k] >= 0 && json.metrics[k] <= 1, k);

    const raw = await xetrieval(['eval', ds, '--run', path.join(dir, 'raw.run')]);
    assert.strictEqual(raw.code, 0, raw.stderr);
    assert.match(raw.stdout, /^score\s+raw ⟨z_q,z_d⟩\n/);
    const top = async (f: string) => new Map((await fsp.readFile(f, 'utf8')).trim().split('\n').map((l) => l.split(' ')).filter((c) => c[3] === '1').map((c) => [c[0], +c[4]]));
    const [sp, rw] = [await top(runFile), await top(path.join(dir, 'raw.run'))];
    // s′ adds the views' ⟨z_q, R_t(z_d)⟩ to the raw cosine: a different, larger number for a relevant top document
    for (const [q, s] of rw) assert.ok(sp.get(q)! > s + 0.1, `${q}: s′ ${sp.get(q)} vs raw ${s}`);
  });
});
