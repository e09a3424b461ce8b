import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { InputError } from '../../src/core/errors';
import { JsonlRecord, JsonlWriter, optionalNumber, readJsonl, readLines, requireId, requireObject, requireString } from '../../src/core/jsonl';
import { parsePair } from '../../src/core/pairs';

async function collect(file: string, stdin?: NodeJS.ReadableStream): Promise<JsonlRecord[]> {
  const out: JsonlRecord[] = [];
  for await (const r of readJsonl(file, { stdin })) out.push(r);
  return out;
}

describe('core/jsonl', () => {
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-jsonl-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, content: string | Buffer) => {
    const f = path.join(dir, name);
    await fsp.writeFile(f, content);
    return f;
  };

  it('yields values with 1-based physical line numbers and skips blank lines', async () => {
    const f = await write('a.jsonl', '{"a":1}\n\n   \n{"a":2}\n');
    const recs = await collect(f);
    assert.deepStrictEqual(
      recs.map((r) => [r.line, r.value]),
      [
        [1, { a: 1 }],
        [4, { a: 2 }],
      ],
    );
  });

  it('turns a malformed line into an error record and keeps reading', async () => {
    const f = await write('bad.jsonl', '{"a":1}\n{"a":\n{"a":3}');
    const recs = await collect(f);
    assert.strictEqual(recs.length, 3);
    assert.deepStrictEqual(recs[0].value, { a: 1 });
    assert.ok(recs[1].error instanceof InputError);
    assert.strictEqual(recs[1].error.line, 2);
    assert.match(recs[1].error.message, /bad\.jsonl:2: invalid JSON/);
    assert.deepStrictEqual(recs[2].value, { a: 3 }, 'last line without a newline is read too');
  });

  it('strips a UTF-8 BOM and CRLF line endings, and decodes multi-byte text', async () => {
    const f = await write('bom.jsonl', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"t":"café"}\r\n{"t":"naïve – ok"}\r\n', 'utf8')]));
    const recs = await collect(f);
    assert.deepStrictEqual(
      recs.map((r) => r.value),
      [{ t: 'café' }, { t: 'naïve – ok' }],
    );
  });

  it('keeps a multi-byte character split across stream chunks intact', async () => {
    const stdin = new PassThrough();
    const bytes = Buffer.from('{"t":"é"}\n', 'utf8');
    const split = bytes.indexOf(0xc3) + 1; // between the two bytes of "é"
    stdin.write(bytes.subarray(0, split));
    stdin.end(bytes.subarray(split));
    const recs = await collect('-', stdin);
    assert.deepStrictEqual(recs[0].value, { t: 'é' });
  });

  it('reads stdin for "-" and names it <stdin> in errors', async () => {
    const stdin = new PassThrough();
    stdin.end('{"x":1}\nnope\n');
    const recs = await collect('-', stdin);
    assert.deepStrictEqual(recs[0].value, { x: 1 });
    assert.match(recs[1].error!.message, /^<stdin>:2: invalid JSON/);
  });

  it('rejects an empty file (or one with only blank lines) with a clear error', async () => {
    for (const content of ['', '\n\n  \r\n']) {
      const f = await write('empty.jsonl', content);
      await assert.rejects(collect(f), (e: unknown) => e instanceof InputError && /empty\.jsonl: file is empty: no JSON lines/.test(e.message));
    }
  });

  it('reports a missing file as an InputError naming it', async () => {
    await assert.rejects(collect(path.join(dir, 'nope.jsonl')), (e: unknown) => e instanceof InputError && /nope\.jsonl: file not found/.test(e.message));
  });

  it('readLines reports the last line without newline and keeps empty lines', async () => {
    const f = await write('lines.tsv', 'a\r\n\r\nb');
    const lines: string[] = [];
    for await (const l of readLines(f)) lines.push(`${l.line}:${l.text}`);
    assert.deepStrictEqual(lines, ['1:a', '2:', '3:b']);
  });

  it('a line longer than the limit is an InputError naming file and line, not the engine\'s "Invalid string length"', async () => {
    const f = await write('toolong.jsonl', `{"a":1}\n{"a":2}\n${'y'.repeat(5000)}\n{"a":4}\n`);
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const l of readLines(f, { maxLineBytes: 1000 })) seen.push(l.line);
      })(),
      (e: unknown) => e instanceof InputError && e.code === 'E_LINE_TOO_LONG' && e.line === 3 && e.message === `${f}:3: line is longer than 1000 bytes`,
    );
    assert.deepStrictEqual(seen, [1, 2]);
  });

  it('reads a long line in work linear in its length: each character is searched for a newline about once', async () => {
    // An 8 MB line arriving in 64 KiB chunks, then short lines split across chunk boundaries.
    // Counted, not timed: the characters indexOf('\n') is asked to scan. Searching the
    // growing line from its start after each chunk scans ~64 MB here (quadratic).
    const big = 'x'.repeat(8 << 20);
    const input = new PassThrough({ highWaterMark: 1 << 16 });
    const tail = '\r\n{"a":1}\n\n{"a":2}';
    let scanned = 0;
    // the reader may search strings or bytes: both are counted
    const indexOf = String.prototype.indexOf;
    const bufIndexOf = Buffer.prototype.indexOf;
    String.prototype.indexOf = function (this: string, search: string, from?: number): number {
      const at = indexOf.call(this, search, from);
      if (search === '\n') scanned += (at < 0 ? this.length : at + 1) - Math.max(0, from ?? 0);
      return at;
    };
    Buffer.prototype.indexOf = function (this: Buffer, value: string | number | Uint8Array, from?: number, enc?: BufferEncoding): number {
      const at = bufIndexOf.call(this, value, from, enc);
      if (value === 0x0a || value === '\n') scanned += (at < 0 ? this.length : at + 1) - Math.max(0, from ?? 0);
      return at;
    } as typeof bufIndexOf;
    const lines: { line: number; text: string }[] = [];
    try {
      const feed = (async () => {
        for (let i = 0; i < big.length; i += 1 << 16) if (!input.write(big.slice(i, i + (1 << 16)))) await new Promise((r) => input.once('drain', r));
        input.end(tail);
      })();
      for await (const l of readLines('-', { stdin: input })) lines.push(l);
      await feed;
    } finally {
      String.prototype.indexOf = indexOf;
      Buffer.prototype.indexOf = bufIndexOf;
    }
    assert.deepStrictEqual(
      lines.map((l) => [l.line, l.text.length]),
      [
        [1, big.length],
        [2, 7],
        [3, 0],
        [4, 7],
      ],
    );
    assert.ok(lines[0].text === big, 'the long line comes back whole');
    const total = big.length + tail.length;
    assert.ok(scanned >= total - 16, `the newline search was counted (${scanned})`);
    assert.ok(scanned <= 2 * total, `${scanned} characters scanned for ${total} read`);
  });

  describe('field helpers', () => {
    const loc = { file: 'pairs.jsonl', line: 7 };
    it('names file, line and field for a missing field', () => {
      assert.throws(() => requireString({}, 'doc', loc), (e: unknown) => e instanceof InputError && e.message === 'pairs.jsonl:7: field "doc": missing' && e.field === 'doc');
    });
    it('names the wrong type', () => {
      assert.throws(() => requireString({ doc: 3 }, 'doc', loc), /pairs\.jsonl:7: field "doc": expected a string, got number/);
      assert.throws(() => optionalNumber({ label: 'x' }, 'label', loc), /field "label": expected a number, got string/);
      assert.throws(() => requireObject([1], loc), /pairs\.jsonl:7: expected a JSON object, got array/);
      assert.throws(() => requireId({ id: null }, 'id', loc), /field "id": expected a string or number, got null/);
    });
    it('normalises numeric ids to strings and lets optional fields be absent', () => {
      assert.strictEqual(requireId({ id: 42 }, 'id', loc), '42');
      assert.strictEqual(optionalNumber({}, 'label', loc), undefined);
    });
  });

  describe('parsePair', () => {
    const loc = { file: 'p.jsonl', line: 3 };
    it('accepts string or number ids and an optional label', () => {
      assert.deepStrictEqual(parsePair({ query_id: 1, doc_id: 'd', query: 'q', doc: 'x', label: 1 }, loc), {
        query_id: '1',
        doc_id: 'd',
        query: 'q',
        doc: 'x',
        label: 1,
      });
      assert.strictEqual(parsePair({ query_id: 'a', doc_id: 'b', query: 'q', doc: 'x' }, loc).label, undefined);
    });
    it('names the offending field', () => {
      assert.throws(() => parsePair({ query_id: 'a', doc_id: 'b', query: 'q' }, loc), /p\.jsonl:3: field "doc": missing/);
      assert.throws(() => parsePair({ query_id: 'a', doc_id: 'b', query: 'q', doc: 'x', label: '1' }, loc), /field "label": expected a number, got string/);
      assert.throws(() => parsePair({ query_id: '', doc_id: 'b', query: 'q', doc: 'x' }, loc), /field "query_id": must not be empty/);
    });
  });

  describe('JsonlWriter', () => {
    it('writes one line per record to a file, readable while still open', async () => {
      const f = path.join(dir, 'out.jsonl');
      const w = await JsonlWriter.open(f);
      await w.write({ id: 'a', v: [1, 2] });
      await w.write({ id: 'b' });
      // Nothing is held back in a user-space buffer: a crash here keeps both lines.
      await new Promise((r) => setTimeout(r, 20));
      assert.strictEqual(await fsp.readFile(f, 'utf8'), '{"id":"a","v":[1,2]}\n{"id":"b"}\n');
      await w.close();
    });

    it('writes to the given stdout for "-" and leaves it open', async () => {
      const stdout = new PassThrough();
      const chunks: string[] = [];
      stdout.on('data', (d: Buffer) => chunks.push(d.toString()));
      const w = await JsonlWriter.open('-', stdout);
      await w.write({ x: 1 });
      await w.close();
      assert.strictEqual(stdout.writableEnded, false);
      assert.strictEqual(chunks.join(''), '{"x":1}\n');
    });

    it('waits for drain when the stream is full', async () => {
      const slow = new PassThrough({ highWaterMark: 16 });
      const w = await JsonlWriter.open('-', slow);
      let written = false;
      const p = w.write({ long: 'x'.repeat(100) }).then(() => (written = true));
      await new Promise((r) => setImmediate(r));
      assert.strictEqual(written, false, 'write resolves only after the reader drains');
      slow.resume();
      await p;
      assert.strictEqual(written, true);
    });

    it('reports an unwritable path as an InputError naming it', async () => {
      const bad = path.join(dir, 'no-such-dir', 'out.jsonl');
      await assert.rejects(JsonlWriter.open(bad), (e: unknown) => e instanceof InputError && e.message.startsWith(`${bad}: cannot write`));
    });
  });
});
