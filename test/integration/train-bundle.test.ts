/**
 * The model kit end to end on a tiny real corpus: a slice of SciFact (real
 * text, real encoder) through `trainBundle` in the worker — embeddings,
 * internalizers, SAE, labels, evaluation, manifest and report — and then
 * explanations from the bundle it wrote.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { EngineClient } from '../../src/client/engineClient';
import { tokenize } from '../../src/core/explain';
import { BundleManifest, openBundle, readLabels } from '../../src/engine/bundle';
import { FakeLlm } from '../unit/helpers/fakeLlm';
import { DEFAULT_MODEL, SHARED, WORKER_PATH, minilm, testCacheDir, tmpDir } from './helpers';

/** The first `nDocs` SciFact documents, and the queries/qrels that judge only them. */
function tinySciFact(root: string, nDocs: number): void {
  const src = path.join(SHARED, 'data', 'scifact');
  const dst = path.join(root, 'scifact');
  fs.mkdirSync(path.join(dst, 'qrels'), { recursive: true });
  const lines = fs.readFileSync(path.join(src, 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean);
  const judged = new Set<string>();
  for (const split of ['train', 'test']) {
    const rows = fs.readFileSync(path.join(src, 'qrels', `${split}.tsv`), 'utf8').split('\n').filter(Boolean);
    rows.slice(1).forEach((r) => judged.add(r.split('\t')[1]));
  }
  // judged documents first, so the slice has relevant pairs to learn and evaluate on
  const docs = [...lines.filter((l) => judged.has(JSON.parse(l)._id)), ...lines.filter((l) => !judged.has(JSON.parse(l)._id))].slice(0, nDocs);
  const ids = new Set(docs.map((l) => JSON.parse(l)._id as string));
  fs.writeFileSync(path.join(dst, 'corpus.jsonl'), docs.join('\n') + '\n');
  const qids = new Set<string>();
  for (const split of ['train', 'test']) {
    const rows = fs.readFileSync(path.join(src, 'qrels', `${split}.tsv`), 'utf8').split('\n').filter(Boolean);
    const kept = rows.slice(1).filter((r) => ids.has(r.split('\t')[1]));
    kept.forEach((r) => qids.add(r.split('\t')[0]));
    fs.writeFileSync(path.join(dst, 'qrels', `${split}.tsv`), [rows[0], ...kept].join('\n') + '\n');
  }
  const queries = fs.readFileSync(path.join(src, 'queries.jsonl'), 'utf8').split('\n').filter((l) => l && qids.has(JSON.parse(l)._id));
  fs.writeFileSync(path.join(dst, 'queries.jsonl'), queries.join('\n') + '\n');
}

/**
 * A tiny broad corpus (what `train corpus` writes) and a tiny WordNet index, so
 * the concept labels, generic features, families and checks run the same
 * whether or not the machine has Debian's wordnet-base.
 */
function tinyBroad(dir: string, lexiconRoot: string): void {
  const texts = [
    'water: a clear liquid that freezes into ice below zero degrees',
    'ice: water frozen into a solid; it is less dense than liquid water',
    'thread: a sequence of instructions that runs inside a process and shares its memory',
    'lock: a mutex that lets one thread at a time enter a critical section',
    'The global interpreter lock lets only one thread run Python bytecode at a time.',
    'A process has its own memory; threads of a process share it and need a lock.',
    'git commit records the staged changes in the repository with a message.',
    'git revert makes a new commit that undoes an earlier commit.',
    'SELECT reads rows from a table; WHERE filters the rows by a condition.',
    'An index on a column makes a query that filters by that column faster.',
    'Boil the egg for six minutes for a soft yolk, then cool it in cold water.',
    'Blot a wine stain with a cloth and cold water; never rub the carpet.',
  ];
  const rows = Array.from({ length: 8 }, (_, r) => texts.map((t, i) => ({ id: `tiny:${r}:${i}`, text: r ? `${t} (${r})` : t }))).flat();
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'wordnet.jsonl'), rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'sources.json'), JSON.stringify({ sources: [{ name: 'wordnet', package: 'wordnet-base', path: '/usr/share/wordnet', licence: 'WordNet 3.0 licence', kind: 'everyday', available: rows.length, count: rows.length }] }));
  const faq = [
    { query_id: 'f1', doc_id: 'a1', query: 'Why can Python threads not run in parallel?', doc: texts[4], label: 1 },
    { query_id: 'f1', doc_id: 'a2', query: 'Why can Python threads not run in parallel?', doc: texts[8], label: 0 },
    { query_id: 'f2', doc_id: 'a3', query: 'How do I undo a git commit?', doc: texts[7], label: 1 },
    { query_id: 'f2', doc_id: 'a4', query: 'How do I undo a git commit?', doc: texts[10], label: 0 },
  ];
  fs.writeFileSync(path.join(dir, 'python-faq.jsonl'), faq.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const wn = path.join(lexiconRoot, 'usr', 'share', 'wordnet');
  fs.mkdirSync(wn, { recursive: true });
  const lemmas = ['water', 'ice', 'thread', 'lock', 'process', 'memory', 'commit', 'repository', 'table', 'index', 'egg', 'stain', 'carpet', 'global_interpreter_lock', 'cancer', 'cell', 'protein'];
  fs.writeFileSync(path.join(wn, 'index.noun'), '  1 licence lines start with two spaces\n' + lemmas.map((l, i) => `${l} n 1 0 1 ${i} ${String(1000 + i).padStart(8, '0')}`).join('\n') + '\n');
}

describe('model kit: train a bundle end to end on a tiny SciFact slice', function () {
  this.timeout(900_000);
  let client: EngineClient;
  let out: string;
  let root: string;
  let work: string;
  let corpus: string;
  let lexicon: string;

  before(async () => {
    await minilm();
    client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH });
    root = tmpDir('tinydata');
    work = tmpDir('work');
    tinySciFact(root, 240);
    // pairs for the checks, and for the leave-one-corpus-out run that trains without SciFact
    const sample = fs.readFileSync(path.join(SHARED, 'data', 'scifact', 'sample_pairs.jsonl'), 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(path.join(root, 'scifact', 'sample_pairs.jsonl'), [...sample.slice(0, 10), ...sample.slice(-10)].join('\n') + '\n');
    corpus = tmpDir('corpus');
    lexicon = tmpDir('lexicon');
    tinyBroad(corpus, lexicon);
    out = path.join(tmpDir('bundle'), 'tiny');
    const phases = new Set<string>();
    const r = await client.request(
      'trainBundle',
      { ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() }, dataRoot: root, corpusDir: corpus, lexiconRoot: lexicon, workDir: work, outDir: out, dictSize: 256, k: 8, saeEpochs: 20, keyFeatures: 8, seed: 5, command: 'test', leaveOneOut: true },
      { onProgress: (p) => phases.add(p.phase.split(' ')[0]) },
    );
    assert.strictEqual(r.result.outDir, out);
    for (const p of ['embed', 'internalizer', 'sae', 'evaluate', 'labels', 'checks']) assert.ok(phases.has(p), `progress phase ${p}`);
  });
  after(async () => client?.dispose());

  it('writes a bundle whose manifest pins every file and the base weights', async () => {
    const weights = (await minilm()).files['model.safetensors'].sha256;
    const m = await openBundle(out, weights);
    assert.strictEqual(m.sae.dictSize, 256);
    assert.strictEqual(m.sae.k, 8);
    assert.deepStrictEqual(m.views.map((v) => v.name).sort(), ['qa', 'summary']);
    assert.ok(m.heldOut.some((h) => h.startsWith('scifact queries+qrels:test')));
    // a flipped byte is caught on load
    const f = path.join(out, m.labels.file);
    const orig = fs.readFileSync(f);
    fs.writeFileSync(f, Buffer.concat([orig, Buffer.from(' ')]));
    await assert.rejects(openBundle(out, weights), /sha256 .* does not match the manifest/);
    fs.writeFileSync(f, orig);
    const labels = readLabels(out, m);
    assert.ok(labels.size > 0);
    const withLabel = [...labels.values()].filter((l) => l.label);
    assert.ok(withLabel.length > labels.size / 2, 'most live features get a label');
    // concept labels from the lexicon where a concept fires the feature, term labels elsewhere; each says which
    assert.strictEqual(m.labels.labeller, 'concepts');
    const all = [...labels.values()];
    assert.ok(all.every((l) => l.source === 'concept' || l.source === 'terms'));
    const concepts = all.filter((l) => l.source === 'concept');
    assert.ok(concepts.length > 0, 'some features are named by a concept');
    assert.ok(concepts.every((l) => l.label.split(' ').length <= 4), 'a concept label is 1–4 words');
    // generic features: marked by their share of the labelling texts, and counted in the manifest
    assert.ok(m.generic && m.generic.threshold === 0.1);
    assert.strictEqual(all.filter((l) => l.generic).length, m.generic.count);
    assert.ok(all.filter((l) => l.generic).every((l) => (l.frequency ?? 0) > 0.1));
    // the broad corpus is training data, and the manifest says so
    assert.ok(m.trainingData.some((t) => t.dataset === 'wordnet'));
  });

  it('reports every figure with the regeneration command', () => {
    const report = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    for (const s of ['fraction of variance explained', 'dead features', 'L0', 'reconstructed q and d', 'Internalised score', 'Erasure', 'Steering', 'mean detection, encoder judge', '```sh\ntest\n```']) {
      assert.ok(report.includes(s), `REPORT.md mentions ${s}`);
    }
    assert.match(report, /\| 1\.5 \| [0-9.]+ \|/);
    assert.match(report, /\| trained, encoder \| (0\.\d\d ){9}0\.\d\d \| 0\.\d\d \|/, 'hit rate by decile per SAE and judge');
    assert.match(report, /\| trained: feature \| label \|.*\n\|---/, 'labels of both SAEs side by side');
    // the Xetrieval README's pairs, a technical and two everyday pairs, explained with the bundle, each with its score split
    const examples = report.slice(report.indexOf("## Example explanations (the Xetrieval repository's example pairs"));
    assert.ok(examples.includes('why does ice float on water?') && examples.includes('what causes a solar eclipse?') && examples.includes('global interpreter lock'));
    assert.strictEqual([...examples.matchAll(/\|O\(q,d\)\| = \d+;/g)].length, 5);
    assert.strictEqual([...examples.matchAll(/Score = shared features -?[0-9.]+ \+ one-sided/g)].length, 5);
    // the checks that can fail: the held-out FAQ pairs, grounding against shuffled labels, erasure by share against controls
    for (const s of ['## Broad corpus', '## Generic features', '## Feature families', '## Checks that can fail']) assert.ok(report.includes(s), `REPORT.md has ${s}`);
    // relevant pairs, pairs with a listed feature, grounding over listed features, shuffled, ratio, word pieces (grounded / listed; the others'
    // grounding), then grounding over any share
    assert.match(report, /\| python-faq \(held out\) \| no \| 2 \| [0-2] \| [0-9.]+ \| [0-9.]+ \| (—|[0-9.]+×) \| \d+ \/ \d+; [0-9.]+ \| [0-9.]+ \([0-9.]+\) \|/);
    assert.match(report, /\| python-faq \(held out\), relevant \| 2 \| [0-9.]+ \/ [0-9.]+ \/ [0-9.]+ \|/);
    assert.match(report, /\| scifact\/sample_pairs \| yes \| 10 \|/);
    // leave one corpus out: an SAE and labels without SciFact, checked on SciFact's pairs (not in its training) and the FAQ
    assert.ok(report.includes('**Leave one corpus out.**'));
    assert.match(report, /\| scifact \| \d+ \| [0-9.]+ \| [0-9.]+% \| \d+ \| scifact\/sample_pairs \(left out\) \| \d+\/10 \| [0-9.]+ \|/);
    assert.match(report, /\| scifact \| \d+ \| [0-9.]+ \| [0-9.]+% \| \d+ \| python-faq \(held out\) \| \d+\/2 \| [0-9.]+ \|/);
    // the left-out run's labels are kept in the work folder, one per live feature of its SAE
    const loco = fs.readFileSync(path.join(work, 'labels-without-scifact.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: number; label: string });
    assert.ok(loco.length > 0 && loco.every((l) => Number.isInteger(l.id) && l.id < 256 && typeof l.label === 'string'));
    // the SAE trains on the documents' sentences too, cached per document as <doc>#<n>
    const vectors = Number(/trained on (\d+) vectors/.exec(report)![1]);
    const sentences = JSON.parse(fs.readFileSync(path.join(work, 'embeddings', 'scifact', 'sentences.json'), 'utf8')) as { ids: string[] };
    assert.ok(sentences.ids.length > 0 && sentences.ids.every((id) => /#\d+$/.test(id)), 'sentence ids are <doc>#<n>');
    assert.ok(vectors > sentences.ids.length, `${vectors} training vectors include ${sentences.ids.length} sentences`);
  });

  it("labels with the paper's LLM labeller and judge through an OpenAI-compatible endpoint, resuming from the work folder", async () => {
    // A loopback endpoint, deterministic, stands in for the LLM (none is reachable here): as
    // explainer it answers the word most of the examples share; as judge it calls a text active
    // when it holds that word. What is under test is the path: worker → HTTP → labels, report.
    const llm = new FakeLlm();
    const commonest = (texts: string[]) => {
      const c = new Map<string, number>();
      for (const t of texts) for (const w of new Set(tokenize(t))) c.set(w, (c.get(w) ?? 0) + 1);
      return [...c.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? 'nothing';
    };
    llm.handler = (s, res) => {
      const numbered = [...s.prompt.matchAll(/^\d+\. (?:\(activation \d+\) )?(.*)$/gm)].map((m) => m[1]);
      if (s.prompt.startsWith('You are interpreting')) return FakeLlm.answer(res, `Label: ${commonest(numbered)}`);
      const label = s.prompt.split('\n')[1].replace(/"/g, '');
      FakeLlm.answer(res, JSON.stringify(numbered.map((t) => (tokenize(t).includes(label) ? 1 : 0))));
    };
    await llm.start();
    try {
      const llmOut = path.join(tmpDir('bundle-llm'), 'tiny');
      // the same data as the first run (its SAE checkpoints are reused), labels from the endpoint instead of concepts
      const params = { ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() }, dataRoot: root, corpusDir: corpus, lexiconRoot: lexicon, workDir: work, outDir: llmOut, dictSize: 256, k: 8, saeEpochs: 20, keyFeatures: 8, seed: 5, command: 'test' };
      const labeller = { endpoint: llm.url, model: 'loopback-llm', sample: 10, concurrency: 3 };
      const r = await client.request('trainBundle', { ...params, labeller });
      // a balanced accuracy (this stand-in's one-word labels are no better than chance; the unit test checks the scoring)
      assert.ok(r.result.summary.meanDetectionLlm >= 0 && r.result.summary.meanDetectionLlm <= 1, `${r.result.summary.meanDetectionLlm}`);
      assert.ok('meanDetectionLlmRandom' in r.result.summary);
      const m: BundleManifest = JSON.parse(fs.readFileSync(path.join(llmOut, 'manifest.json'), 'utf8'));
      assert.strictEqual(m.labels.labeller, 'llm:loopback-llm');
      const labels = [...readLabels(llmOut, m).values()];
      // every live feature with activating labelling texts is named by the endpoint (a one-word answer here)
      const named = labels.filter((l) => l.label);
      assert.ok(named.length > labels.length / 2 && named.every((l) => !l.label.includes(' ')), `${named.length} of ${labels.length}`);
      assert.strictEqual(labels.filter((l) => l.detectionLlm !== undefined).length, 10);
      const asked = llm.seen.length;
      const labelAsks = llm.seen.filter((x) => x.prompt.startsWith('You are interpreting')).length;
      assert.ok(labelAsks >= named.length && labelAsks <= named.length + 10, `${labelAsks} label requests for ${named.length} trained labels and ≤ 10 sampled random features`);
      const report = fs.readFileSync(path.join(llmOut, 'REPORT.md'), 'utf8');
      assert.ok(report.includes('mean detection, LLM judge') && report.includes('`loopback-llm`'), 'REPORT.md has the LLM judge figures');
      // the answers are kept in the work folder: a rerun asks nothing
      assert.ok(fs.existsSync(path.join(work, 'labels-llm.jsonl')));
      const again = await client.request('trainBundle', { ...params, labeller });
      assert.strictEqual(llm.seen.length, asked);
      assert.strictEqual(again.result.summary.meanDetectionLlm, r.result.summary.meanDetectionLlm);
    } finally {
      await llm.stop();
    }
  });

  it('explains pairs with the bundle it wrote', async () => {
    const r = await client.request('explain', {
      ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() },
      bundleDir: out,
      pairs: [{ query_id: 'q1', doc_id: 'd1', query: 'why does ice float on water?', doc: 'Ice is less dense than liquid water because water expands when it freezes.' }],
      options: { examples: 2 },
    });
    const e = r.result.explanations[0];
    assert.ok(e.score > 0.3 && e.score <= 1);
    assert.deepStrictEqual(Object.keys(e.view_scores).sort(), ['original', 'qa', 'summary']);
    assert.ok(Math.abs(e.internalized_score - Object.values(e.view_scores).reduce((a, b) => a + b, 0)) < 1e-4);
    assert.deepStrictEqual(Object.keys(e.per_view_shared_features).sort(), ['original', 'qa', 'summary']);
    assert.deepStrictEqual(e.shared_features, [...new Set(Object.values(e.per_view_shared_features).flat())].sort((a, b) => a - b));
    assert.strictEqual(e.feature_explanations.length, e.shared_features.length);
    for (const f of e.features) assert.ok(f.sharedIn.length > 0 && f.query > 0);
    assert.ok(e.erasure && e.erasure.overlap.size === e.shared_features.length);
    // the score adds up: shared + one-sided + generic features, bias and error
    const t = e.score_terms!;
    assert.ok(Math.abs(t.shared + t.one_sided + t.generic + t.bias + t.error - e.score) < 1e-4);
    // each listed label was judged against the pair (word pieces aside), and a feature is unmatched exactly under 0.2
    for (const f of e.features.filter((x) => !x.minor && !x.weak && !x.unnamed && x.label && !x.label.startsWith('word piece'))) {
      assert.ok(typeof f.labelFit === 'number' && f.labelFit >= -1 && f.labelFit <= 1, `feature ${f.id}: labelFit ${f.labelFit}`);
      assert.strictEqual(f.unmatched === true, f.labelFit < 0.2);
    }
  });

  it('--reuse keeps a bundle\'s SAE and internalizers byte for byte, measures the SAE on the same held-out rows, and makes its labels and report again', async () => {
    const again = path.join(tmpDir('bundle-reuse'), 'tiny');
    const params = { ref: { model: DEFAULT_MODEL, cacheDir: testCacheDir() }, dataRoot: root, corpusDir: corpus, lexiconRoot: lexicon, workDir: work, outDir: again, dictSize: 256, k: 8, saeEpochs: 20, keyFeatures: 8, seed: 5, command: 'test --reuse' };
    const phases = new Set<string>();
    await client.request('trainBundle', { ...params, reuseDir: out }, { onProgress: (p) => phases.add(p.phase.split(' ')[0]) });
    assert.ok(!phases.has('sae') && !phases.has('internalizer'), `nothing trained for the main bundle: ${[...phases]}`);
    const m0: BundleManifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const m1 = await openBundle(again, (await minilm()).files['model.safetensors'].sha256);
    assert.strictEqual(m1.sae.sha256, m0.sae.sha256);
    assert.deepStrictEqual(m1.views.map((v) => [v.name, v.sha256]), m0.views.map((v) => [v.name, v.sha256]));
    assert.strictEqual(m1.command, 'test --reuse');
    const r0 = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    const r1 = fs.readFileSync(path.join(again, 'REPORT.md'), 'utf8');
    const fve = (r: string) => /fraction of variance explained \(held-out\) \| ([0-9.]+) \|/.exec(r)![1];
    assert.strictEqual(fve(r1), fve(r0), 'the same FVE on the same held-out rows');
    assert.ok(r1.includes('The SAE and the internalizers are those of the bundle created') && r1.includes('```sh\ntest\n```') && r1.includes('```sh\ntest --reuse\n```'));
    assert.match(r1, /\| training time \| not in this run: the SAE was reused/);
    assert.deepStrictEqual(m1.trainedBy, { createdAt: m0.createdAt, command: 'test' });
    // reusing the reused bundle still names the run that trained the SAE, not the reuse before
    const third = path.join(tmpDir('bundle-reuse-again'), 'tiny');
    await client.request('trainBundle', { ...params, outDir: third, command: 'test --reuse again', reuseDir: again });
    const m2 = await openBundle(third, (await minilm()).files['model.safetensors'].sha256);
    assert.deepStrictEqual(m2.trainedBy, { createdAt: m0.createdAt, command: 'test' });
    const r2 = fs.readFileSync(path.join(third, 'REPORT.md'), 'utf8');
    assert.ok(r2.includes(`the bundle created ${m0.createdAt}, trained by:\n\n\`\`\`sh\ntest\n\`\`\``), 'the training run, not the reuse before');
    assert.ok(r2.includes('```sh\ntest --reuse again\n```'));
    // a bundle for another dictionary size is refused, naming the field
    await assert.rejects(client.request('trainBundle', { ...params, dictSize: 128, reuseDir: out }), /the dictionary size is 256, this run 128/);
  });
});
