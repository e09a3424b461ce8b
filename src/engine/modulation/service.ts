/**
 * The worker's `modulate` method: labelled pairs re-ranked by an IMRNN
 * adapter (core/modulation.ts), NDCG/MRR/Recall before and after, and on
 * request one case's shifts read as tokens and SAE features
 * (core/modulationExplain.ts). The encoder's vectors come from the caller
 * (the engine's embedding cache); adapters are kept per path and content
 * hash (a file saved again under the same name is loaded again), the token
 * table per model folder and the SAE reader per bundle.
 */
import { InputError } from '../../core/errors';
import { cosine } from '../../core/math';
import { evaluate, Qrels, RANK_METRICS, Run } from '../../core/metrics';
import { modulate, ModulationForm, rerank, CandidateGroup } from '../../core/modulation';
import { explainModulation, FeatureShift, pseudoInverse, SideExplanation } from '../../core/modulationExplain';
import type { ModulateParams, ModulateResult, ModulationFeatureShift, ModulationSideShift, TextKind } from '../../protocol/worker';
import { sha256File } from '../bundle';
import { ImrnnAdapter, loadImrnnAdapter } from './adapter';
import { BundleReader, loadBundleReader, loadTokenTable } from './explainData';
import type { TokenTable } from '../../core/modulationExplain';

export interface ModulationInputs {
  /** the encoder's dimension */
  dim: number;
  /** the cached model's folder (vocab.txt, model.safetensors for the token table) */
  modelDir: string;
  /** the explanation bundle, when the model has one */
  bundleDir: string | undefined;
  embed(texts: string[], kind: TextKind): Promise<Float32Array>;
}

interface LoadedAdapter {
  sha256: string;
  adapter: ImrnnAdapter;
  /** P⁺, made on the first explanation */
  pinv?: Float32Array;
}

/** Adapters kept at once (an adapter is ~1 MB). */
const MAX_ADAPTERS = 8;

export class ModulationService {
  private readonly adapters = new Map<string, LoadedAdapter>();
  private readonly tokenTables = new Map<string, TokenTable>();
  private readonly bundles = new Map<string, BundleReader>();

  /** The adapter at `file`, loaded once per content hash; refusals name the file and the tensor. */
  adapter(file: string, encoderDim: number): { loaded: LoadedAdapter; fromCache: boolean } {
    const sha256 = sha256File(file);
    const key = `${file}\u0000${sha256}`;
    const hit = this.adapters.get(key);
    if (hit) {
      if (hit.adapter.inputDim !== encoderDim) loadImrnnAdapter(file, encoderDim); // throws the same refusal as a fresh load
      return { loaded: hit, fromCache: true };
    }
    const loaded = { sha256, adapter: loadImrnnAdapter(file, encoderDim) };
    // the same path saved again replaces its old entry
    for (const k of [...this.adapters.keys()]) if (k.startsWith(`${file}\u0000`)) this.adapters.delete(k);
    this.adapters.set(key, loaded);
    while (this.adapters.size > MAX_ADAPTERS) this.adapters.delete(this.adapters.keys().next().value as string);
    return { loaded, fromCache: false };
  }

  async modulate(p: ModulateParams, io: ModulationInputs): Promise<ModulateResult> {
    const t0 = performance.now();
    const form: ModulationForm = p.form ?? 'cross';
    // the adapter is checked before any encoding
    const { loaded, fromCache } = this.adapter(p.adapter, io.dim);
    const w = loaded.adapter;
    if (!p.pairs.length) throw new InputError({ file: p.adapter }, 'no pairs to re-rank', 'E_EMPTY');

    // each query's candidates, in the order given
    const groups = new Map<string, { query: string; idx: number[] }>();
    p.pairs.forEach((x, i) => {
      const qid = x.query_id ?? x.query;
      let g = groups.get(qid);
      if (!g) groups.set(qid, (g = { query: x.query, idx: [] }));
      g.idx.push(i);
    });
    const qids = [...groups.keys()];
    const D = io.dim;
    const zq = await io.embed(
      qids.map((q) => groups.get(q)!.query),
      'query',
    );
    const zd = await io.embed(
      p.pairs.map((x) => x.doc),
      'document',
    );
    const docId = (i: number) => p.pairs[i].doc_id ?? String(i);
    const cand: CandidateGroup[] = qids.map((q, qi) => {
      const g = groups.get(q)!;
      const rows = new Float32Array(g.idx.length * D);
      g.idx.forEach((i, j) => rows.set(zd.subarray(i * D, (i + 1) * D), j * D));
      return { queryId: q, zq: zq.subarray(qi * D, (qi + 1) * D), docIds: g.idx.map(docId), zd: rows };
    });
    const r = rerank(w, cand, form);
    const before = new Array<number>(p.pairs.length);
    const after = new Array<number>(p.pairs.length);
    cand.forEach((g, gi) => {
      const idx = groups.get(qids[gi])!.idx;
      const b = r.before.get(g.queryId)!;
      const a = r.after.get(g.queryId)!;
      // doc ids are unique within a query in a loaded eval file; by position, in case they are not
      idx.forEach((i, j) => {
        before[i] = b.get(g.docIds[j]) ?? cosine(g.zq, g.zd.subarray(j * D, (j + 1) * D));
        after[i] = a.get(g.docIds[j]) ?? NaN;
      });
    });
    const qrels: Qrels = new Map();
    p.pairs.forEach((x, i) => {
      if (x.label === undefined) return;
      const q = x.query_id ?? x.query;
      let judged = qrels.get(q);
      if (!judged) qrels.set(q, (judged = new Map()));
      judged.set(docId(i), x.label);
    });
    const run = (s: number[]): Run => {
      const m: Run = new Map();
      p.pairs.forEach((x, i) => {
        const q = x.query_id ?? x.query;
        let scores = m.get(q);
        if (!scores) m.set(q, (scores = new Map()));
        scores.set(docId(i), s[i]);
      });
      return m;
    };
    const eb = evaluate(qrels, run(before), RANK_METRICS);
    const ea = evaluate(qrels, run(after), RANK_METRICS);

    let explanation: ModulateResult['explanation'];
    if (p.explain) {
      const qid = p.explain.query_id;
      const gi = qids.indexOf(qid);
      const focus = gi < 0 ? -1 : cand[gi].docIds.indexOf(p.explain.doc_id);
      if (focus < 0) throw new InputError({ file: p.adapter, field: 'explain' }, `the case (${qid}, ${p.explain.doc_id}) is not among the pairs given`, 'E_NOT_FOUND');
      const table = this.tokenTable(io.modelDir);
      const bundle = io.bundleDir ? this.bundle(io.bundleDir) : undefined;
      loaded.pinv ??= pseudoInverse(w.projector.weight, w.dim, w.inputDim);
      const g = cand[gi];
      const m = modulate(w, g.zq, g.zd, form);
      const top = p.top ?? 8;
      const e = explainModulation(w, loaded.pinv, qid, g.zq, g.zd, g.docIds, m, focus, table, bundle?.sae, top);
      const side = (s: SideExplanation): ModulationSideShift => {
        const feat = (f: FeatureShift): ModulationFeatureShift => ({ id: f.feature, label: bundle?.label(f.feature) ?? '', before: f.before, after: f.after, delta: f.delta });
        return { shiftNorm: s.shiftNorm, liftedCosine: s.liftedCosine, tokens: s.tokens.map((t) => ({ token: t.token, cosine: t.cosine })), amplified: s.amplified.map(feat), suppressed: s.suppressed.map(feat) };
      };
      explanation = {
        query_id: qid,
        doc_id: p.explain.doc_id,
        rankBefore: e.doc.rankBefore,
        rankAfter: e.doc.rankAfter,
        scoreBefore: e.doc.scoreBefore,
        scoreAfter: e.doc.scoreAfter,
        candidates: g.docIds.length,
        query: side(e.query),
        doc: side(e.doc),
        sae: bundle !== undefined,
      };
    }
    return {
      adapter: { file: p.adapter, sha256: loaded.sha256, inputDim: w.inputDim, dim: w.dim, metadata: w.metadata, fromCache },
      form,
      before,
      after,
      metrics: { before: eb.queries ? eb.mean : {}, after: ea.queries ? ea.mean : {}, queries: eb.queries },
      ...(explanation ? { explanation } : {}),
      elapsedMs: performance.now() - t0,
    };
  }

  private tokenTable(modelDir: string): TokenTable {
    let t = this.tokenTables.get(modelDir);
    if (!t) this.tokenTables.set(modelDir, (t = loadTokenTable(modelDir)));
    return t;
  }

  private bundle(dir: string): BundleReader {
    let b = this.bundles.get(dir);
    if (!b) this.bundles.set(dir, (b = loadBundleReader(dir)));
    return b;
  }
}
