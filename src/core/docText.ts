/**
 * Plain paragraphs out of documentation markup: reStructuredText (Python's
 * docs), AsciiDoc (git's), HTML (PostgreSQL's), and man-page groff. Training
 * text for the broad bundle: what matters is that the words a reader sees come
 * out and the markup does not, not a faithful rendering.
 */

/** Words of a string, whitespace-split. */
export const wordCount = (s: string): number => (s.match(/\S+/g) ?? []).length;

/** Collapses whitespace; an empty result means nothing to keep. */
const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** A line of only punctuation (section underlines, table rules, block fences). */
const isRule = (line: string): boolean => /^\s*([=\-~^"'`#*+_.:<>|])\1{2,}\s*$/.test(line) || /^\s*[+|][-=+|]+\s*$/.test(line);

/** reStructuredText → paragraphs; roles and literals keep their text, directives and rules go. */
export function rstParagraphs(src: string): string[] {
  const out: string[] = [];
  for (const block of src.split(/\n\s*\n/)) {
    // field lists (":tocdepth: 2", ":synopsis: …") go; a wrapped line that starts with a role (":func:`open`") stays
    const lines = block.split('\n').filter((l) => !isRule(l) && !/^\s*\.\. /.test(l) && !/^\s*:[\w-]+:(\s.*)?$/.test(l));
    if (!lines.length) continue;
    let t = lines.join(' ');
    t = t
      .replace(/:[\w:.-]+:`~?([^`<]*?)(\s*<[^>]*>)?`/g, '$1') // :func:`name <target>` → name
      .replace(/`([^`<]*?)\s*<[^>]*>`_+/g, '$1') // `text <url>`_
      .replace(/``([^`]*)``/g, '$1')
      .replace(/`([^`]*)`_*/g, '$1')
      .replace(/\*\*([^*]+)\*\*/g, '$1')
      .replace(/\*([^*\s][^*]*)\*/g, '$1')
      .replace(/\|([\w-]+)\|/g, '$1')
      .replace(/::\s*$/, ':');
    t = squash(t);
    if (t) out.push(t);
  }
  return out;
}

/** AsciiDoc (git's documentation sources) → paragraphs. */
export function asciidocParagraphs(src: string): string[] {
  const out: string[] = [];
  for (const block of src.split(/\n\s*\n/)) {
    const lines = block
      .split('\n')
      .filter((l) => !isRule(l) && !/^\s*(\/\/|:[\w-]+:|\[\[|\[[\w,="' -]*\]\s*$|include::|ifdef::|endif::|ifndef::)/.test(l));
    if (!lines.length) continue;
    let t = lines.join(' ');
    t = t
      .replace(/(linkgit|link|gitlink):([\w./-]+)\[(\d*)\]/g, '$2')
      .replace(/\{litdd\}/g, '--')
      .replace(/\{[\w-]+\}/g, '')
      .replace(/`([^`]*)`/g, '$1')
      // 'emphasis' only between a space or bracket and a non-letter: apostrophes ("doesn't") stay
      .replace(/(^|[\s(])'([^'\s][^']*?)'(?=[\s.,;:)]|$)/g, '$1$2')
      .replace(/\*([^*\s][^*]*)\*/g, '$1')
      .replace(/\+\+\+|::\s*$/g, '');
    t = squash(t);
    if (t) out.push(t);
  }
  return out;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', mdash: '—', ndash: '–', hellip: '…', rsquo: '’', lsquo: '‘', rdquo: '”', ldquo: '“', copy: '©', times: '×' };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) && n > 0 && n < 0x110000 ? String.fromCodePoint(n) : ' ';
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** HTML → paragraphs: head, scripts, styles and navigation dropped; block elements break paragraphs. */
export function htmlParagraphs(src: string): string[] {
  let s = src
    .replace(/<head[\s\S]*?<\/head>/gi, ' ')
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<div class="navheader"[\s\S]*?<\/div>/gi, ' ')
    .replace(/<div class="navfooter"[\s\S]*?<\/div>/gi, ' ');
  s = s.replace(/<\/?(p|div|li|dt|dd|h[1-6]|tr|pre|table|ul|ol|dl|br|blockquote|section|title)\b[^>]*>/gi, '\n\n');
  s = s.replace(/<[^>]+>/g, '');
  return s
    .split(/\n\s*\n/)
    .map((b) => squash(decodeEntities(b)))
    .filter((b) => b.length > 0);
}

/** groff inline escapes → their text. */
function groffInline(s: string): string {
  return s
    .replace(/\\f(\(..|\[[^\]]*\]|.)/g, '')
    .replace(/\\s[+-]?\d/g, '')
    .replace(/\\\(aq/g, "'")
    .replace(/\\\(dq|\\\(lq|\\\(rq/g, '"')
    .replace(/\\\(em|\\\(en/g, '—')
    .replace(/\\\(bu/g, '•')
    .replace(/\\\(co/g, '©')
    .replace(/\\\(.{2}/g, '')
    .replace(/\\\[[^\]]*\]/g, '')
    .replace(/\\\*(\(..|\[[^\]]*\]|.)/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\[&~0|^%:]/g, (m) => (m === '\\~' || m === '\\0' ? ' ' : ''))
    .replace(/\\e/g, '\\')
    .replace(/\\ /g, ' ')
    .replace(/\\c$/g, '');
}

const GROFF_BREAK = new Set(['PP', 'LP', 'P', 'TP', 'IP', 'HP', 'SH', 'SS', 'sp', 'br', 'RS', 'RE', 'nf', 'fi', 'EX', 'EE', 'TQ', 'in', 'TS', 'TE']);
const GROFF_TEXT = new Set(['B', 'I', 'BR', 'BI', 'IB', 'IR', 'RB', 'RI', 'SM', 'SB', 'UR', 'MT', 'SH', 'SS', 'IP', 'Nm', 'Nd', 'Ar', 'Fn', 'Fa', 'Ft', 'Xr']);

/** man(7) groff source → paragraphs (headings become their own short paragraph). */
export function manParagraphs(src: string): string[] {
  const paras: string[] = [];
  let cur: string[] = [];
  let inTable = false;
  const flush = () => {
    const t = squash(cur.join(' '));
    if (t) paras.push(t);
    cur = [];
  };
  for (const raw of src.split('\n')) {
    if (/^\.\s*\\"/.test(raw) || /^'\\"/.test(raw)) continue;
    const m = /^[.']\s*(\w+)\s*(.*)$/.exec(raw);
    if (m) {
      const [, macro, rest] = m;
      if (macro === 'TS') inTable = true;
      if (macro === 'TE') inTable = false;
      if (GROFF_BREAK.has(macro)) flush();
      if (GROFF_TEXT.has(macro) && rest) {
        const args = rest.match(/"[^"]*"|\S+/g) ?? [];
        const joined = ['BR', 'BI', 'IB', 'IR', 'RB', 'RI'].includes(macro) ? args.map((a) => a.replace(/^"|"$/g, '')).join('') : args.map((a) => a.replace(/^"|"$/g, '')).join(' ');
        cur.push(groffInline(joined));
        if (macro === 'SH' || macro === 'SS') flush();
      }
      continue;
    }
    if (inTable) continue;
    if (!raw.trim()) {
      flush();
      continue;
    }
    cur.push(groffInline(raw));
  }
  flush();
  return paras;
}

export interface WindowOptions {
  /** paragraphs shorter than this join the next one (a heading joins its first paragraph); default 24 */
  minWords?: number;
  /** longer text is cut into windows of at most this many words; default 80 */
  maxWords?: number;
}

/**
 * Paragraphs of one document → training windows: short paragraphs (headings,
 * one-line items) join the next, long ones are cut, so each window is about
 * one topic at a length the encoder reads whole.
 */
export function paragraphWindows(paragraphs: readonly string[], opts: WindowOptions = {}): string[] {
  const min = opts.minWords ?? 24;
  const max = opts.maxWords ?? 80;
  const out: string[] = [];
  let pending: string[] = [];
  const emit = (ws: string[]) => {
    for (let i = 0; i < ws.length; i += max) {
      const w = ws.slice(i, i + max);
      if (w.length < min / 2 && out.length && i > 0) out[out.length - 1] += ' ' + w.join(' ');
      else out.push(w.join(' '));
    }
  };
  for (const p of paragraphs) {
    pending.push(...(p.match(/\S+/g) ?? []));
    if (pending.length >= min) {
      emit(pending);
      pending = [];
    }
  }
  if (pending.length >= min / 2) emit(pending);
  return out;
}

/** Share of characters that are letters: code listings and tables score low. */
export function letterShare(s: string): number {
  if (!s.length) return 0;
  let n = 0;
  for (const ch of s) if (/\p{L}/u.test(ch)) n++;
  return n / s.length;
}
