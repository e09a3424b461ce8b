/**
 * Readers for the exported files, written from the formats' rules rather than
 * from the writer: an RFC 4180 CSV reader and a GFM table row splitter. The
 * unit tests and the real-host export test read the files back with them.
 */
import * as assert from 'assert';

/** RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks; records end with CRLF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (ch === '"') (quoted = false), i++;
      else (field += ch), i++;
    } else if (ch === '"') {
      assert.strictEqual(field, '', `a quote inside an unquoted field at ${i}`);
      quoted = true;
      i++;
    } else if (ch === ',') (row.push(field), (field = ''), i++);
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      (row = []), (field = ''), (i += 2);
    } else {
      assert.ok(ch !== '\n' && ch !== '\r', `a bare line break outside quotes at ${i}`);
      (field += ch), i++;
    }
  }
  assert.ok(!quoted, 'an unterminated quoted field');
  assert.ok(field === '' && row.length === 0, 'the last record is not ended by CRLF');
  return rows;
}

/** The cells of a Markdown table row, split at unescaped pipes and unescaped (GFM: `\|` is a pipe, `\\` a backslash). */
export function mdRow(line: string): string[] {
  assert.ok(line.startsWith('| ') && line.endsWith(' |'), line);
  const cells: string[] = [];
  let cur = '';
  for (let i = 1; i < line.length - 1; i++) {
    const ch = line[i];
    if (ch === '\\') (cur += line[i + 1]), i++;
    else if (ch === '|') (cells.push(cur.trim()), (cur = ''));
    else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

/** The Markdown tables under a heading: each a list of rows (header first, the --- row dropped). */
export function tablesUnder(md: string, heading: string): string[][][] {
  const lines = md.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `no heading ${heading}`);
  const end = lines.findIndex((l, i) => i > start && /^#{1,2} /.test(l));
  const tables: string[][][] = [];
  let cur: string[][] | undefined;
  for (const l of lines.slice(start + 1, end < 0 ? undefined : end)) {
    if (l.startsWith('|')) {
      if (!cur) tables.push((cur = []));
      if (!/^\|( ---:? \|)+$/.test(l)) cur.push(mdRow(l));
    } else cur = undefined;
  }
  return tables;
}
