import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { beirLayout, diagnosticMessage, LatestRunner, looksLikeJsonl, parsePairLine, readBeirPairs, SUPERSEDED } from '../../src/core/cases';
import { InputError } from '../../src/core/errors';

describe('core/cases: input', () => {
  describe('parsePairLine', () => {
    it('parses a pair, with or without a label', () => {
      const r = parsePairLine('{"query_id": 1, "doc_id": "d", "query": "q", "doc": "text", "label": 1}', 'f.jsonl', 3);
      assert.strictEqual(r.kind, 'pair');
      if (r.kind === 'pair') assert.deepStrictEqual(r.pair, { query_id: '1', doc_id: 'd', query: 'q', doc: 'text', label: 1 });
      assert.strictEqual(parsePairLine('  ', 'f.jsonl', 4).kind, 'blank');
    });

    it('names file, line and field of a bad line', () => {
      const cases: [string, string | undefined, RegExp][] = [
        ['{"query_id": "1", "doc_id": "d", "doc": "x"}', 'query', /missing/],
        ['{"query_id": "1", "doc_id": "d", "query": 5, "doc": "x"}', 'query', /expected a string, got number/],
        ['{"query_id": "1", "doc_id": "d", "query": "q", "doc": "   "}', 'doc', /must not be empty/],
        ['{"query_id": "1", "doc_id": "d", "query": "q", "doc": "x", "label": "yes"}', 'label', /expected a number/],
        ['{"query_id": "1", "doc_id": "d", "query": "q"', undefined, /invalid JSON/],
        ['[1, 2]', undefined, /expected a JSON object, got array/],
      ];
      for (const [text, field, detail] of cases) {
        const r = parsePairLine(text, 'f.jsonl', 7);
        assert.strictEqual(r.kind, 'error', text);
        if (r.kind !== 'error') continue;
        assert.strictEqual(r.error.file, 'f.jsonl');
        assert.strictEqual(r.error.line, 7);
        assert.strictEqual(r.error.field, field, text);
        assert.match(r.error.message, /^f\.jsonl:7/);
        assert.match(diagnosticMessage(r.error), detail);
        if (field) assert.ok(diagnosticMessage(r.error).startsWith(`field "${field}": `), diagnosticMessage(r.error));
      }
    });

    it('skips a byte order mark on line 1', () => {
      assert.strictEqual(parsePairLine('\ufeff{"query_id": "1", "doc_id": "d", "query": "q", "doc": "x"}', 'f', 1).kind, 'pair');
    });
  });

  it('looksLikeJsonl: trusts a JSONL extension, otherwise needs a JSON object on the first line', () => {
    assert.strictEqual(looksLikeJsonl('a.jsonl', 'not json'), true);
    assert.strictEqual(looksLikeJsonl('a.NDJSON', undefined), true);
    assert.strictEqual(looksLikeJsonl('README.md', '# Title'), false);
    assert.strictEqual(looksLikeJsonl('data.json', '[{"a": 1}]'), false);
    assert.strictEqual(looksLikeJsonl('pairs.txt', '{"query_id": "1"}'), true);
    assert.strictEqual(looksLikeJsonl('pairs.txt', '{"query_id": '), false);
    assert.strictEqual(looksLikeJsonl('empty.txt', undefined), false);
  });

  describe('LatestRunner', () => {
    it('runs one at a time and answers a replaced request of the same slot as superseded', async () => {
      let state = 0;
      const seen: number[] = [];
      let release!: () => void;
      let gate = new Promise<void>((r) => (release = r));
      const runner = new LatestRunner(async () => {
        const s = state;
        seen.push(s);
        await gate;
        return s;
      });
      state = 1;
      const a = runner.request('f1'); // starts at once with state 1
      await new Promise((r) => setImmediate(r));
      state = 2;
      const b = runner.request('f1'); // waits
      state = 3;
      const c = runner.request('f1'); // replaces b
      state = 4;
      const d = runner.request('f2'); // waits beside c
      release();
      gate = Promise.resolve();
      assert.strictEqual(await a, 1);
      assert.strictEqual(await b, SUPERSEDED);
      assert.strictEqual(await c, 4, 'the next run sees every change made before it starts');
      assert.strictEqual(await d, 4);
      await runner.idle();
      assert.deepStrictEqual(seen, [1, 4]);
    });

    it('rejects the requests of a failed run and keeps working', async () => {
      let fail = true;
      const runner = new LatestRunner(async () => {
        if (fail) throw new Error('boom');
        return 'ok';
      });
      await assert.rejects(runner.request('x'), /boom/);
      fail = false;
      assert.strictEqual(await runner.request('x'), 'ok');
    });
  });

  describe('BEIR folders', () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-cases-beir-'));
      fs.mkdirSync(path.join(dir, 'qrels'));
      fs.writeFileSync(
        path.join(dir, 'corpus.jsonl'),
        [
          '{"_id": "d1", "title": "T1", "text": "one"}',
          '{"_id": "d2", "title": "", "text": "two"}',
          'not json',
          '{"_id": "d3", "text": "three"}',
          '{"_id": "dx", "text": "never judged"}',
          '{"_id": "d4"}',
        ].join('\n'),
      );
      fs.writeFileSync(path.join(dir, 'queries.jsonl'), ['{"_id": "q2", "text": "second"}', '{"_id": "q1", "text": "first"}', '{"_id": "q9", "text": "unjudged"}'].join('\n'));
      fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t0\nq2\td2\t2\nq2\td4\t1\nq2\tgone\t1\nq7\td1\t1\n');
      fs.writeFileSync(path.join(dir, 'qrels', 'train.tsv'), 'query-id\tcorpus-id\tscore\nq9\td1\t1\n');
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('finds the layout, preferring the test split', async () => {
      const l = await beirLayout(dir);
      assert.ok(l);
      assert.strictEqual(l.split, 'test');
      assert.strictEqual((await beirLayout(dir, 'train'))?.split, 'train');
      assert.strictEqual(await beirLayout(dir, 'dev'), undefined);
      assert.strictEqual(await beirLayout(path.join(dir, 'qrels')), undefined);
    });

    it("builds each judged query's pairs from its judged documents only, reporting bad lines", async () => {
      const errors: InputError[] = [];
      const r = await readBeirPairs((await beirLayout(dir))!, (e) => errors.push(e));
      assert.deepStrictEqual(
        r.pairs.map((p) => [p.query_id, p.doc_id, p.query, p.doc, p.label]),
        [
          ['q2', 'd2', 'second', 'two', 2],
          ['q1', 'd1', 'first', 'T1 one', 1],
          ['q1', 'd3', 'first', 'three', 0],
        ],
      );
      // d4 is on a malformed line (no text), "gone" is not in the corpus; q7 is not in queries.jsonl
      assert.strictEqual(r.missingDocs, 2);
      assert.strictEqual(r.missingQueries, 1);
      assert.deepStrictEqual(
        errors.map((e) => [path.basename(e.file), e.line, e.field ?? null]),
        [
          ['corpus.jsonl', 3, null],
          ['corpus.jsonl', 6, 'text'],
        ],
      );
    });
  });
});
