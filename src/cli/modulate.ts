/**
 * `xetrieval modulate`: re-ranks each query's candidates with an IMRNN adapter
 * (method.md §2) and prints NDCG / Recall / MRR before (the encoder's cosine)
 * and after (cos(q_mod, d_mod)). Candidates come from a labelled pairs file
 * (each query's lines) or from a BEIR folder (the encoder's top
 * `--candidates` documents by exact search, as the IMRNNs evaluation does).
 * The encoder runs in the worker; the adapter is a few small matrices and
 * runs here, beside the ranking, as `eval`'s dot products do.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadBeir } from '../core/beir';
import { InputError } from '../core/errors';
import { checkInputFile, readJsonl } from '../core/jsonl';
import { topK } from '../core/math';
import { evaluate, metricKey, MetricSpec, Qrels } from '../core/metrics';
import { cosine } from '../core/math';
import { CandidateGroup, modulate, ModulationForm, rerank } from '../core/modulation';
import { explainModulation, FeatureShift, ModulationExplanation, pseudoInverse, SideExplanation, TokenCosine } from '../core/modulationExplain';
import { defaultBundleDir } from '../engine/bundle';
import { loadBundleReader, loadTokenTable } from '../engine/modulation/explainData';
import { entryDir } from '../engine/models/cache';
import { parsePair } from '../core/pairs';
import { hasMatrix, loadMatrix, Matrix, saveMatrix } from '../core/vectorStore';
import { ImrnnAdapter, loadImrnnAdapter } from '../engine/modulation/adapter';
import type { ModelRef, TextKind } from '../protocol/worker';
import { CliContext, UsageError } from './context';
import { embedAll } from './eval';
import { OutputFile } from './output';
import { EngineSession, withSession } from './session';
import { finishOutput } from './stream';

export interface ModulateOptions {
  adapter: string;
  /** cross: the released package's forward (method.md §2); per-side: the first training script's */
  form: ModulationForm;
  /** labelled pairs JSONL (each query's lines are its candidates) */
  input?: string;
  /** BEIR folder: candidates are the encoder's top `candidates` documents */
  data?: string;
  split: string;
  candidates: number;
  model: string;
  source?: string;
  metrics: MetricSpec[];
  /** a folder of embedding matrices (`docs`, `queries.<split>`), read when there and written when not */
  embeddings?: string;
  /** only these query ids (a file, one per line) */
  queryIds?: string;
  /** metrics before/after, mean and per query, as JSON; '-' for stdout */
  output?: string;
  /** explain the modulation of the first this many queries */
  explain?: number;
  /** explanation bundle for the SAE reading of the shifts (default: the one shipped for the model) */
  bundle?: string;
  /** tokens and features listed per shift */
  top?: number;
}

export interface Prepared {
  groups: CandidateGroup[];
  qrels: Qrels;
  /** query and document id → text (for explanations); queries keyed `q:<id>`, documents `d:<id>` */
  texts: Map<string, string>;
  encoderDim: number;
}

export async function runModulate(ctx: CliContext, o: ModulateOptions): Promise<number> {
  if (!!o.input === !!o.data) throw new UsageError('give either --input <pairs.jsonl> or --data <BEIR folder>');
  // the adapter's structure is checked before any encoding
  const adapter = loadImrnnAdapter(o.adapter);
  if (o.input && o.input !== '-') await checkInputFile(o.input);
  if (o.queryIds) await checkInputFile(o.queryIds);
  const inputs = [o.adapter, ...(o.input ? [o.input] : []), ...(o.data ? [path.join(o.data, 'corpus.jsonl'), path.join(o.data, 'queries.jsonl')] : [])];
  const out = o.output !== undefined ? await OutputFile.open(o.output, { flag: '--output', inputs, stdout: ctx.io.stdout }) : undefined;
  let ok = false;
  try {
    const code = await modulateTo(ctx, o, adapter, out);
    ok = true;
    return code;
  } finally {
    if (out) await finishOutput(ctx, out, ok);
  }
}

async function modulateTo(ctx: CliContext, o: ModulateOptions, adapter: ImrnnAdapter, out: OutputFile | undefined): Promise<number> {
  const skipped = { lines: 0 };
  const only = o.queryIds ? await readIds(o.queryIds) : undefined;
  const prep = o.input ? await fromPairs(ctx, o, skipped, only) : await fromBeir(ctx, o, only);
  if (prep.encoderDim !== adapter.inputDim) {
    throw new InputError(
      { file: o.adapter, field: 'projector.weight' },
      `tensor "projector.weight" is [${adapter.dim}, ${adapter.inputDim}]: the adapter takes ${adapter.inputDim}-dimensional embeddings but ${o.model} gives ${prep.encoderDim}`,
      'E_ADAPTER_DIM',
    );
  }
  const { groups, qrels } = prep;
  const t0 = performance.now();
  const { before, after } = rerank(adapter, groups, o.form);
  const ms = performance.now() - t0;
  const b = evaluate(qrels, before, o.metrics);
  const a = evaluate(qrels, after, o.metrics);
  const cands = groups.reduce((s, g) => s + g.docIds.length, 0);
  const w = (s: string) => (o.output === '-' ? ctx.io.stderr : ctx.io.stdout).write(s);
  w(`adapter     ${o.adapter}${adapter.metadata.dataset ? ` (trained on ${adapter.metadata.dataset})` : ''}; form: ${o.form}\n`);
  w(`queries     ${b.queries} with a relevant candidate, of ${groups.length}; ${cands} candidates (${(cands / Math.max(1, groups.length)).toFixed(1)} per query); modulation ${(ms / Math.max(1, groups.length)).toFixed(2)} ms per query\n`);
  w(`${'metric'.padEnd(12)}${'before'.padStart(8)}${'after'.padStart(9)}${'Δ'.padStart(9)}\n`);
  for (const m of o.metrics) {
    const k = metricKey(m);
    w(`${k.padEnd(12)}${b.mean[k].toFixed(4).padStart(8)}${a.mean[k].toFixed(4).padStart(9)}${signed(a.mean[k] - b.mean[k]).padStart(9)}\n`);
  }
  const k0 = metricKey(o.metrics[0]);
  let up = 0;
  let down = 0;
  for (const [qid, v] of a.perQuery) {
    const d = v[k0] - (b.perQuery.get(qid)?.[k0] ?? 0);
    if (d > 1e-9) up++;
    else if (d < -1e-9) down++;
  }
  w(`${k0}: ${up} queries up, ${down} down, ${a.queries - up - down} unchanged\n`);
  if (o.metrics.some((m) => m.name === 'recall' && m.k >= maxCandidates(groups))) {
    w(`note: re-ranking keeps the candidate set, so recall at or beyond the ${maxCandidates(groups)} candidates cannot move\n`);
  }
  const explanations = o.explain ? explainGroups(ctx, o, adapter, groups.slice(0, o.explain), prep.texts, qrels, w) : undefined;
  if (out) {
    await out.writeText(
      JSON.stringify(
        {
          adapter: o.adapter,
          adapterMetadata: adapter.metadata,
          form: o.form,
          ...(o.input ? { input: o.input } : { dataset: o.data, split: o.split, candidates: o.candidates }),
          model: o.model,
          queries: b.queries,
          before: b.mean,
          after: a.mean,
          per_query: Object.fromEntries([...b.perQuery].map(([qid, v]) => [qid, { before: v, after: a.perQuery.get(qid) }])),
          ...(explanations ? { explanations } : {}),
        },
        null,
        2,
      ) + '\n',
    );
  }
  return skipped.lines > 0 ? 1 : 0;
}

/** Token and SAE-feature readings of the shifts Δq and Δd for each group (modulationExplain.ts). */
function explainGroups(ctx: CliContext, o: ModulateOptions, adapter: ImrnnAdapter, groups: CandidateGroup[], texts: Map<string, string>, qrels: Qrels, w: (s: string) => void): (ModulationExplanation & { query_text: string; doc_text: string })[] {
  const table = loadTokenTable(entryDir(ctx.globals.cacheDir, o.model));
  if (table.dim !== adapter.inputDim) throw new InputError({ file: o.adapter, field: 'projector.weight' }, `the adapter takes ${adapter.inputDim}-dimensional embeddings but the token table of ${o.model} has ${table.dim}`, 'E_ADAPTER_DIM');
  const bundleDir = o.bundle ?? defaultBundleDir(o.model);
  const bundle = bundleDir ? loadBundleReader(bundleDir) : undefined;
  if (!bundle) ctx.info(`no explanation bundle for ${o.model}: the shifts are read through tokens only`);
  const pinv = pseudoInverse(adapter.projector.weight, adapter.dim, adapter.inputDim);
  const top = o.top ?? 8;
  const out: (ModulationExplanation & { query_text: string; doc_text: string })[] = [];
  const f3 = (x: number) => x.toFixed(3);
  const tok = (ts: TokenCosine[]) => ts.map((t) => `${t.token} ${t.cosine >= 0 ? '+' : '−'}${f3(Math.abs(t.cosine))}`).join(', ');
  const feats = (fs: FeatureShift[]) => fs.map((x) => `${x.feature} "${bundle?.label(x.feature) ?? '?'}" ${x.delta >= 0 ? '+' : '−'}${f3(Math.abs(x.delta))} (${f3(x.before)}→${f3(x.after)})`).join('; ') || '—';
  const side = (name: string, e: SideExplanation) => {
    w(`  ${name}: ‖Δ‖ ${f3(e.shiftNorm)} (unit vectors, projected space); cos(z, z') ${f3(e.liftedCosine)}\n`);
    w(`    tokens by |cos| with P⁺Δ: ${tok(e.tokens)}\n`);
    if (bundle) {
      w(`    SAE features amplified: ${feats(e.amplified)}\n`);
      w(`    SAE features suppressed: ${feats(e.suppressed)}\n`);
    }
  };
  w(`\nexplained: the first ${groups.length} quer${groups.length === 1 ? 'y' : 'ies'}; Δ = unit(modulated) − projected, lifted by P⁺ = Pᵀ(PPᵀ)⁻¹; SAE: ${bundleDir ?? 'none'}\n`);
  for (const g of groups) {
    const m = modulate(adapter, g.zq, g.zd, o.form);
    const judged = qrels.get(g.queryId) ?? new Map<string, number>();
    const before = g.docIds.map((_, j) => cosine(g.zq, g.zd.subarray(j * adapter.inputDim, (j + 1) * adapter.inputDim)));
    const order = [...g.docIds.keys()].sort((x, y) => before[y] - before[x]);
    const focus = order.find((j) => (judged.get(g.docIds[j]) ?? 0) > 0) ?? order[0];
    const e = explainModulation(adapter, pinv, g.queryId, g.zq, g.zd, g.docIds, m, focus, table, bundle?.sae, top);
    const qt = texts.get(`q:${g.queryId}`) ?? '';
    const dt = texts.get(`d:${e.doc.docId}`) ?? '';
    w(`\nquery ${g.queryId}: ${JSON.stringify(clip(qt, 160))}\n`);
    w(`  document ${e.doc.docId}${(judged.get(e.doc.docId) ?? 0) > 0 ? ' (relevant)' : ''}: ${JSON.stringify(clip(dt, 120))}\n`);
    w(`  rank ${e.doc.rankBefore} → ${e.doc.rankAfter} of ${g.docIds.length}; similarity ${f3(e.doc.scoreBefore)} → ${f3(e.doc.scoreAfter)}\n`);
    const rel = e.candidates.filter((c) => (judged.get(c.docId) ?? 0) > 0 && c.docId !== e.doc.docId);
    if (rel.length) w(`  other relevant: ${rel.map((c) => `${c.docId} ${c.rankBefore}→${c.rankAfter}`).join(', ')}\n`);
    side('Δq (query)', e.query);
    side('Δd (document)', e.doc);
    out.push({ ...e, candidates: e.candidates, query_text: qt, doc_text: dt });
  }
  return out;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
const maxCandidates = (groups: CandidateGroup[]) => Math.max(0, ...groups.map((g) => g.docIds.length));

async function readIds(file: string): Promise<Set<string>> {
  const ids = new Set(
    (await fs.promises.readFile(file, 'utf8'))
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
  if (!ids.size) throw new InputError({ file }, 'no query ids (one per line)', 'E_EMPTY');
  return ids;
}


/** Candidates from a labelled pairs file: every line of a query is one of its candidates. */
async function fromPairs(ctx: CliContext, o: ModulateOptions, skipped: { lines: number }, only?: Set<string>): Promise<Prepared> {
  const file = o.input!;
  const qrels: Qrels = new Map();
  const queryText = new Map<string, string>();
  const cands = new Map<string, { docId: string; doc: string }[]>();
  let bad = 0;
  for await (const rec of readJsonl(file, { stdin: ctx.io.stdin })) {
    try {
      if (rec.error) throw rec.error;
      const p = parsePair(rec.value, { file, line: rec.line });
      if (p.label === undefined) throw new InputError({ file, line: rec.line, field: 'label' }, 'missing: metrics before and after need labelled pairs');
      if (only && !only.has(p.query_id)) continue;
      const prev = queryText.get(p.query_id);
      if (prev !== undefined && prev !== p.query) throw new InputError({ file, line: rec.line, field: 'query' }, `query_id "${p.query_id}" has another query text on an earlier line`);
      const list = cands.get(p.query_id) ?? [];
      if (list.some((c) => c.docId === p.doc_id)) throw new InputError({ file, line: rec.line, field: 'doc_id' }, `"${p.doc_id}" is already a candidate of query "${p.query_id}"`);
      queryText.set(p.query_id, p.query);
      list.push({ docId: p.doc_id, doc: p.doc });
      cands.set(p.query_id, list);
      const judged = qrels.get(p.query_id) ?? new Map<string, number>();
      judged.set(p.doc_id, p.label);
      qrels.set(p.query_id, judged);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      bad++;
      ctx.error(`${e.message} (line skipped)`);
    }
  }
  if (bad) ctx.error(`${file}: ${bad} line(s) skipped`);
  skipped.lines += bad;
  if (!cands.size) throw new InputError({ file }, only ? 'no usable labelled pairs of the queries in --query-ids' : 'no usable labelled pairs', 'E_EMPTY');
  const qids = [...cands.keys()];
  const docs = qids.flatMap((q) => cands.get(q)!);
  const ref: ModelRef = { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision };
  const { zq, zd } = await withSession(ctx, async (s) => ({
    zq: await embedAll(ctx, s, ref, qids.map((q) => ({ id: q, text: queryText.get(q)! })), 'query', 'queries'),
    zd: await embedAll(ctx, s, ref, docs.map((d) => ({ id: d.docId, text: d.doc })), 'document', 'documents'),
  }));
  const D = zq.dim;
  let at = 0;
  const texts = new Map<string, string>();
  const groups = qids.map((q, qi) => {
    const list = cands.get(q)!;
    texts.set(`q:${q}`, queryText.get(q)!);
    for (const c of list) texts.set(`d:${c.docId}`, c.doc);
    const g: CandidateGroup = { queryId: q, zq: zq.matrix.subarray(qi * D, (qi + 1) * D), docIds: list.map((c) => c.docId), zd: zd.matrix.subarray(at * D, (at + list.length) * D) };
    at += list.length;
    return g;
  });
  return { groups, qrels, texts, encoderDim: D };
}

/** Candidates from a BEIR folder: the encoder's top `candidates` documents per judged query. */
async function fromBeir(ctx: CliContext, o: ModulateOptions, only?: Set<string>): Promise<Prepared> {
  const folder = o.data!;
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) {
    throw new InputError({ file: folder }, 'not a BEIR dataset folder (expected corpus.jsonl, queries.jsonl, qrels/)', 'E_NOT_FOUND');
  }
  const data = await loadBeir(folder, o.split);
  const queries = only ? data.queries.filter((q) => only.has(q.id)) : data.queries;
  if (!queries.length) throw new InputError({ file: o.queryIds! }, `none of these query ids is judged in ${folder} (${o.split})`, 'E_EMPTY');
  const qrels: Qrels = new Map(queries.map((q) => [q.id, data.qrels.get(q.id)!]));
  ctx.info(`${folder} (${o.split}): ${data.corpus.length} documents, ${queries.length} queries; candidates: the encoder's top ${o.candidates}`);
  const [docs, zq] = await embedNamed(ctx, o, [
    { name: 'docs', items: data.corpus, kind: 'document' },
    { name: `queries.${o.split}`, items: queries, kind: 'query' },
  ]);
  return candidatesOf(o, data.corpus, queries, qrels, docs, zq);
}

export interface NamedTexts {
  /** matrix name in the --embeddings folder */
  name: string;
  items: { id: string; text: string }[];
  kind: TextKind;
}

/**
 * Embeddings of several text lists: read from the `--embeddings` folder when a
 * matrix there has a row for every id, else encoded by the worker (one
 * session for all) and written there.
 */
export async function embedNamed(ctx: CliContext, o: { model: string; source?: string; embeddings?: string }, lists: NamedTexts[]): Promise<Matrix[]> {
  const ref: ModelRef = { model: o.model, source: o.source, cacheDir: ctx.globals.cacheDir, precision: ctx.globals.precision };
  const dir = o.embeddings;
  // a matrix on disk is used when it has a row for every text asked for
  const fromDisk = (name: string, items: { id: string }[]): Matrix | undefined => {
    if (!dir || !hasMatrix(dir, name)) return undefined;
    const m = loadMatrix(dir, name);
    const at = new Map(m.ids.map((id, i) => [id, i]));
    const missing = items.find((it) => !at.has(it.id));
    if (missing) {
      ctx.info(`${path.join(dir, `${name}.json`)} has no row for "${missing.id}": encoding again`);
      return undefined;
    }
    ctx.info(`${name}: ${items.length} embeddings read from ${path.join(dir, `${name}.f32`)}`);
    const rows = new Float32Array(items.length * m.dim);
    items.forEach((it, i) => rows.set(m.data.subarray(at.get(it.id)! * m.dim, (at.get(it.id)! + 1) * m.dim), i * m.dim));
    return { dim: m.dim, ids: items.map((it) => it.id), data: rows };
  };
  const out: (Matrix | undefined)[] = lists.map((l) => fromDisk(l.name, l.items));
  if (out.some((m) => !m)) {
    await withSession(ctx, async (s) => {
      for (let i = 0; i < lists.length; i++) {
        if (out[i]) continue;
        const l = lists[i];
        const e = await embedAll(ctx, s, ref, l.items, l.kind, l.name);
        const m = { dim: e.dim, ids: l.items.map((it) => it.id), data: e.matrix };
        if (dir) saveMatrix(dir, l.name, m, { model: o.model, precision: ctx.globals.precision });
        out[i] = m;
      }
    });
  }
  return out as Matrix[];
}

function candidatesOf(o: ModulateOptions, corpus: { id: string; text: string }[], queries: { id: string; text: string }[], qrels: Qrels, docs: Matrix, zq: Matrix): Prepared {
  const D = docs.dim;
  const texts = new Map<string, string>();
  const scores = new Float32Array(docs.ids.length);
  const groups = queries.map((q, qi) => {
    const v = zq.data.subarray(qi * D, (qi + 1) * D);
    for (let j = 0; j < docs.ids.length; j++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += v[i] * docs.data[j * D + i];
      scores[j] = s;
    }
    const top = topK(scores, o.candidates);
    const zd = new Float32Array(top.length * D);
    top.forEach((j, r) => zd.set(docs.data.subarray(j * D, (j + 1) * D), r * D));
    texts.set(`q:${q.id}`, q.text);
    for (const j of top) texts.set(`d:${docs.ids[j]}`, corpus[j].text);
    return { queryId: q.id, zq: v, docIds: top.map((j) => docs.ids[j]), zd };
  });
  return { groups, qrels, texts, encoderDim: D };
}

