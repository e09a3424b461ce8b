import * as assert from 'assert';
import { existsSync, promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadBeir, loadQrels, readBeirItems } from '../../src/core/beir';
import { readCorpus, readQueries } from '../../src/train/views';
import { InputError } from '../../src/core/errors';

const ROOT = path.resolve(__dirname, '../../..');
const SCIFACT = [path.resolve(ROOT, '../shared/data/scifact'), path.join(ROOT, 'shared/data/scifact')].find((d) => existsSync(d)) ?? '';

describe('core/beir', () => {
  let root: string;
  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-beir-'));
  });
  after(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  /** A dataset folder with the given files (paths relative to it). */
  async function dataset(name: string, files: Record<string, string>): Promise<string> {
    const dir = path.join(root, name);
    for (const [rel, text] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fsp.writeFile(path.join(dir, rel), text);
    }
    return dir;
  }

  const good = {
    'corpus.jsonl': '{"_id":"d1","title":"Title","text":"body one"}\n{"_id":"d2","title":"","text":" body two "}\n{"_id":3,"text":"no title"}\n',
    'queries.jsonl': '{"_id":"q1","text":"first"}\n{"_id":"q2","text":"unjudged"}\n{"_id":"q3","text":"third"}\n',
    'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq3\t3\t2\nq3\tgone\t1\n',
  };

  it('loads corpus, judged queries and qrels; doc text is title + " " + text, trimmed', async () => {
    const ds = await loadBeir(await dataset('good', good), 'test');
    assert.deepStrictEqual(ds.corpus, [
      { id: 'd1', text: 'Title body one' },
      { id: 'd2', text: 'body two' },
      { id: '3', text: 'no title' },
    ]);
    assert.deepStrictEqual(
      ds.queries.map((q) => q.id),
      ['q1', 'q3'],
      'only queries judged in the split, in file order',
    );
    assert.deepStrictEqual(ds.qrels.get('q3'), new Map([['3', 2], ['gone', 1]]));
    assert.strictEqual(ds.unknownDocs, 1);
  });

  it('names a missing split and lists the available ones', async () => {
    const dir = await dataset('split', good);
    await assert.rejects(loadBeir(dir, 'dev'), (e: unknown) => e instanceof InputError && /dev\.tsv: split "dev" not found \(available splits: test\)/.test(e.message));
  });

  it('names file, line and field for a bad corpus line', async () => {
    const dir = await dataset('badcorpus', { ...good, 'corpus.jsonl': '{"_id":"d1","text":"a"}\n{"_id":"d2","text":5}\n' });
    await assert.rejects(loadBeir(dir, 'test'), (e: unknown) => e instanceof InputError && e.message.endsWith('corpus.jsonl:2: field "text": expected a string, got number'));
  });

  it('refuses malformed JSON and duplicate ids instead of skipping them', async () => {
    const broken = await dataset('broken', { ...good, 'queries.jsonl': '{"_id":"q1","text":"a"}\n{oops\n' });
    await assert.rejects(loadBeir(broken, 'test'), /queries\.jsonl:2: invalid JSON/);
    const dup = await dataset('dup', { ...good, 'corpus.jsonl': '{"_id":"d1","text":"a"}\n\n{"_id":"d1","text":"b"}\n' });
    await assert.rejects(loadBeir(dup, 'test'), /corpus\.jsonl:3: field "_id": duplicate id "d1" \(first on line 1\)/);
  });

  it('one reader for every BEIR file: strict by default, skipping with onError, titles kept apart for the trainer', async () => {
    const dir = await dataset('reader', { ...good, 'corpus.jsonl': '{"_id":"d1","title":" T ","text":"a"}\n{"_id":"d2","text":5}\n{"_id":"d3","text":"c"}\n' });
    const file = path.join(dir, 'corpus.jsonl');
    const strict = async () => {
      for await (const _ of readBeirItems(file, { withTitle: true })) void _;
    };
    await assert.rejects(strict(), /corpus\.jsonl:2: field "text": expected a string, got number/);
    const errors: string[] = [];
    const items = [];
    for await (const it of readBeirItems(file, { withTitle: true, onError: (e) => errors.push(e.message) })) items.push(it);
    assert.deepStrictEqual(items, [
      { id: 'd1', title: ' T ', text: 'a', line: 1 },
      { id: 'd3', text: 'c', line: 3 },
    ]);
    assert.strictEqual(errors.length, 1);
    assert.match(errors[0], /corpus\.jsonl:2: field "text"/);
    // the bundle trainer's readers go through it too: title trimmed and apart, queries as a map
    const g = await dataset('trainer', good);
    assert.deepStrictEqual(await readCorpus(g), [
      { id: 'd1', title: 'Title', text: 'body one' },
      { id: 'd2', title: '', text: ' body two ' },
      { id: '3', title: '', text: 'no title' },
    ]);
    assert.deepStrictEqual([...(await readQueries(g))], [['q1', 'first'], ['q2', 'unjudged'], ['q3', 'third']]);
    // cancellation is honoured every 2,000 lines
    const big = await dataset('big', { ...good, 'corpus.jsonl': Array.from({ length: 4500 }, (_, i) => `{"_id":"d${i}","text":"t"}`).join('\n') + '\n' });
    const ac = new AbortController();
    ac.abort();
    const cancelled = async () => {
      for await (const _ of readBeirItems(path.join(big, 'corpus.jsonl'), { withTitle: false, signal: ac.signal })) void _;
    };
    await assert.rejects(cancelled(), /cancelled/);
  });

  it('names file, line and field for bad qrels lines', async () => {
    const short = await dataset('short', { ...good, 'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\n' });
    await assert.rejects(loadBeir(short, 'test'), /test\.tsv:2: field "score": missing/);
    const nan = await dataset('nan', { ...good, 'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\n' });
    await assert.rejects(loadBeir(nan, 'test'), /test\.tsv:3: field "score": expected a number, got "high"/);
    const unknown = await dataset('unknownq', { ...good, 'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n' });
    await assert.rejects(loadBeir(unknown, 'test'), /test\.tsv:3: field "query-id": query "q9" is not in/);
  });

  it('keeps the first judgement of a file without a header', async () => {
    const dir = await dataset('noheader', { 'q.tsv': 'q1\td1\t1\nq2\td2\t2\n' });
    const { qrels } = await loadQrels(path.join(dir, 'q.tsv'));
    assert.deepStrictEqual([...qrels.keys()], ['q1', 'q2']);
  });

  it('loads the shared SciFact test split', async function () {
    if (!SCIFACT) this.skip();
    const ds = await loadBeir(SCIFACT, 'test');
    assert.strictEqual(ds.corpus.length, 5183);
    assert.strictEqual(ds.queries.length, 300);
    assert.strictEqual(ds.unknownDocs, 0);
  });
});
