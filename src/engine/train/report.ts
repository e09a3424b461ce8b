/** REPORT.md of a bundle: every figure the bundle is judged by, and how to regenerate it. */
import * as fs from 'fs';
import { BundleManifest } from '../bundle';
import type { BundleFigures } from './bundleTrainer';
import type { Metrics } from './evaluate';
import type { LabelSample } from './labelling';
import type { SetChecks } from './checks';
import { spellingPieceOf } from '../../core/explain/spelling';
import { LABEL_FIT, LABEL_FIT_WORDS, NAMED_DETECTION } from '../../core/explain/attribution';

/** A label as the report quotes it: a word-piece label carries its own quotes. */
const quoted = (label: string): string => (spellingPieceOf(label) !== undefined ? label : `"${label}"`);

const f = (x: number, d = 4): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
/** text for a Markdown table cell */
const cellText = (s: string): string => s.replace(/\|/g, '\\|');
const m3 = (m: Metrics): string => `${f(m['ndcg@10'])} | ${f(m['mrr@10'])} | ${f(m['recall@100'])}`;

export function renderReport(manifest: BundleManifest, fig: BundleFigures): string {
  const s = fig.sae;
  const rr = fig.reconstructionRetrieval;
  const e = fig.erasure;
  const st = fig.steering;
  const l = fig.labels;
  const lines: string[] = [];
  lines.push(`# Explanation bundle: ${manifest.name}`, '');
  lines.push(`Base model \`${manifest.baseModel.id}\` (model.safetensors sha256 \`${manifest.baseModel.weightsSha256}\`), ${manifest.baseModel.dim}-d. Seed ${manifest.seed}. Created ${manifest.createdAt}.`, '');
  if (fig.reused) {
    // the SAE and internalizers come from an earlier run: say which, and how each part is made again
    lines.push(`The SAE and the internalizers are those of the bundle created ${fig.reused.createdAt}, trained by:`, '', '```sh', fig.reused.command, '```', '');
    lines.push('Everything else below (labels, families, checks, leave-one-corpus-out runs, this report) was made again on them by:', '', '```sh', manifest.command, '```', '');
  } else lines.push('Regenerate everything below (the bundle and this report):', '', '```sh', manifest.command, '```', '');
  lines.push('Held out of all training, feature selection and steering: ' + manifest.heldOut.join('; ') + '.', '');
  lines.push('Training data: ' + manifest.trainingData.map((t) => `${t.dataset} (${t.used.join(', ')})`).join('; ') + '.', '');

  if (fig.corpus?.length) {
    const total = fig.corpus.reduce((a, c) => a + c.count, 0);
    lines.push('## Broad corpus', '');
    lines.push(`Everyday English and software documentation beside the shared corpora, read from Debian packages by \`xetrieval train corpus\` (paragraph windows of 24–80 words for documentation, one text per sense for dictionaries; exact duplicates dropped; Python's FAQ held out as the out-of-domain check set). ${total} texts:`, '');
    lines.push('| source | Debian package | kind | texts | share of broad corpus | licence |', '|---|---|---|---|---|---|');
    for (const c of fig.corpus) lines.push(`| ${c.name} | ${c.package} | ${c.kind} | ${c.count}${c.count < c.available ? ` (of ${c.available})` : ''} | ${pct(c.count / total)} | ${cellText(c.licence)} |`);
    lines.push('');
  }

  lines.push('## Sparse autoencoder', '');
  lines.push(`TopK SAE, dictionary ${s.dictSize}, k = ${s.k}, trained on ${s.trainVectors} vectors (raw and internalised document embeddings, the documents' sentences, training queries${fig.corpus?.length ? ' and the broad corpus' : ''}), ${s.heldOutVectors} held out.`, '');
  lines.push('| figure | value | target |', '|---|---|---|');
  lines.push(`| fraction of variance explained (held-out) | ${f(s.fve)} | ≥ 0.85 |`);
  lines.push(`| dead features (never active on held-out) | ${pct(s.deadFraction)} | < 1% |`);
  lines.push(`| L0 (mean active features) | ${f(s.l0, 2)} | = k = ${s.k} |`);
  lines.push(`| SciFact test NDCG@10, reconstructed q and d / original | ${f(rr.reconstructed['ndcg@10'])} / ${f(rr.original['ndcg@10'])} = ${(100 * rr.ratio).toFixed(2)}% | ≥ 95% |`);
  lines.push(Number.isFinite(s.seconds) ? `| training time | ${f(s.seconds, 1)} s (${f(s.stepsPerSecond, 1)} steps/s) | |` : '| training time | not in this run: the SAE was reused (see the top) | |', '');

  lines.push('## Reasoning internalizers', '');
  lines.push('| view | training pairs | validation cosine | view texts |', '|---|---|---|---|');
  for (const v of fig.views) lines.push(`| ${v.name} | ${v.trainPairs} | ${f(v.valCosine, 3)} | ${v.textSource} |`);
  lines.push('', 'No `purpose` view: without an LLM there is no supervision for it (`xetrieval views generate --endpoint …` writes view texts with the paper\'s prompts when one is available).', '');
  lines.push('Internalised score s\'(q,d) = ⟨z_q,z_d⟩ + Σ_t ⟨z_q,R_t(z_d)⟩ against the base score, test queries, exact search over the whole corpus:', '');
  lines.push('| set | base NDCG@10 \\| MRR@10 \\| R@100 | internalised NDCG@10 \\| MRR@10 \\| R@100 |', '|---|---|---|');
  for (const [name, r] of Object.entries(fig.internalised)) lines.push(`| ${name} | ${m3(r.base)} | ${m3(r.internalised)} |`);
  lines.push('');

  lines.push('## Erasure (SciFact test, judged relevant pairs)', '');
  lines.push(`Erasing O(q,d) from the document embedding (ridge projection, λ = 1e-6) versus erasing a same-size control set of the document's active non-overlap features.`, '');
  lines.push('| figure | value |', '|---|---|');
  lines.push(`| pairs | ${e.pairs} (${e.emptyOverlap} with empty O(q,d)) |`);
  lines.push(`| erasing O(q,d) lowers the cosine more than the control | ${e.overlapBeatsControl} / ${e.pairs} = ${pct(e.fraction)} (target ≥ 80%) |`);
  lines.push(`| mean cosine drop, O(q,d) / control | ${f(e.meanOverlapDrop)} / ${f(e.meanControlDrop)} |`);
  lines.push(`| mean set size, O(q,d) / control | ${f(e.meanOverlapSize, 1)} / ${f(e.meanControlSize, 1)} |`);
  lines.push(`| mean cosine keeping only O(q,d) / only control | ${f(e.meanKeepOverlap)} / ${f(e.meanKeepControl)} |`, '');

  lines.push('## Steering (key features by RUS on SciFact train pairs, evaluated on SciFact test)', '');
  lines.push(`RUS over relevant train pairs (D+) and each train query's top-5 retrieved non-relevant documents (D−), class-balanced (Σ_{D+} I_j/|D+| − Σ_{D−} I_j/|D−|, since D− is five times larger). Key set: the top ${st.keys.length} features by RUS. The selected activations are scaled by α on both query and document (error-preserving: z + (α−1)Σ a_j W_j, renormalised).`, '');
  if (st.selection) {
    const sel = st.selection;
    lines.push(`The key-set size m was chosen on the training queries alone: RUS on ${sel.fitQueries} of them, NDCG@10 at α = ${sel.alpha} on the other ${sel.valQueries} (validation NDCG@10 without steering ${f(sel.valBase)}); the best m is used, with RUS recomputed on all training queries.`, '');
    lines.push('| m | validation NDCG@10 at α = ' + sel.alpha + ' |', '|---|---|');
    for (const g of sel.grid) lines.push(`| ${g.m}${g.m === sel.m ? ' (chosen)' : ''} | ${f(g.ndcg)} |`);
    lines.push('');
  }
  lines.push(`Two same-size non-key controls: **random** — ${st.randomControl.length} features drawn uniformly from the rest of the dictionary (mostly rarely active, as an arbitrary feature set is); **matched** — ${st.control.length} non-key features matched to the key set on activity (${st.controlMatched} fully matched), the stricter test, since scaling any often-active set moves many scores.`, '');
  lines.push('| α | key NDCG@10 | key MRR@10 | key R@100 | random non-key NDCG@10 | matched non-key NDCG@10 |', '|---|---|---|---|---|---|');
  st.alphas.forEach((a, i) => lines.push(`| ${a} | ${m3(st.key[i])} | ${f(st.randomNonKey[i]['ndcg@10'])} | ${f(st.nonKey[i]['ndcg@10'])} |`));
  lines.push('');

  lines.push('## Feature labels', '');
  lines.push(`Method: ${l.method}.`, '');
  if (l.spellingLabelled) {
    const pieces = l.labels.filter((x) => x.source === 'spelling');
    const ends = pieces.filter((x) => spellingPieceOf(x.label)?.at === 'end');
    const ex = [...pieces.filter((x) => !ends.includes(x)).slice(0, 6), ...ends.slice(0, 6)];
    // `word piece "mo-"` → `12 "mo-"`
    const shown = (x: { id: number; label: string }) => `${x.id} ${x.label.replace(/^word piece /, '')}`;
    lines.push(
      `Word pieces: ${l.spellingLabelled} features fire on a word piece of a text's first word (dictionary texts begin with their headword), ${pieces.length - ends.length} on its first piece and ${ends.length} on its last: most of their 20 strongest texts begin (or end) with the same piece, at least 10 times as often as texts do at large, and no word is in half of them. They are named by the piece (${ex.map(shown).join(', ')}), as \`word piece "mo-"\` or \`word piece "-x"\`, not by a concept, and such a label is grounded when a word of the pair starts (or ends) with the piece.`,
      '',
    );
  }
  lines.push('| SAE | live features | features scored | mean detection, encoder judge | mean detection, term-count judge |', '|---|---|---|---|---|');
  lines.push(`| trained | ${l.liveFeatures} | ${l.scored} | ${f(l.meanDetection, 3)} | ${f(l.meanDetectionTerms, 3)} |`);
  lines.push(`| random (untrained, same initialisation) | | ${l.randomScored} | ${f(l.meanDetectionRandom, 3)} | ${f(l.meanDetectionTermsRandom, 3)} |`, '');
  lines.push('Where the score is made: the share of held-out activating texts each judge calls activating, by activation decile, and the share of non-activating texts it rejects (pooled over features).', '');
  lines.push('| SAE, judge | hit rate by activation decile (strongest first) | non-activating rejected |', '|---|---|---|');
  for (const which of ['trained', 'random'] as const)
    for (const judge of ['encoder', 'terms'] as const) {
      const b = l.byDecile[which][judge];
      lines.push(`| ${which}, ${judge === 'encoder' ? 'encoder' : 'term count'} | ${b.tpr.map((v) => f(v, 2)).join(' ')} | ${f(b.tnr, 2)} |`);
    }
  lines.push('');
  const sampleRows = Math.max(l.sample.trained.length, l.sample.random.length);
  if (sampleRows) {
    lines.push(`The labels of ${sampleRows} seeded features of each SAE, side by side (detection: encoder judge; texts: labelling-corpus texts the feature is active on). The judges score a label's words against texts; whether the words name one idea shows here.`, '');
    lines.push('| trained: feature | label | detection | texts | random: feature | label | detection | texts |', '|---|---|---|---|---|---|---|---|');
    const cell = (x?: LabelSample) => (x ? `${x.id} | ${cellText(x.label)} | ${x.detection === null ? '–' : f(x.detection, 2)} | ${x.activeTexts}` : ' | | | ');
    for (let i = 0; i < sampleRows; i++) lines.push(`| ${cell(l.sample.trained[i])} | ${cell(l.sample.random[i])} |`);
    lines.push('');
  }
  if (l.llm) {
    const x = l.llm;
    lines.push(`Labels written by \`${x.model}\` at ${x.endpoint}; the same LLM as judge on a seeded sample of ${x.sample} features per SAE, ≤ ${x.textsPerSide} activating and as many non-activating held-out texts each (${x.requests} requests, ${x.fromCache} answers from the cache).`, '');
    lines.push('| SAE | features judged | mean detection, LLM judge | hit rate by activation decile (strongest first) | non-activating rejected |', '|---|---|---|---|---|');
    lines.push(`| trained | ${x.scored} | ${f(x.meanDetection, 3)} | ${x.byDecile.trained.tpr.map((v) => f(v, 2)).join(' ')} | ${f(x.byDecile.trained.tnr, 2)} |`);
    lines.push(`| random | ${x.randomScored} | ${f(x.meanDetectionRandom, 3)} | ${x.byDecile.random.tpr.map((v) => f(v, 2)).join(' ')} | ${f(x.byDecile.random.tnr, 2)} |`, '');
  }

  if (fig.generic) {
    const g = fig.generic;
    lines.push('## Generic features', '');
    lines.push(`A feature active on more than ${pct(g.threshold)} of the labelling texts fires on nearly any text: a dense direction, not an idea (the mean is k / dictionary = ${pct(s.k / s.dictSize)}). ${g.count} features are marked \`generic\` in labels.jsonl: \`explain\` reports their summed share as one line (\`score_terms.generic\`, beside the bias and error terms) and leaves them out of the feature list, and they are never suggested as sliders. Activity of the most active features (share of labelling texts): ${g.quantiles.map((x) => `top ${pct(x.q)} ≥ ${pct(x.frequency)}`).join(', ')}.`, '');
    if (g.top.length) {
      lines.push('| generic feature | active on | label |', '|---|---|---|');
      for (const t of g.top) lines.push(`| ${t.id} | ${pct(t.frequency)} | ${cellText(t.label)} |`);
      lines.push('');
    }
  }

  if (fig.families) {
    const fm = fig.families;
    lines.push('## Feature families', '');
    lines.push(`Each non-generic feature joins its nearest more frequent feature when their decoder directions have cosine ≥ ${fm.cosine} (after O'Neill et al. 2024); the chains end at a root, the family's most general member. ${fm.count} families hold ${fm.features} features (largest: ${fm.largest}). A family's label is the concept named most often among its members' labels and related concepts. \`explain\` gives each feature's family; the panel can group and filter by it.`, '');
    if (fm.examples.length) {
      lines.push('| family (root) | label | members (their labels) |', '|---|---|---|');
      for (const x of fm.examples) lines.push(`| ${x.root} | ${cellText(x.label)} | ${x.members.length}: ${cellText(x.members.slice(0, 8).join(' · '))}${x.members.length > 8 ? ' …' : ''} |`);
      lines.push('');
    }
  }

  if (fig.checks?.length) {
    const pieceCell = (c: SetChecks) => (c.pieces ? `${c.pieces.grounded} / ${c.pieces.listed}; ${f(c.pieces.groundingOthers, 3)}` : '—');
    lines.push('## Checks that can fail', '');
    lines.push(
      'Per eval set. **Grounding**: for each relevant pair, the 5 *listed* features with the largest share, as a person reads them (non-generic; not minor: a minor feature adds less than 0.01 to the score either way and is counted in the score\'s terms but not listed; not weakly active: under a quarter of its strongest activation in the labelling corpus on the weaker side, where its label names what it picks up elsewhere; and not unnamed: its label\'s detection score under ' + NAMED_DETECTION + ', a label that does not pick out its feature\'s held-out texts reliably; and not unmatched: no word of the label is in the pair and the label, embedded alone, has a cosine under ' + LABEL_FIT + ' (' + LABEL_FIT_WORDS + ' for a word-list label, whose four words sit closer to any text) with both the query and the document, so the feature fires on this pair for something its name does not say — the word test means a listed label without the pair\'s words is one the encoder finds close to the pair); a feature is grounded when a word of its label (lower-cased, plural folded; WordNet synonyms of its first two senses allowed) occurs in the query or the document, and a word-piece label when a word of the pair starts with its piece (the next column gives their part, and the grounding of the other labels alone). **Shuffled**: the same with every label replaced by another feature\'s under a fixed random permutation. **Any share**: grounding of the top 5 with minor features included (the definition before minor features were left unlisted). **Listed**: relevant pairs with at least one listed feature; a pair with none has its score carried by generic features and many minor ones, and says so. **Erasure**: cosine drop when erasing the top 5 by share, against the top 5 by activation in the document and 5 random shared features, relevant and non-relevant pairs apart. **s′**: ranking each query\'s candidates by the internalised score instead of the raw one.',
      '',
    );
    lines.push('| set | in training | relevant pairs | listed | grounding | shuffled | ratio | word pieces in the top 5: grounded / listed; grounding of the rest | any share (shuffled) | mean \\|O(q,d)\\| (generic in it) | feature most often in the top 5 |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of fig.checks) {
      const g = c.grounding;
      const a = c.groundingAnyShare;
      lines.push(
        `| ${c.name} | ${c.inTraining ? 'yes' : 'no'} | ${c.relevant} | ${c.relevantWithListed} | ${f(g.grounding, 3)} | ${f(g.shuffled, 3)} | ${g.shuffled > 0 ? f(g.grounding / g.shuffled, 1) + '×' : '—'} | ${pieceCell(c)} | ${a ? `${f(a.grounding, 3)} (${f(a.shuffled, 3)})` : '—'} | ${f(c.meanShared, 1)} (${f(c.meanGenericShared, 1)}) | ${c.commonest ? `${c.commonest.id} ${quoted(cellText(c.commonest.label))} in ${pct(c.commonest.share)}` : '—'} |`,
      );
    }
    lines.push('');
    lines.push('| set | pairs | drop: top 5 by share / by activation / random 5 | share beats activation | share beats random |', '|---|---|---|---|---|');
    for (const c of fig.checks) {
      for (const [kind, t] of [['relevant', c.erasure.relevant], ['non-relevant', c.erasure.nonRelevant]] as const) {
        if (!t.pairs) continue;
        lines.push(`| ${c.name}, ${kind} | ${t.pairs} | ${f(t.drop.share, 3)} / ${f(t.drop.activation, 3)} / ${f(t.drop.random, 3)} | ${pct(t.shareBeatsActivation / t.pairs)} | ${pct(t.shareBeatsRandom / t.pairs)} |`);
      }
    }
    lines.push('');
    lines.push('| set | queries with a relevant candidate | raw NDCG@10 \\| MRR@10 \\| R@100 | s′ NDCG@10 \\| MRR@10 \\| R@100 |', '|---|---|---|---|');
    for (const c of fig.checks) lines.push(`| ${c.name} | ${c.ranking.queries} | ${m3(c.ranking.base)} | ${m3(c.ranking.internalised)} |`);
    lines.push('');
    if (fig.leaveOneOut?.length) {
      lines.push(
        '**Leave one corpus out.** For each shared corpus, an SAE and labels trained on everything else (same data step, dictionary, k, epochs and seed; the internalizers are the bundle\'s), checked on that corpus\'s pairs and on the held-out FAQ:',
        '',
      );
      lines.push('| left out | SAE vectors | FVE | dead | concept labels | set | listed | grounding | shuffled | ratio | word pieces: grounded / listed; the rest | any share (shuffled) | erasure, relevant: share / activation / random |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      for (const r of fig.leaveOneOut) {
        for (const c of r.checks) {
          const g = c.grounding;
          const e = c.erasure.relevant;
          const a = c.groundingAnyShare;
          lines.push(`| ${r.leftOut} | ${r.trainVectors} | ${f(r.fve, 3)} | ${pct(r.deadFraction)} | ${r.conceptLabelled} | ${c.name} | ${c.relevantWithListed}/${c.relevant} | ${f(g.grounding, 3)} | ${f(g.shuffled, 3)} | ${g.shuffled > 0 ? f(g.grounding / g.shuffled, 1) + '×' : '—'} | ${pieceCell(c)} | ${a ? `${f(a.grounding, 3)} (${f(a.shuffled, 3)})` : '—'} | ${f(e.drop.share, 3)} / ${f(e.drop.activation, 3)} / ${f(e.drop.random, 3)} |`);
        }
      }
      lines.push('');
    }
    lines.push('Top 5 listed labels by share on the first relevant pairs of each set:', '');
    for (const c of fig.checks) {
      for (const ex of c.examples) {
        lines.push(`- **${cellText(c.name)}** — *${ex.query}* (score ${f(ex.score, 3)}): ${ex.top.length ? ex.top.map((t) => `${t.id} ${quoted(t.label)} ${f(t.share, 3)}`).join(' · ') : 'no listed feature'}`);
      }
    }
    lines.push('');
  }

  if (fig.examples.length) {
    lines.push("## Example explanations (the Xetrieval repository's example pairs, a technical pair and two everyday ones)", '');
    lines.push('O(q,d): the features the query shares with the document or one of its views. Share: the feature\'s part of the decomposed score; erasure Δ: the cosine change when that feature alone is erased from the document.', '');
    for (const ex of fig.examples) {
      lines.push(`**q:** ${ex.query} **d:** ${ex.doc}`, '');
      lines.push(`Score ${f(ex.score)}, internalised s′ ${f(ex.internalizedScore)}; |O(q,d)| = ${ex.shared}; cosine after erasing O(q,d) ${f(ex.erasedOverlap)}, after erasing a same-size control set ${f(ex.erasedControl)}.`, '');
      if (ex.terms) lines.push(`Score = shared features ${f(ex.terms.shared, 3)} + one-sided ${f(ex.terms.one_sided, 3)} + generic ${f(ex.terms.generic, 3)} + bias ${f(ex.terms.bias, 3)} + error ${f(ex.terms.error, 3)}.`, '');
      lines.push('| feature | label | share | erasure Δ |', '|---|---|---|---|');
      for (const t of ex.top) lines.push(`| ${t.id} | ${cellText(t.label)} | ${f(t.share, 3)} | ${f(t.erasureDelta, 3)} |`);
      if (!ex.top.length) lines.push('| — | no listed feature: none adds 0.01 to the score | | |');
      if (ex.minor?.count) lines.push(`| | ${ex.minor.count} minor features (under 0.01 each) | ${f(ex.minor.share, 3)} together | |`);
      if (ex.weak?.count) lines.push(`| | ${ex.weak.count} weakly active (under a quarter of their strongest activation): ${ex.weak.labels.map(quoted).join(', ')} | ${f(ex.weak.share, 3)} together | |`);
      if (ex.unnamed?.count) lines.push(`| | ${ex.unnamed.count} unnamed (label detection under ${NAMED_DETECTION}): ${ex.unnamed.labels.map(quoted).join(', ')} | ${f(ex.unnamed.share, 3)} together | |`);
      if (ex.unmatched?.count) lines.push(`| | ${ex.unmatched.count} unmatched (no label word in the pair, label cosine with it under ${LABEL_FIT}, ${LABEL_FIT_WORDS} for a word list): ${ex.unmatched.labels.map(quoted).join(', ')} | ${f(ex.unmatched.share, 3)} together | |`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

export function writeReport(file: string, manifest: BundleManifest, fig: BundleFigures): void {
  fs.writeFileSync(file, renderReport(manifest, fig));
}
