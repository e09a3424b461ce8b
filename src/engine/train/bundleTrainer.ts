/**
 * `xetrieval train bundle`: everything the default explanation bundle is made
 * of, from the corpora and queries to REPORT.md. Runs in the worker (the
 * engine's process); every stage caches its output in the work folder, so an
 * interrupted run resumes where it stopped.
 *
 * SciFact and NFCorpus *test* queries are used only for the evaluation
 * figures: never to train internalizers, the SAE, labels or steering.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadQrels } from '../../core/beir';
import { Matrix, hasMatrix, loadMatrix, saveMatrix } from '../../core/vectorStore';
import { ExecutionProvider, Precision, ProgressEvent, ScoreTerms, SharedFeature, TextKind, TrainBundleParams } from '../../protocol/worker';
import { docText, readCorpus, readQueries, supervisedViews } from '../../train/views';
import { sentences } from '../../core/sentences';
import { CorpusSource, readBroadCorpus, wordnetLemmas, wordnetSynonyms } from '../../train/broadCorpus';
import { familyLabel, featureFamilies } from '../../core/explain/families';
import { isListed, unlistedGroups } from '../../core/explain/attribution';
import { runChecks, CheckPair, SetChecks } from './checks';
import { BUNDLE_FORMAT, BundleManifest, BundleView, FeatureLabel, readManifest, sha256File, trainingRun } from '../bundle';
import { InternalizerSession, loadInternalizer, saveInternalizer } from '../internalizer/model';
import { trainInternalizer } from '../internalizer/trainer';
import { InternalizerWeights } from '../internalizer/graph';
import { Explainer, LabelEmbedder, SaeEncoder } from '../explainer';
import { EvalSet, Metrics, codesOf, erasureStudy, internalisedDocs, reconstruct, retrieval, steeringCurve, ErasureStats, SteeringCurve } from './evaluate';
import { SaeBackend, SaeTrainRun } from './saeBackend';
import { labelFeatures, LabelStudy } from './labelling';
import { llmLabeller } from '../../train/llmLabeller';
import { writeReport } from './report';

/** The protocol's parameters (paths, sizes, seed, command) plus what the worker supplies. */
/** A feature active on more than this share of the labelling texts is generic (k/dictSize = 2.3% is the mean). */
export const GENERIC_THRESHOLD = 0.1;
/** Decoder cosine at which a feature joins a more frequent one's family. */
const FAMILY_COSINE = 0.4;

export interface TrainBundleOptions extends Omit<TrainBundleParams, 'ref'> {
  model: { id: string; weightsSha256: string; dim: number; precision: Precision };
  embed: (texts: string[], kind: TextKind, onDone: (done: number, total: number) => void) => Promise<Float32Array>;
  sae: SaeBackend;
  provider: ExecutionProvider;
  progress: (p: ProgressEvent) => void;
  log: (msg: string) => void;
  signal?: AbortSignal;
}

interface Dataset {
  name: string;
  folder: string;
  trainSplits: string[];
  evalSplit?: string;
  minGrade: number;
}

const DATASETS = (root: string): Dataset[] => [
  { name: 'scifact', folder: path.join(root, 'scifact'), trainSplits: ['train'], evalSplit: 'test', minGrade: 1 },
  { name: 'nfcorpus', folder: path.join(root, 'nfcorpus'), trainSplits: ['train', 'dev'], evalSplit: 'test', minGrade: 1 },
  // DL19 is not evaluated here; its judged queries supervise qa views and features.
  { name: 'msmarco-dl19-subset', folder: path.join(root, 'msmarco-dl19-subset'), trainSplits: ['test'], minGrade: 2 },
];

export interface BundleFigures {
  sae: { dictSize: number; k: number; trainVectors: number; heldOutVectors: number; fve: number; deadFraction: number; l0: number; seconds: number; stepsPerSecond: number };
  reconstructionRetrieval: { original: Metrics; reconstructed: Metrics; ratio: number };
  internalised: Record<string, { base: Metrics; internalised: Metrics }>;
  views: BundleView[];
  erasure: ErasureStats;
  steering: SteeringCurve;
  labels: LabelStudy;
  examples: ExampleExplanation[];
  /** checks that can fail, per eval set (engine/train/checks) */
  checks: SetChecks[];
  /** leave-one-corpus-out runs (train bundle --leave-one-out) */
  leaveOneOut: LeaveOneOut[];
  generic: { threshold: number; count: number; top: { id: number; label: string; frequency: number }[]; quantiles: { q: number; frequency: number }[] };
  families: { cosine: number; count: number; features: number; largest: number; examples: { root: number; label: string; members: string[] }[] };
  /** the broad corpus's sources */
  corpus: CorpusSource[];
  /** `--reuse`: the bundle whose SAE and internalizers were kept, and the command that trained them */
  reused?: { dir: string; command: string; createdAt: string };
}

/**
 * Pairs a reader can judge the labels of O(q,d) on: the Xetrieval repository's
 * two examples (its README), a technical pair like the GIL paragraph that was
 * explained by "thailand, currency, beach", and two everyday ones. Written for
 * this project; none of them is in the training texts.
 */
export const EXAMPLE_PAIRS: { query: string; doc: string }[] = [
  { query: 'why does ice float on water?', doc: 'Ice is less dense than liquid water because water expands when it freezes.' },
  { query: 'what causes a solar eclipse?', doc: 'A solar eclipse happens when the Moon passes between Earth and the Sun.' },
  {
    query: 'why can Python threads not run on several CPU cores at once?',
    doc: "CPython's global interpreter lock (GIL) lets only one thread execute Python bytecode at a time, so CPU-bound threads do not run in parallel; use multiprocessing to spread work over several cores.",
  },
  { query: 'how long should I boil an egg for a soft yolk?', doc: 'Lower the egg into boiling water and cook it for six minutes: the white sets while the yolk stays runny. Cool it in cold water before peeling.' },
  { query: 'how do I get a red wine stain out of a carpet?', doc: 'Blot the spill with a clean cloth, pour a little cold water on it and blot again; then dab on a mix of dish soap and white vinegar and rinse. Never rub, which spreads the stain.' },
];

export interface ExampleExplanation {
  query: string;
  doc: string;
  score: number;
  internalizedScore: number;
  /** |O(q,d)| */
  shared: number;
  /** cosine after erasing O(q,d) / a same-size control set */
  erasedOverlap: number;
  erasedControl: number;
  /** the score split into shared, one-sided and generic features, bias and error */
  terms?: ScoreTerms;
  /** the shared features with the largest share of the score */
  /** listed features (not minor, weakly active or unnamed), largest share first */
  top: { id: number; label: string; share: number; erasureDelta: number }[];
  /** shared non-generic features under 0.01 each, not listed */
  minor?: { count: number; share: number };
  /** shared features of 0.01 or more that are weakly active (core/explain WEAK_ACTIVATION), not listed */
  weak?: { count: number; share: number; labels: string[] };
  /** shared features of 0.01 or more, strongly active, whose labels do not name them reliably (core/explain NAMED_DETECTION), not listed */
  unnamed?: { count: number; share: number; labels: string[] };
  /** shared features of 0.01 or more whose labels do not match the pair (core/explain LABEL_FIT), not listed */
  unmatched?: { count: number; share: number; labels: string[] };
}

/** How many features, and how much of the score, one reason leaves unlisted. */
const tally = (fs: readonly SharedFeature[]) => ({ count: fs.length, share: fs.reduce((s, f) => s + f.share, 0) });

async function exampleExplanations(o: TrainBundleOptions, sae: SaeEncoder, views: InternalizerSession, labels: FeatureLabel[], embedLabels: LabelEmbedder): Promise<ExampleExplanation[]> {
  const byId = new Map(labels.map((l) => [l.id, l]));
  const explainer = new Explainer(sae, views, { get: (id) => byId.get(id), size: byId.size });
  const queries = await o.embed(EXAMPLE_PAIRS.map((p) => p.query), 'query', () => {});
  const docs = await o.embed(EXAMPLE_PAIRS.map((p) => p.doc), 'document', () => {});
  const none = EXAMPLE_PAIRS.map(() => false);
  const pairs = EXAMPLE_PAIRS.map((p, i) => ({ query_id: `example-${i + 1}`, doc_id: `example-${i + 1}`, query: p.query, doc: p.doc }));
  const out = await explainer.explainEmbedded(pairs, { dim: o.model.dim, queries, docs, queryTruncated: none, docTruncated: none }, {}, undefined, embedLabels);
  return out.map((x, i) => {
    const g = unlistedGroups(x.features);
    return {
      ...EXAMPLE_PAIRS[i],
      score: x.score,
      internalizedScore: x.internalized_score,
      shared: x.shared_features.length,
      erasedOverlap: x.erasure?.overlap.erased ?? NaN,
      erasedControl: x.erasure?.control.erased ?? NaN,
      terms: x.score_terms,
      minor: tally(g.minor),
      weak: { ...tally(g.weak), labels: g.weak.map((f) => f.label) },
      unnamed: { ...tally(g.unnamed), labels: g.unnamed.map((f) => f.label) },
      unmatched: { ...tally(g.unmatched), labels: g.unmatched.map((f) => f.label) },
      top: x.features
        .filter(isListed)
        .sort((a, b) => b.share - a.share || a.id - b.id)
        .slice(0, 8)
        .map((f) => ({ id: f.id, label: f.label, share: f.share, erasureDelta: f.erasureDelta })),
    };
  });
}

/** An eval file's pairs for the checks (ids as text, label 0 when absent). */
export function readCheckPairs(file: string): CheckPair[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CheckPair)
    .map((p) => ({ ...p, query_id: String(p.query_id), doc_id: String(p.doc_id), label: Number(p.label ?? 0) }));
}

/** One leave-one-corpus-out run: an SAE and labels trained without `leftOut`, checked on its pairs and the held-out FAQ. */
export interface LeaveOneOut {
  leftOut: string;
  trainVectors: number;
  fve: number;
  deadFraction: number;
  conceptLabelled: number;
  checks: SetChecks[];
}

/** Copies a bundle file into the bundle being written (nothing to do when it is the same file). */
function copyInto(from: string, to: string): void {
  if (path.resolve(from) === path.resolve(to)) return;
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}

/**
 * `train bundle --reuse <bundle>`: that bundle's SAE and internalizers, kept
 * as they are (same base model, dictionary and k), so labels, families,
 * checks and REPORT.md can be made again after a change to how features are
 * named or judged without training the SAE again.
 */
function reusedBundle(o: TrainBundleOptions): { dir: string; manifest: BundleManifest } | undefined {
  if (!o.reuseDir) return undefined;
  const manifest = readManifest(o.reuseDir);
  const bad = (what: string, got: unknown, want: unknown) => {
    throw new Error(`${path.join(o.reuseDir!, 'manifest.json')}: ${what} is ${got}, this run ${want}: the bundle cannot be reused here`);
  };
  if (manifest.baseModel.weightsSha256 !== o.model.weightsSha256) bad('the base model', `${manifest.baseModel.id} (${manifest.baseModel.weightsSha256.slice(0, 12)})`, `${o.model.id} (${o.model.weightsSha256.slice(0, 12)})`);
  if (manifest.sae.dictSize !== o.dictSize) bad('the dictionary size', manifest.sae.dictSize, o.dictSize);
  if (manifest.sae.k !== o.k) bad('k', manifest.sae.k, o.k);
  return { dir: o.reuseDir, manifest };
}

export async function trainBundle(o: TrainBundleOptions): Promise<BundleFigures> {
  const reused = reusedBundle(o);
  const emb = path.join(o.workDir, 'embeddings');
  // datasets missing from dataRoot are skipped (a user's own root may hold only some); SciFact is required for the figures
  const datasets = DATASETS(o.dataRoot).filter((d) => fs.existsSync(path.join(d.folder, 'corpus.jsonl')));
  if (datasets[0]?.name !== 'scifact') throw new Error(`${path.join(o.dataRoot, 'scifact')}: SciFact (BEIR layout) is needed for the report's figures`);

  // 1. embeddings of documents, queries (per split) and supervised view texts
  const texts: Record<string, { docs: Map<string, string>; queries: Map<string, string> }> = {};
  for (const ds of datasets) {
    const dir = path.join(emb, ds.name);
    const corpus = await readCorpus(ds.folder);
    const queries = await readQueries(ds.folder);
    texts[ds.name] = { docs: new Map(corpus.map((d) => [d.id, docText(d)])), queries };
    const cached = async (name: string, ids: string[], t: string[], kind: TextKind) => {
      if (hasMatrix(dir, name)) return;
      o.log(`embedding ${ds.name}/${name} (${ids.length} texts)`);
      const data = await o.embed(t, kind, (done, total) => o.progress({ phase: `embed ${ds.name}/${name}`, done, total }));
      saveMatrix(dir, name, { dim: o.model.dim, ids, data });
    };
    for (const split of fs.readdirSync(path.join(ds.folder, 'qrels')).filter((f) => f.endsWith('.tsv')).map((f) => f.slice(0, -4))) {
      const { qrels } = await loadQrels(path.join(ds.folder, 'qrels', `${split}.tsv`));
      const ids = [...qrels.keys()].filter((q) => queries.has(q));
      await cached(`queries.${split}`, ids, ids.map((q) => queries.get(q)!), 'query');
    }
    const views = await supervisedViews(ds.folder, ds.name, ds.trainSplits, ds.minGrade);
    for (const view of ['qa', 'summary'] as const) {
      const vs = views.filter((v) => v.view === view);
      if (vs.length) await cached(`view.${view}`, vs.map((v) => v.docId), vs.map((v) => v.text), 'document');
    }
    await cached('docs', corpus.map((d) => d.id), corpus.map(docText), 'document');
    // the SAE's extra training points: sentences look like queries and claims, and there are ~5 per document
    const sents = corpus.flatMap((d) => sentences(docText(d)).map((text, i) => ({ id: `${d.id}#${i}`, text })));
    await cached('sentences', sents.map((x) => x.id), sents.map((x) => x.text), 'document');
  }
  // the broad corpus: everyday English and software documentation, one matrix per source
  const broad = o.corpusDir ? readBroadCorpus(o.corpusDir) : undefined;
  for (const src of broad?.sources ?? []) {
    const dir = path.join(emb, 'broad');
    const t = broad!.texts.get(src.name)!;
    // a corpus written again with other caps or packages has other texts: its cached rows would pair vectors with the wrong texts
    if (hasMatrix(dir, src.name)) {
      const ids = loadMatrix(dir, src.name).ids;
      if (ids.length === t.length && ids.every((id, i) => id === t[i].id)) continue;
      o.log(`broad/${src.name}: the corpus changed since its embeddings were cached; embedding it again`);
    }
    o.log(`embedding broad/${src.name} (${t.length} texts)`);
    const data = await o.embed(t.map((x) => x.text), 'document', (done, total) => o.progress({ phase: `embed broad/${src.name}`, done, total }));
    saveMatrix(dir, src.name, { dim: o.model.dim, ids: t.map((x) => x.id), data });
  }
  const M = (ds: string, name: string): Matrix | undefined => (hasMatrix(path.join(emb, ds), name) ? loadMatrix(path.join(emb, ds), name) : undefined);

  // 2. internalizers: raw document embedding → embedding of its view text (or the reused bundle's, as they are)
  const viewWeights = new Map<string, InternalizerWeights>();
  const bundleViews: BundleView[] = [];
  for (const v of reused?.manifest.views ?? []) {
    const file = path.join(o.outDir, v.file);
    copyInto(path.join(reused!.dir, v.file), file);
    viewWeights.set(v.name, loadInternalizer(file).weights);
    bundleViews.push({ ...v, sha256: sha256File(file) });
  }
  for (const view of reused ? [] : ['qa', 'summary']) {
    const ins: Float32Array[] = [];
    const outs: Float32Array[] = [];
    const groups: number[] = [];
    const groupOf = new Map<string, number>();
    const sources: string[] = [];
    for (const ds of datasets) {
      const v = M(ds.name, `view.${view}`);
      if (!v) continue;
      sources.push(ds.name);
      const docs = M(ds.name, 'docs')!;
      const di = new Map(docs.ids.map((id, i) => [id, i]));
      v.ids.forEach((docId, r) => {
        const i = di.get(docId);
        if (i === undefined) return;
        ins.push(docs.data.subarray(i * docs.dim, (i + 1) * docs.dim));
        outs.push(v.data.subarray(r * v.dim, (r + 1) * v.dim));
        // identical target texts stay on one side of the validation split
        const key = `${ds.name}\u0000${Array.from(v.data.subarray(r * v.dim, r * v.dim + 4)).join(',')}`;
        if (!groupOf.has(key)) groupOf.set(key, groupOf.size);
        groups.push(groupOf.get(key)!);
      });
    }
    if (!ins.length) continue;
    const D = o.model.dim;
    const n = ins.length;
    const X = new Float32Array(n * D);
    const Y = new Float32Array(n * D);
    ins.forEach((r, i) => X.set(r, i * D));
    outs.forEach((r, i) => Y.set(r, i * D));
    o.log(`training the ${view} internalizer on ${n} pairs`);
    const r = await trainInternalizer(X, Y, n, D, {
      seed: o.seed,
      groups,
      signal: o.signal,
      provider: o.provider,
      onEpoch: (epoch, tl, vl) => o.progress({ phase: `internalizer ${view}`, done: epoch, total: 100, message: `val ${vl.toExponential(3)}` }),
    });
    const textSource = view === 'qa' ? `queries judged relevant (${sources.join(', ')}; train/dev splits, DL19 grade ≥ 2)` : `document titles (${sources.join(', ')})`;
    const file = saveInternalizer(path.join(o.outDir, 'internalizers'), r.weights, {
      view,
      source: textSource,
      epochs: r.epochs,
      bestEpoch: r.bestEpoch,
      bestValLoss: r.valLoss,
      valCosine: r.valCosine,
      trainCount: r.trainCount,
      valCount: n - r.trainCount,
      seed: o.seed,
    });
    viewWeights.set(view, r.weights);
    bundleViews.push({ name: view, file: path.relative(o.outDir, file), sha256: sha256File(file), textSource, trainPairs: n, valCosine: r.valCosine });
  }
  const views = await InternalizerSession.create(viewWeights, o.provider);

  // 3. the SAE, on raw and internalised document embeddings, document sentences and training queries
  // (documents and queries alone are ~40k points for 3M weights: it overfits; sentences add ~72k)
  const trainingVectors = async (leaveOut?: string): Promise<Float32Array> => {
    const trainParts: Float32Array[] = [];
    for (const ds of datasets) {
      if (ds.name === leaveOut) continue;
      const docs = M(ds.name, 'docs')!;
      trainParts.push(docs.data, await views.apply(docs.data, docs.ids.length), M(ds.name, 'sentences')!.data);
      for (const split of ds.trainSplits) {
        const q = M(ds.name, `queries.${split}`);
        if (q) trainParts.push(q.data);
      }
    }
    for (const src of broad?.sources ?? []) trainParts.push(M('broad', src.name)!.data);
    const all = new Float32Array(trainParts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of trainParts) {
      all.set(p, off);
      off += p.length;
    }
    return all;
  };
  const all = await trainingVectors();
  const total = all.length;
  const saeFile = path.join(o.outDir, 'sae.safetensors');
  let saeRun: SaeTrainRun;
  if (reused) {
    // its figures on the rows this run's training would have held out (the same seeded split)
    o.log(`reusing the SAE of ${reused.dir}; measuring it on the held-out part of ${total / o.model.dim} vectors`);
    const weights = o.sae.load(path.join(reused.dir, reused.manifest.sae.file));
    saeRun = { weights, ...(await o.sae.heldOut(weights, all, o.model.dim, o.seed)), seconds: NaN, stepsPerSecond: NaN };
    copyInto(path.join(reused.dir, reused.manifest.sae.file), saeFile);
  } else {
    o.log(`training the SAE (dictionary ${o.dictSize}, k ${o.k}) on ${total / o.model.dim} vectors`);
    saeRun = await o.sae.train(all, o.model.dim, {
      dictSize: o.dictSize,
      k: o.k,
      epochs: o.saeEpochs,
      seed: o.seed,
      checkpointDir: path.join(o.workDir, 'sae-checkpoints'),
      signal: o.signal,
      onProgress: (step, steps, loss) => o.progress({ phase: 'sae', done: step, total: steps, message: `loss ${loss.toFixed(5)}` }),
    });
    o.sae.save(saeFile, saeRun.weights, { trainVectors: String(total / o.model.dim), seed: String(o.seed) });
  }
  const sae: SaeEncoder = await o.sae.session(saeRun.weights, o.provider);

  // 4. evaluation sets (test queries only here)
  const evalSet = async (ds: Dataset, split: string): Promise<EvalSet> => {
    const { qrels } = await loadQrels(path.join(ds.folder, 'qrels', `${split}.tsv`));
    return { name: `${ds.name}/${split}`, queries: M(ds.name, `queries.${split}`)!, docs: M(ds.name, 'docs')!, qrels };
  };
  const scifact = datasets[0];
  const sciTest = await evalSet(scifact, 'test');
  const sciTrain = await evalSet(scifact, 'train');

  o.progress({ phase: 'evaluate', done: 0, message: 'reconstruction retrieval' });
  const original = retrieval(sciTest.queries, sciTest.docs, sciTest.qrels);
  const reconstructed = retrieval(
    reconstruct(sae, sciTest.queries, await codesOf(sae, sciTest.queries)),
    reconstruct(sae, sciTest.docs, await codesOf(sae, sciTest.docs)),
    sciTest.qrels,
  );

  const internalised: BundleFigures['internalised'] = {};
  for (const ds of datasets.filter((d) => d.evalSplit)) {
    const set = await evalSet(ds, ds.evalSplit!);
    internalised[set.name] = { base: retrieval(set.queries, set.docs, set.qrels), internalised: retrieval(set.queries, await internalisedDocs(views, set.docs), set.qrels) };
  }

  o.progress({ phase: 'evaluate', done: 1, message: 'erasure' });
  const erasure = await erasureStudy(sae, views, sciTest);
  o.progress({ phase: 'evaluate', done: 2, message: 'steering' });
  const steering = await steeringCurve(sae, sciTrain, sciTest, o.keyFeatures, [0, 0.5, 1, 1.5, 2]);

  // 5. labels from training texts (documents and training queries), detection on held-out ones
  o.progress({ phase: 'labels', done: 0 });
  const labelCorpus = (leaveOut?: string) => {
    const labelTexts: string[] = [];
    const labelVecs: Float32Array[] = [];
    const labelSources: string[] = [];
    for (const ds of datasets) {
      if (ds.name === leaveOut) continue;
      const docs = M(ds.name, 'docs')!;
      docs.ids.forEach((id, i) => {
        labelTexts.push(texts[ds.name].docs.get(id)!);
        labelVecs.push(docs.data.subarray(i * docs.dim, (i + 1) * docs.dim));
        labelSources.push(`${ds.name}:doc:${id}`);
      });
      for (const split of ds.trainSplits) {
        const q = M(ds.name, `queries.${split}`);
        q?.ids.forEach((id, i) => {
          labelTexts.push(texts[ds.name].queries.get(id)!);
          labelVecs.push(q.data.subarray(i * q.dim, (i + 1) * q.dim));
          labelSources.push(`${ds.name}:query:${id}`);
        });
      }
    }
    // the whole broad corpus (labels must know the words of everyday text and software docs). A per-source
    // sample by hashUnit(id, seed) kept everything anyway: `train corpus` already keeps the lowest hashes of the same seed
    for (const src of broad?.sources ?? []) {
      const m = M('broad', src.name)!;
      const t = broad!.texts.get(src.name)!;
      t.forEach((x, i) => {
        labelTexts.push(x.text);
        labelVecs.push(m.data.subarray(i * m.dim, (i + 1) * m.dim));
        labelSources.push(`${src.name}:${x.id}`);
      });
    }
    const LX = new Float32Array(labelVecs.length * o.model.dim);
    labelVecs.forEach((v, i) => LX.set(v, i * o.model.dim));
    return { LX, labelTexts, labelSources };
  };
  const { LX, labelTexts, labelSources } = labelCorpus();
  const randomSae = await o.sae.session(o.sae.randomInit(o.model.dim, o.dictSize, o.k, o.seed + 1, all), o.provider);
  const lb = o.labeller;
  if (lb) o.log(`labelling with ${lb.model} at ${lb.endpoint} (answers kept in ${path.join(o.workDir, 'labels-llm.jsonl')})`);
  // label candidates and labels recur across the trained and random SAE and the leave-one-out runs: each is embedded once
  const labelVectors = new Map<string, Float32Array>();
  const embedLabels = async (labels: string[], phase: string): Promise<Float32Array> => {
    const todo = [...new Set(labels.filter((l) => !labelVectors.has(l)))];
    if (todo.length) {
      const v = await o.embed(todo, 'query', (done, total) => o.progress({ phase, done, total }));
      todo.forEach((t, i) => labelVectors.set(t, v.subarray(i * o.model.dim, (i + 1) * o.model.dim)));
    }
    const out = new Float32Array(labels.length * o.model.dim);
    labels.forEach((l, i) => out.set(labelVectors.get(l)!, i * o.model.dim));
    return out;
  };
  const lexicon = wordnetLemmas(o.lexiconRoot ?? '/');
  if (!lexicon.length) o.log('no WordNet lexicon (Debian package wordnet-base): term labels instead of concept labels');
  const labelStudy = await labelFeatures(sae, randomSae, LX, labelTexts, labelSources, {
    seed: o.seed,
    concepts: lexicon.length ? { lexicon: lexicon.map((l) => l.lemma) } : undefined,
    embedLabels: (labels) => embedLabels(labels, 'labels embed'),
    llm: lb && {
      labeller: llmLabeller({
        endpoint: lb.endpoint,
        model: lb.model,
        apiKey: lb.apiKey,
        concurrency: lb.concurrency,
        // a rerun (or a resumed one) asks only what is not answered yet
        cacheFile: path.join(o.workDir, 'labels-llm.jsonl'),
        temperature: 0,
        signal: o.signal,
        onAnswer: (s) => o.progress({ phase: 'labels (LLM)', done: s.requests + s.fromCache }),
      }),
      sample: lb.sample,
    },
  });
  // generic features: active on more than a set share of the labelling corpus
  const genericThreshold = o.genericThreshold ?? GENERIC_THRESHOLD;
  for (const l of labelStudy.labels) if ((l.frequency ?? 0) > genericThreshold) l.generic = true;
  // families: features whose decoder directions are close, under their most frequent member
  const byId = new Map(labelStudy.labels.map((l) => [l.id, l]));
  const frequency = new Float64Array(o.dictSize);
  for (const l of labelStudy.labels) frequency[l.id] = l.frequency ?? 0;
  const fam = featureFamilies(sae, frequency, { threshold: FAMILY_COSINE, skip: (id) => byId.get(id)?.generic === true });
  const familyRows: BundleFigures['families']['examples'] = [];
  for (const [root, members] of fam.members) {
    const label = familyLabel(root, members, (id) => byId.get(id));
    for (const id of members) {
      const l = byId.get(id);
      if (l) l.family = { id: root, label };
    }
    familyRows.push({ root, label, members: members.map((id) => byId.get(id)?.label ?? `#${id}`) });
  }
  familyRows.sort((a, b) => b.members.length - a.members.length || a.root - b.root);
  const families = { cosine: FAMILY_COSINE, count: fam.members.size, features: [...fam.members.values()].reduce((a, m) => a + m.length, 0), largest: familyRows[0]?.members.length ?? 0, examples: familyRows.slice(0, 10) };
  const labelsFile = path.join(o.outDir, 'labels.jsonl');
  fs.writeFileSync(labelsFile, labelStudy.labels.map((l: FeatureLabel) => JSON.stringify(l)).join('\n') + '\n');

  // 6. example pairs, and the checks that can fail, explained with what was just trained
  // labels are judged against each pair as the worker judges them (core/explain LABEL_FIT)
  const fitLabels = (labels: string[]) => embedLabels(labels, 'labels fit');
  const examples = await exampleExplanations(o, sae, views, labelStudy.labels, fitLabels);
  const checkExplainer = new Explainer(sae, views, { get: (id) => byId.get(id), size: byId.size });
  const synonyms = wordnetSynonyms(lexicon);
  const checkSets: { name: string; file: string; inTraining: boolean }[] = [
    ...(broad ? [{ name: 'python-faq (held out)', file: path.join(o.corpusDir!, 'python-faq.jsonl'), inTraining: false }] : []),
    ...(o.checkFiles ?? []).map((f) => ({ name: path.basename(path.dirname(f)) + '/' + path.basename(f), file: f, inTraining: false })),
    ...datasets.map((d) => ({ name: `${d.name}/sample_pairs`, file: path.join(d.folder, 'sample_pairs.jsonl'), inTraining: true })),
  ].filter((c) => fs.existsSync(c.file));
  const checks: SetChecks[] = [];
  for (const c of checkSets) {
    o.progress({ phase: 'checks', done: checks.length, total: checkSets.length, message: c.name });
    checks.push(await runChecks(c.name, c.inTraining, readCheckPairs(c.file), checkExplainer, (t, kind) => o.embed(t, kind, () => {}), { synonyms, seed: o.seed, embedLabels: fitLabels }));
  }
  // 6b. leave-one-corpus-out: an SAE and labels trained without each shared corpus, checked on that corpus's pairs
  const leaveOneOut: LeaveOneOut[] = [];
  for (const ds of o.leaveOneOut ? datasets : []) {
    const pairsFile = path.join(ds.folder, 'sample_pairs.jsonl');
    if (!fs.existsSync(pairsFile)) continue;
    o.log(`leave-one-corpus-out: training without ${ds.name}`);
    const X = await trainingVectors(ds.name);
    const run = await o.sae.train(X, o.model.dim, {
      dictSize: o.dictSize,
      k: o.k,
      epochs: o.saeEpochs,
      seed: o.seed,
      checkpointDir: path.join(o.workDir, `sae-checkpoints-without-${ds.name}`),
      signal: o.signal,
      onProgress: (step, steps, loss) => o.progress({ phase: `sae without ${ds.name}`, done: step, total: steps, message: `loss ${loss.toFixed(5)}` }),
    });
    const saeX = await o.sae.session(run.weights, o.provider);
    const lc = labelCorpus(ds.name);
    const study = await labelFeatures(saeX, undefined, lc.LX, lc.labelTexts, lc.labelSources, {
      seed: o.seed,
      concepts: lexicon.length ? { lexicon: lexicon.map((l) => l.lemma) } : undefined,
      embedLabels: (labels) => embedLabels(labels, `labels without ${ds.name}`),
    });
    for (const l of study.labels) if ((l.frequency ?? 0) > genericThreshold) l.generic = true;
    // kept beside the checkpoints, so a left-out run's labels can be read where its checks fail
    fs.writeFileSync(path.join(o.workDir, `labels-without-${ds.name}.jsonl`), study.labels.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const m = new Map(study.labels.map((l) => [l.id, l]));
    const ex = new Explainer(saeX, views, { get: (id) => m.get(id), size: m.size });
    const sets = [{ name: `${ds.name}/sample_pairs (left out)`, file: pairsFile }, ...(broad ? [{ name: 'python-faq (held out)', file: path.join(o.corpusDir!, 'python-faq.jsonl') }] : [])];
    const rows: SetChecks[] = [];
    for (const c of sets) rows.push(await runChecks(c.name, false, readCheckPairs(c.file), ex, (t, kind) => o.embed(t, kind, () => {}), { synonyms, seed: o.seed, examples: 2, embedLabels: fitLabels }));
    leaveOneOut.push({ leftOut: ds.name, trainVectors: run.trainVectors, fve: run.val.fve, deadFraction: run.val.deadFraction, conceptLabelled: study.conceptLabelled ?? 0, checks: rows });
    await saeX.release?.();
  }
  const freqs = labelStudy.labels.map((l) => l.frequency ?? 0).sort((a, b) => b - a);
  const generic = { threshold: genericThreshold, count: labelStudy.labels.filter((l) => l.generic).length, top: labelStudy.labels.filter((l) => l.generic).sort((a, b) => (b.frequency ?? 0) - (a.frequency ?? 0)).slice(0, 8).map((l) => ({ id: l.id, label: l.label, frequency: l.frequency ?? 0 })), quantiles: [0.001, 0.01, 0.05, 0.5].map((q) => ({ q, frequency: freqs[Math.floor(q * freqs.length)] ?? 0 })) };

  // 7. manifest and report
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    name: o.model.id,
    baseModel: o.model,
    sae: { file: 'sae.safetensors', sha256: sha256File(saeFile), dictSize: o.dictSize, k: o.k },
    views: bundleViews,
    labels: { file: 'labels.jsonl', sha256: sha256File(labelsFile), method: labelStudy.method, count: labelStudy.labels.length, labeller: labelStudy.labeller },
    trainingData: [
      ...datasets.map((d) => ({ dataset: d.name, used: ['corpus', ...d.trainSplits.map((s) => `queries+qrels:${s}`)] })),
      ...(broad?.sources ?? []).map((src) => ({ dataset: src.name, used: [`${src.count} texts (Debian ${src.package})`] })),
    ],
    generic: { threshold: genericThreshold, count: generic.count },
    heldOut: ['scifact queries+qrels:test', 'nfcorpus queries+qrels:test', ...(broad ? ["Python's FAQ (python3-doc faq/)"] : [])],
    seed: o.seed,
    createdAt: new Date().toISOString(),
    command: o.command,
    ...(reused && { trainedBy: trainingRun(reused.manifest) }),
  };
  const figures: BundleFigures = {
    sae: { dictSize: o.dictSize, k: o.k, trainVectors: saeRun.trainVectors, heldOutVectors: saeRun.heldOutVectors, fve: saeRun.val.fve, deadFraction: saeRun.val.deadFraction, l0: saeRun.val.l0, seconds: saeRun.seconds, stepsPerSecond: saeRun.stepsPerSecond },
    reconstructionRetrieval: { original, reconstructed, ratio: reconstructed['ndcg@10'] / original['ndcg@10'] },
    internalised,
    views: bundleViews,
    erasure,
    steering,
    labels: labelStudy,
    examples,
    checks,
    leaveOneOut,
    generic,
    families,
    corpus: broad?.sources ?? [],
    ...(reused && { reused: { dir: reused.dir, ...trainingRun(reused.manifest) } }),
  };
  fs.writeFileSync(path.join(o.outDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  fs.writeFileSync(path.join(o.workDir, 'figures.json'), JSON.stringify({ ...figures, labels: { ...labelStudy, labels: undefined } }, null, 1));
  writeReport(path.join(o.outDir, 'REPORT.md'), manifest, figures);
  await views.release();
  return figures;
}
