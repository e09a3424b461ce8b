/**
 * The broad training corpus of the default bundle (`xetrieval train corpus`):
 * everyday English (WordNet 3.0 glosses and examples, GCIDE definitions) and
 * software documentation (Python, git, PostgreSQL, the C library's man pages),
 * read from the Debian packages that install them. A bundle trained on
 * biomedical abstracts alone explains a paragraph about Python's GIL with
 * "thailand, currency, beach": its features and label words never saw such text.
 *
 * Python's FAQ is held out of the corpus: its question → answer pairs are the
 * out-of-domain check set (`python-faq.jsonl`). Debian's other documentation
 * packages are never read: they are kept for independent evaluation.
 *
 * Output (a folder): `<source>.jsonl` ({id, text} per line), `python-faq.jsonl`
 * (eval pairs), `sources.json` (what each source is, its licence and counts).
 * Deterministic: the same packages give byte-identical files.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { asciidocParagraphs, htmlParagraphs, letterShare, manParagraphs, paragraphWindows, rstParagraphs, wordCount } from '../core/docText';
import { hashUnit, termSet } from '../core/explain/labels';

export interface CorpusSource {
  name: string;
  /** the Debian package that installs it */
  package: string;
  /** where it is read from */
  path: string;
  licence: string;
  kind: 'everyday' | 'documentation';
  /** texts before the cap */
  available: number;
  /** texts written */
  count: number;
}

export interface CorpusText {
  id: string;
  text: string;
}

export interface CorpusOptions {
  /** root of the system's files (tests point it at a fixture tree); default '/' */
  root?: string;
  /** at most this many texts per source, a seeded-hash sample beyond it; default: each source's own cap */
  capPerSource?: number;
  seed?: number;
}

const WORDNET = 'usr/share/wordnet';
const GCIDE = 'usr/share/dictd/gcide.dict.dz';
const PYDOC = 'usr/share/doc/python3.11/html/_sources';
const GITDOC = 'usr/share/doc/git';
const PGDOC = 'usr/share/doc/postgresql-doc-15/html';
const MANDIRS = ['usr/share/man/man2', 'usr/share/man/man3'];

/** Minimum share of letters in a window: code listings and tables are not what a label should name. */
const MIN_LETTERS = 0.6;

function walk(dir: string, keep: (f: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => keep(f) && fs.statSync(path.join(dir, f)).isFile())
    .sort();
}

const readText = (file: string): string => (file.endsWith('.gz') ? zlib.gunzipSync(fs.readFileSync(file)).toString('utf8') : fs.readFileSync(file, 'utf8'));

/** WordNet 3.0 synsets: "lemma, lemma: gloss; "example"", one text per synset. */
export function wordnetGlosses(root: string): CorpusText[] {
  const out: CorpusText[] = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const file = path.join(root, WORDNET, `data.${pos}`);
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line || line.startsWith('  ')) continue;
      const bar = line.indexOf(' | ');
      if (bar < 0) continue;
      const f = line.slice(0, bar).split(' ');
      const nWords = parseInt(f[3], 16);
      const lemmas: string[] = [];
      for (let i = 0; i < nWords; i++) lemmas.push(f[4 + 2 * i].replace(/\(\w+\)$/, '').replace(/_/g, ' '));
      const gloss = line.slice(bar + 3).trim();
      out.push({ id: `wn:${pos}:${f[0]}`, text: `${lemmas.join(', ')}: ${gloss}` });
    }
  }
  return out;
}

export interface Lemma {
  lemma: string;
  pos: string;
  /** senses tagged in WordNet's semantic concordance: how common the word is in running text */
  tagCount: number;
  /** lemmas sharing a synset with this one (synonyms) */
  synsets: number[];
}

/** The lemmas of WordNet's index files (multi-word ones with spaces), with use counts and synset offsets. */
export function wordnetLemmas(root: string): Lemma[] {
  const out: Lemma[] = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const file = path.join(root, WORDNET, `index.${pos}`);
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line || line.startsWith('  ')) continue;
      const f = line.trim().split(' ');
      const synsetCnt = parseInt(f[2], 10);
      const pCnt = parseInt(f[3], 10);
      const tagCount = parseInt(f[5 + pCnt], 10);
      const synsets = f.slice(6 + pCnt, 6 + pCnt + synsetCnt).map((x) => parseInt(x, 10) * 4 + ['noun', 'verb', 'adj', 'adv'].indexOf(pos));
      out.push({ lemma: f[0].replace(/_/g, ' '), pos, tagCount: Number.isFinite(tagCount) ? tagCount : 0, synsets });
    }
  }
  return out;
}

/**
 * Synonym groups for matching a label word against a text: word → the words
 * it shares a synset with (single words only, lower-cased). Only the first
 * `senses` senses of a word count, so rare senses do not make everything a
 * synonym of everything.
 */
export function wordnetSynonyms(lemmas: readonly Lemma[], senses = 2): Map<string, Set<string>> {
  const bySynset = new Map<number, string[]>();
  for (const l of lemmas) {
    if (l.lemma.includes(' ')) continue;
    for (const s of l.synsets.slice(0, senses)) {
      let a = bySynset.get(s);
      if (!a) bySynset.set(s, (a = []));
      a.push(l.lemma.toLowerCase());
    }
  }
  const out = new Map<string, Set<string>>();
  for (const words of bySynset.values()) {
    if (words.length < 2) continue;
    for (const w of words) {
      let s = out.get(w);
      if (!s) out.set(w, (s = new Set()));
      for (const v of words) if (v !== w) s.add(v);
    }
  }
  return out;
}

/** GCIDE (dictzip is gzip): "headword: definition" per numbered sense. */
export function gcideDefinitions(root: string): CorpusText[] {
  const file = path.join(root, GCIDE);
  if (!fs.existsSync(file)) return [];
  const src = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  const out: CorpusText[] = [];
  const clean = (s: string) =>
    s
      .replace(/\[(1913 Webster|PJC|WordNet 1\.5|RHD|Century Dict\.|Webster 1913 Suppl\.|[A-Z]{2,4})\]/g, ' ')
      .replace(/\[[a-z]?[=^~`'"*.,-]?[a-z]?\]/gi, '')
      .replace(/[{}]/g, '')
      .replace(/\s+/g, ' ')
      // a trailing citation ("--Bp. Burnet.") once the lines are joined
      .replace(/\s*--[A-Z][\w. ]*$/g, '')
      .trim();
  const keep = (t: string) => wordCount(t) >= 4 && letterShare(t) >= MIN_LETTERS;
  let head = '';
  let n = 0;
  for (const block of src.split(/\n\s*\n/)) {
    const hm = /^([A-Za-z][\w' -]{0,40}) \\[^\\]*\\/.exec(block);
    if (hm) {
      head = hm[1].trim();
      // the entry's first block: header, etymology in [ … ] (may span lines), then the definition or sense 1
      const lines = block.split('\n');
      let depth = 0;
      let i = 0;
      do {
        for (const ch of lines[i]) depth += ch === '[' ? 1 : ch === ']' ? -1 : 0;
        i++;
      } while (depth > 0 && i < lines.length);
      const t = clean(lines.slice(i).join('\n').replace(/^\s*1\.\s+/, ''));
      if (keep(t)) out.push({ id: `gcide:${n++}`, text: `${head}: ${t}` });
      continue;
    }
    if (!head) continue;
    const sm = /^\s+\d+\.\s+([\s\S]+)$/.exec(block);
    if (!sm) continue;
    const t = clean(sm[1]);
    if (keep(t)) out.push({ id: `gcide:${n++}`, text: `${head}: ${t}` });
  }
  return out;
}

function docWindows(prefix: string, files: { id: string; paragraphs: string[] }[]): CorpusText[] {
  const out: CorpusText[] = [];
  for (const f of files) {
    paragraphWindows(f.paragraphs).forEach((text, i) => {
      if (letterShare(text) >= MIN_LETTERS && wordCount(text) >= 8) out.push({ id: `${prefix}:${f.id}#${i}`, text });
    });
  }
  return out;
}

/** Python's documentation (reST sources), without its FAQ. */
export function pythonDocs(root: string): CorpusText[] {
  const dir = path.join(root, PYDOC);
  const files = walk(dir, (f) => f.endsWith('.rst.txt') && !f.startsWith('faq') && !f.startsWith('whatsnew/changelog'));
  return docWindows(
    'python',
    files.map((f) => ({ id: f.replace(/\.rst\.txt$/, ''), paragraphs: rstParagraphs(fs.readFileSync(path.join(dir, f), 'utf8')) })),
  );
}

/** git's documentation (AsciiDoc sources of the manual pages and guides). */
export function gitDocs(root: string): CorpusText[] {
  const dir = path.join(root, GITDOC);
  const files = walk(dir, (f) => f.endsWith('.txt') && !f.startsWith('RelNotes'));
  return docWindows(
    'git',
    files.map((f) => ({ id: f.replace(/\.txt$/, ''), paragraphs: asciidocParagraphs(fs.readFileSync(path.join(dir, f), 'utf8')) })),
  );
}

/** PostgreSQL's manual (HTML). */
export function postgresDocs(root: string): CorpusText[] {
  const dir = path.join(root, PGDOC);
  const files = walk(dir, (f) => f.endsWith('.html') && !/^release-/.test(f));
  return docWindows(
    'postgresql',
    files.map((f) => ({ id: f.replace(/\.html$/, ''), paragraphs: htmlParagraphs(fs.readFileSync(path.join(dir, f), 'utf8')) })),
  );
}

/** Linux system calls and C library functions (man pages, sections 2 and 3). */
export function manPages(root: string): CorpusText[] {
  const files: { id: string; paragraphs: string[] }[] = [];
  for (const d of MANDIRS) {
    const dir = path.join(root, d);
    for (const f of walk(dir, (x) => /\.\d\w*(\.gz)?$/.test(x))) {
      const src = readText(path.join(dir, f));
      if (/^\.so /m.test(src) && src.length < 200) continue; // a redirect to another page
      files.push({ id: `${path.basename(d)}/${f.replace(/\.gz$/, '')}`, paragraphs: manParagraphs(src) });
    }
  }
  return docWindows('man', files);
}

export interface EvalPair {
  query_id: string;
  doc_id: string;
  query: string;
  doc: string;
  label: number;
}

/**
 * Python's FAQ as an eval file: each question (a section heading ending in
 * "?") with its answer (the section's first paragraphs, up to ~120 words) as
 * the relevant document, and `negatives` other answers as hard negatives: the
 * ones sharing the most words with the question.
 */
export function pythonFaqPairs(root: string, negatives = 4): EvalPair[] {
  const dir = path.join(root, PYDOC, 'faq');
  const qa: { id: string; q: string; a: string }[] = [];
  for (const f of walk(dir, (x) => x.endsWith('.rst.txt') && x !== 'index.rst.txt')) {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    let cur: { q: string; body: string[] } | undefined;
    const flush = () => {
      if (!cur) return;
      const words: string[] = [];
      for (const p of rstParagraphs(cur.body.join('\n'))) {
        if (letterShare(p) < MIN_LETTERS) continue;
        words.push(...(p.match(/\S+/g) ?? []));
        if (words.length >= 60) break;
      }
      if (words.length >= 8) qa.push({ id: `${f.replace(/\.rst\.txt$/, '')}-${qa.length + 1}`, q: cur.q, a: words.slice(0, 120).join(' ') });
      cur = undefined;
    };
    for (let i = 0; i < lines.length; i++) {
      const next = lines[i + 1] ?? '';
      if (lines[i].trim() && /^([-=^~"])\1{2,}\s*$/.test(next) && next.trim().length >= lines[i].trim().length - 2) {
        flush();
        const title = rstParagraphs(lines[i])[0] ?? '';
        if (title.endsWith('?')) cur = { q: title, body: [] };
        i++;
        continue;
      }
      cur?.body.push(lines[i]);
    }
    flush();
  }
  const terms = qa.map((x) => termSet(x.a));
  const out: EvalPair[] = [];
  qa.forEach((x, i) => {
    out.push({ query_id: `faq-${x.id}`, doc_id: `faq-${x.id}`, query: x.q, doc: x.a, label: 1 });
    const qt = termSet(x.q);
    const ranked = qa
      .map((y, j) => ({ j, n: j === i ? -1 : [...qt].filter((t) => terms[j].has(t)).length }))
      .filter((r) => r.n >= 0)
      .sort((a, b) => b.n - a.n || a.j - b.j)
      .slice(0, negatives);
    for (const r of ranked) out.push({ query_id: `faq-${x.id}`, doc_id: `faq-${qa[r.j].id}`, query: x.q, doc: qa[r.j].a, label: 0 });
  });
  return out;
}

/**
 * Default texts per source: what the encoder affords on a 2-core CPU in about
 * half an hour (~2,500 tokens/s; documentation windows are 100–150 tokens, glosses
 * ~20), weighted toward documentation, where the default bundle was weakest.
 */
const SOURCES: { name: string; package: string; path: string; licence: string; kind: CorpusSource['kind']; cap: number; read: (root: string) => CorpusText[] }[] = [
  { name: 'wordnet', cap: 50000, package: 'wordnet-base', path: WORDNET, licence: 'WordNet 3.0 licence (Princeton; free use, copy and distribution with the notice)', kind: 'everyday', read: wordnetGlosses },
  { name: 'gcide', cap: 30000, package: 'dict-gcide', path: GCIDE, licence: 'GPL-2.0-or-later (GCIDE, from Webster 1913 and WordNet)', kind: 'everyday', read: gcideDefinitions },
  { name: 'python-docs', cap: 12000, package: 'python3-doc', path: PYDOC, licence: 'PSF License Agreement (Python documentation); FAQ held out', kind: 'documentation', read: pythonDocs },
  { name: 'git-docs', cap: 2500, package: 'git-doc', path: GITDOC, licence: 'GPL-2.0 (git)', kind: 'documentation', read: gitDocs },
  { name: 'postgresql-docs', cap: 4000, package: 'postgresql-doc', path: PGDOC, licence: 'PostgreSQL License (permissive, BSD-like)', kind: 'documentation', read: postgresDocs },
  { name: 'man-pages', cap: 3500, package: 'manpages-dev', path: MANDIRS.join(', '), licence: 'per page: mostly Linux man-pages verbatim or GPL-2.0+ / BSD (see /usr/share/doc/manpages-dev/copyright)', kind: 'documentation', read: manPages },
];

export const BROAD_SOURCES = SOURCES.map((s) => s.name);

/**
 * Reads every source, de-duplicates texts, caps each source by a seeded hash
 * sample and writes the corpus folder. Missing packages are reported, not fatal:
 * the caller decides whether a partial corpus will do.
 */
export function buildBroadCorpus(outDir: string, opts: CorpusOptions = {}, log: (msg: string) => void = () => {}): { sources: CorpusSource[]; missing: string[]; faqPairs: number } {
  const root = opts.root ?? '/';
  const seed = opts.seed ?? 13;
  fs.mkdirSync(outDir, { recursive: true });
  const seen = new Set<string>();
  const sources: CorpusSource[] = [];
  const missing: string[] = [];
  for (const s of SOURCES) {
    const texts = s.read(root).filter((t) => {
      const key = t.text.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (!texts.length) {
      missing.push(`${s.name} (Debian package ${s.package}: nothing at /${s.path})`);
      continue;
    }
    const cap = opts.capPerSource ?? s.cap;
    // a seeded hash of the id, not of the position: adding a file to a package keeps the others' choice
    const kept = texts.length <= cap ? texts : texts.map((t) => ({ t, h: hashUnit(t.id, seed) })).sort((a, b) => a.h - b.h || (a.t.id < b.t.id ? -1 : 1)).slice(0, cap).map((x) => x.t).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    fs.writeFileSync(path.join(outDir, `${s.name}.jsonl`), kept.map((t) => JSON.stringify(t)).join('\n') + '\n');
    sources.push({ name: s.name, package: s.package, path: '/' + s.path, licence: s.licence, kind: s.kind, available: texts.length, count: kept.length });
    log(`${s.name}: ${kept.length} texts (of ${texts.length})`);
  }
  const faq = pythonFaqPairs(root);
  if (faq.length) fs.writeFileSync(path.join(outDir, 'python-faq.jsonl'), faq.map((p) => JSON.stringify(p)).join('\n') + '\n');
  else missing.push('python-faq (Debian package python3-doc)');
  fs.writeFileSync(path.join(outDir, 'sources.json'), JSON.stringify({ seed, capPerSource: opts.capPerSource ?? null, sources, heldOut: { 'python-faq': faq.length } }, null, 1) + '\n');
  return { sources, missing, faqPairs: faq.length };
}

export function readBroadCorpus(dir: string): { sources: CorpusSource[]; texts: Map<string, CorpusText[]> } {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'sources.json'), 'utf8')) as { sources: CorpusSource[] };
  const texts = new Map<string, CorpusText[]>();
  for (const s of meta.sources) {
    texts.set(
      s.name,
      fs
        .readFileSync(path.join(dir, `${s.name}.jsonl`), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as CorpusText),
    );
  }
  return { sources: meta.sources, texts };
}
