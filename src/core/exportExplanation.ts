/**
 * An explanation as files a person or a script can keep: a Markdown report,
 * the JSON record (the `explain` JSONL line's shape plus the texts and where
 * it came from) and the feature table as CSV. Pure: the extension's "Export
 * Explanation…" command writes what these return.
 */
import { LABEL_FIT, LABEL_FIT_WORDS, NAMED_DETECTION, isListed, unlistedGroups } from './explain/attribution';
import type { TextAttribution } from './explain/occlusion';
import type { PairExplanation, Precision, SharedFeature } from '../protocol/worker';

export type ExportFormat = 'markdown' | 'json' | 'csv';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['markdown', 'json', 'csv'];
export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = { markdown: 'md', json: 'json', csv: 'csv' };

/** Where an explanation came from. */
export interface ExportContext {
  model: string;
  /** the encoder precision that produced it */
  precision?: Precision;
  /** the explanation bundle (its folder) */
  bundle?: string;
  /** the eval file the case belongs to (absent for a single pair) */
  file?: string;
  /** steered features of the case's file (α ≠ 1); the explanation itself is of the unsteered embeddings */
  steering?: { id: number; label: string; alpha: number }[];
  /** the case's score under that steering, when steered */
  steeredScore?: number;
  device?: string;
  /** ISO time of the export; left out when absent, so the output is a function of its input */
  exportedAt?: string;
}

export interface ExportInput {
  pair: PairExplanation;
  query: string;
  doc: string;
  context: ExportContext;
}

/** "q12 · d4" style base name for the file: the case's ids, made safe for any file system. */
export function exportBaseName(pair: Pick<PairExplanation, 'query_id' | 'doc_id'>): string {
  const ids = [pair.query_id, pair.doc_id].filter((x): x is string => x !== undefined && x !== '');
  const raw = ids.length ? `xetrieval-${ids.join('-')}` : 'xetrieval-explanation';
  return raw.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
}

// ---------------------------------------------------------------- JSON

/**
 * The explanation record as `xetrieval explain` writes it (its fields at the
 * top, `precision` as the CLI adds it), plus `query`, `doc` and `context`.
 */
export function explanationJson(x: ExportInput): string {
  const { precision, ...context } = x.context;
  const record = { ...x.pair, ...(precision ? { precision } : {}), query: x.query, doc: x.doc, context: dropUndefined(context) };
  return JSON.stringify(record, null, 2) + '\n';
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------- CSV

/** One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (quotes doubled). */
export function csvField(v: string | number | boolean | undefined): string {
  const s = v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 records: fields joined by commas, records ended by CRLF. */
export function csvRecords(rows: readonly (readonly (string | number | boolean | undefined)[])[]): string {
  return rows.map((r) => r.map(csvField).join(',') + '\r\n').join('');
}

/** The views with an activation column, in the order of view_scores (then any others the features name). */
function viewNames(pair: PairExplanation): string[] {
  const names = Object.keys(pair.view_scores);
  for (const f of pair.features) for (const v of Object.keys(f.views)) if (!names.includes(v)) names.push(v);
  return names;
}

/** Features by share, largest first (ties by id), as the panel lists them. */
function byShare(features: readonly SharedFeature[]): SharedFeature[] {
  return [...features].sort((a, b) => b.share - a.share || a.id - b.id);
}

/** The feature table, one row per feature, minor ones included (column `minor`). */
export function featureTableCsv(x: ExportInput): string {
  const views = viewNames(x.pair);
  const header = ['query_id', 'doc_id', 'feature_id', 'label', 'family_id', 'family_label', 'share', 'erasure_delta', 'query_activation', ...views.map((v) => `view:${v}`), 'shared_in', 'in_overlap', 'minor', 'weak', 'unnamed', 'unmatched', 'label_fit'];
  const overlap = new Set(x.pair.shared_features);
  const rows = byShare(x.pair.features).map((f) => [
    x.pair.query_id,
    x.pair.doc_id,
    f.id,
    f.label,
    f.family?.id,
    f.family?.label,
    f.share,
    f.erasureDelta,
    f.query,
    ...views.map((v) => f.views[v] ?? 0),
    f.sharedIn.join(';'),
    overlap.has(f.id),
    f.minor === true,
    f.weak === true,
    f.unnamed === true,
    f.unmatched === true,
    f.labelFit,
  ]);
  return csvRecords([header, ...rows]);
}

// ---------------------------------------------------------------- Markdown

/**
 * Text for one Markdown table cell: backslash and the characters Markdown
 * would read as markup are escaped, a pipe cannot end the cell, and a line
 * break (which would end the row) becomes a space.
 */
export function mdCell(s: string): string {
  return s
    .replace(/\r\n|\r|\n/g, ' ')
    .replace(/[\\|`*_[\]<>~&#]/g, (c) => `\\${c}`)
    .trim();
}

/** A fenced block that no backtick run in the text can close early. */
function fenced(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text.replace(/\r\n?/g, '\n').replace(/\n*$/, '')}\n${fence}`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[] = []): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const sep = head.map((_, i) => (numeric[i] ? '---:' : '---'));
  return [line(head), line(sep), ...rows.map(line)].join('\n');
}

const fixed = (x: number, d = 4) => (Object.is(x, -0) ? 0 : x).toFixed(d);
const signed = (x: number, d = 4) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}`;

/** Supporting (Δ > 0) and opposing (Δ < 0) words of one text, the largest |Δ| first. */
export function topWords(a: TextAttribution, n = 10): { supporting: TextAttribution['units']; opposing: TextAttribution['units'] } {
  const units = a.units.filter((u) => u.text.trim() !== '');
  return {
    supporting: units.filter((u) => u.score > 0).sort((x, y) => y.score - x.score).slice(0, n),
    opposing: units.filter((u) => u.score < 0).sort((x, y) => x.score - y.score).slice(0, n),
  };
}

/** A readable report of one explanation. */
export function explanationMarkdown(x: ExportInput): string {
  const p = x.pair;
  const c = x.context;
  const out: string[] = [];
  const ids = [p.query_id, p.doc_id].filter((v) => v !== undefined).join(' · ');
  out.push(`# Xetrieval explanation${ids ? `: ${mdCell(ids)}` : ''}`, '');

  const facts: [string, string][] = [['model', `${c.model}${c.precision ? ` (${c.precision})` : ''}`]];
  if (c.bundle) facts.push(['bundle', c.bundle]);
  if (c.file) facts.push(['eval file', c.file]);
  if (p.query_id !== undefined) facts.push(['query id', p.query_id]);
  if (p.doc_id !== undefined) facts.push(['document id', p.doc_id]);
  if (p.label !== undefined) facts.push(['label', String(p.label)]);
  if (c.device) facts.push(['device', c.device]);
  if (c.exportedAt) facts.push(['exported', c.exportedAt]);
  out.push(table(['', ''], facts.map(([k, v]) => [mdCell(k), mdCell(v)])), '');

  out.push('## Query', '', fenced(x.query) + (p.query_truncated ? '\n\n(cut at the encoder’s token limit)' : ''), '');
  out.push('## Document', '', fenced(x.doc) + (p.doc_truncated ? '\n\n(cut at the encoder’s token limit)' : ''), '');

  out.push('## Score', '', `Score (cosine of the two embeddings): **${fixed(p.score)}**.`, '');
  if (p.score_terms) {
    const t = p.score_terms;
    const parts: [string, number][] = [
      ['shared features', t.shared],
      ['one-sided features', t.one_sided],
      ['generic features', t.generic],
      ['SAE bias', t.bias],
      ['reconstruction error', t.error],
    ];
    out.push('The score split into its parts (they add up to the score):', '');
    out.push(table(['part', 'value'], [...parts.map(([k, v]) => [k, signed(v)]), ['**score**', `**${fixed(p.score)}**`]], [false, true]), '');
  }
  out.push(`Internalised score s′ = ${fixed(p.internalized_score)} (the score plus the query’s cosine with each document view the bundle’s internalizers predict).`, '');
  const views = Object.entries(p.view_scores);
  if (views.length) out.push(table(['view', '⟨z_q, v⟩'], views.map(([v, s]) => [mdCell(v), fixed(s)]), [false, true]), '');
  if (c.steering?.length) {
    const list = c.steering.map((s) => `#${s.id} ${mdCell(s.label)} α = ${s.alpha}`).join('; ');
    out.push(`Steering of the eval file: ${list}${c.steeredScore !== undefined ? `; steered score ${fixed(c.steeredScore)}` : ''}. The explanation is of the unsteered embeddings.`, '');
  }

  const listed = byShare(p.features.filter(isListed));
  const { minor, weak, unnamed, unmatched } = unlistedGroups(p.features);
  const overlap = new Set(p.shared_features);
  out.push('## Features', '');
  if (listed.length) {
    const fviews = viewNames(p);
    const head = ['#', 'label', 'family', 'share', 'erasure Δ', 'query', ...fviews.map(mdCell), 'shared in'];
    const rows = listed.map((f) => [
      `${f.id}${overlap.has(f.id) ? '' : ' †'}`,
      mdCell(f.label),
      f.family ? mdCell(f.family.label) : '',
      signed(f.share),
      signed(f.erasureDelta),
      fixed(f.query, 3),
      ...fviews.map((v) => fixed(f.views[v] ?? 0, 3)),
      mdCell(f.sharedIn.join(', ')),
    ]);
    out.push(table(head, rows, [false, false, false, true, true, true, ...fviews.map(() => true), false]), '');
    out.push('Share: the feature’s part of the score. Erasure Δ: the cosine’s change when the feature alone is erased from the document. Activations: in the query and in each document view.');
    if (listed.some((f) => !overlap.has(f.id))) out.push('† not in O(q,d): shared with one of the document’s views only.');
    out.push('');
  } else out.push(weak.length || unnamed.length || unmatched.length ? 'No shared feature adds 0.01 to the score, is strongly active here and has a reliable name that matches this pair.' : 'No shared feature adds 0.01 to the score.', '');
  if (minor.length) {
    const sum = minor.reduce((s, f) => s + f.share, 0);
    out.push(`${minor.length} minor feature${minor.length === 1 ? '' : 's'} (each adds under 0.01 to the score either way) ${minor.length === 1 ? 'adds' : 'add'} ${signed(sum)} together; the CSV feature table lists them.`, '');
  }
  if (weak.length) {
    const sum = weak.reduce((s, f) => s + f.share, 0);
    out.push(`${weak.length} weakly active feature${weak.length === 1 ? '' : 's'} (under a quarter of ${weak.length === 1 ? 'its' : 'their'} strongest activation, so ${weak.length === 1 ? 'its label names' : 'their labels name'} what ${weak.length === 1 ? 'it picks' : 'they pick'} up elsewhere) ${weak.length === 1 ? 'adds' : 'add'} ${signed(sum)} together: ${weak.map((f) => `#${f.id} ${mdCell(f.label)}`).join(', ')}; the CSV feature table lists them.`, '');
  }
  if (unnamed.length) {
    const sum = unnamed.reduce((s, f) => s + f.share, 0);
    const one = unnamed.length === 1;
    out.push(`${unnamed.length} unnamed feature${one ? '' : 's'} (${one ? 'its label does' : 'their labels do'} not pick out ${one ? 'its' : 'their'} texts reliably: detection under ${NAMED_DETECTION}) ${one ? 'adds' : 'add'} ${signed(sum)} together: ${unnamed.map((f) => `#${f.id}`).join(', ')}; the CSV feature table lists them with their labels.`, '');
  }
  if (unmatched.length) {
    const sum = unmatched.reduce((s, f) => s + f.share, 0);
    const one = unmatched.length === 1;
    out.push(`${unmatched.length} feature${one ? '' : 's'} whose label${one ? ' does' : 's do'} not match this pair (cosine with the query or the document under ${LABEL_FIT}, ${LABEL_FIT_WORDS} for a word list: ${one ? 'it fires' : 'they fire'} here for something ${one ? 'its name does' : 'their names do'} not say) ${one ? 'adds' : 'add'} ${signed(sum)} together: ${unmatched.map((f) => `#${f.id} ${mdCell(f.label)}`).join(', ')}; the CSV feature table lists them.`, '');
  }

  if (p.erasure) {
    const e = p.erasure;
    out.push('## Erasure of O(q,d)', '', `Cosine before erasure: ${fixed(e.base)}. O(q,d) against a control set of the same size drawn from the document’s other active features:`, '');
    out.push(
      table(
        ['set', 'size', 'erased from the document', 'only the set kept'],
        [
          ['O(q,d)', String(e.overlap.size), fixed(e.overlap.erased), fixed(e.overlap.kept)],
          ['control', String(e.control.size), fixed(e.control.erased), fixed(e.control.kept)],
        ],
        [false, true, true, true],
      ),
      '',
    );
  }

  if (p.token_attributions) {
    out.push('## Word attributions', '', 'Δ: the score with the word minus the score without it (positive: the word supports the match).', '');
    for (const [name, a] of [['Query', p.token_attributions.query], ['Document', p.token_attributions.doc]] as const) {
      const { supporting, opposing } = topWords(a);
      out.push(`### ${name}${a.window > 1 ? ` (windows of ${a.window} words)` : ''}`, '');
      if (!supporting.length && !opposing.length) {
        out.push('No word changes the score.', '');
        continue;
      }
      const rows = [...supporting.map((u) => ['supports', mdCell(u.text), signed(u.score)]), ...opposing.map((u) => ['opposes', mdCell(u.text), signed(u.score)])];
      out.push(table(['', 'word', 'Δ score'], rows, [false, false, true]), '');
    }
  }
  return out.join('\n').replace(/\n+$/, '') + '\n';
}

/** The file's text for a format. */
export function exportExplanation(format: ExportFormat, x: ExportInput): string {
  switch (format) {
    case 'markdown':
      return explanationMarkdown(x);
    case 'json':
      return explanationJson(x);
    case 'csv':
      return featureTableCsv(x);
  }
}
