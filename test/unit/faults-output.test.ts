/**
 * Fault injection without the model: outputs that are inputs under another
 * name, unwritable or missing folders, a disk that fills up, stale outputs,
 * bad numeric flags, ids above 2^53, invalid UTF-8, empty texts and steering
 * configs for another model or SAE. Every case here is one that the CLI got
 * wrong (data lost, or a wrong result with exit 0) before its output writer,
 * strict options and checks existed. Runs in-process: no case reaches the
 * encoder, so a case that did would fail on the missing model instead.
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { UsageError } from '../../src/cli/context';
import { decimal, wholeNumber } from '../../src/cli/options';
import { OutputFile } from '../../src/cli/output';
import { parsePairLine } from '../../src/core/cases';
import { InputError } from '../../src/core/errors';
import { parseSteeringConfig, serializeSteeringConfig, steeringMismatch } from '../../src/core/explain/steering';
import { ExactNumber, firstInvalidUtf8, parseJson, readJsonl, readLines, requireId, requireNumber } from '../../src/core/jsonl';
import { clashingInput, linesBlock, tempPathFor } from '../../src/core/output';
import { parsePair } from '../../src/core/pairs';
import { firstNonFinite } from '../../src/engine/encoder';
import { cliInProcess } from './helpers/cli';

/** The CLI in-process with an empty model cache: a run that got as far as loading a model would fail on that instead. */
const cli = (cacheDir: string, argv: string[], stdinText?: string | Buffer) => cliInProcess(['--cache-dir', cacheDir, '--device', 'cpu', ...argv], stdinText);

const PAIR = (q: string | number, d: string, query = 'why is the sky blue', doc = 'Rayleigh scattering') => JSON.stringify({ query_id: q, doc_id: d, query, doc, label: 1 });
const TWO_PAIRS = [PAIR('q1', 'd1'), PAIR('q2', 'd2')].join('\n') + '\n';

/** Mounts a tmpfs of `size` at a new folder (read-only with ro); undefined where mounting is not allowed. */
function tryMount(dir: string, opts: string): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('faults: outputs, options and inputs (no model)', function () {
  this.timeout(60_000);
  let dir: string;
  let cache: string;
  const mounts: string[] = [];
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-faults-'));
    cache = path.join(dir, 'empty-cache');
    await fsp.mkdir(cache);
  });
  after(async () => {
    for (const m of mounts) execFileSync('umount', [m], { stdio: 'ignore' });
    await fsp.rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, text: string | Buffer) => {
    const f = path.join(dir, name);
    await fsp.mkdir(path.dirname(f), { recursive: true });
    await fsp.writeFile(f, text);
    return f;
  };
  const leftovers = async (d: string) => (await fsp.readdir(d)).filter((n) => n.endsWith('.partial'));

  describe('an output that is an input under another name is refused, the input untouched', () => {
    it('score -o a hard link to the input (exit 2)', async () => {
      const input = await file('hard/v.jsonl', TWO_PAIRS);
      const alias = path.join(dir, 'hard', 'alias.jsonl');
      await fsp.link(input, alias);
      const r = await cli(cache, ['score', '-i', input, '-o', alias]);
      assert.strictEqual(r.code, 2, r.stderr);
      assert.match(r.stderr, /--output .*alias\.jsonl is the same file as the input .*v\.jsonl \(a hard or symbolic link to it\)/);
      assert.strictEqual(await fsp.readFile(input, 'utf8'), TWO_PAIRS);
    });

    it('embed -o a symbolic link to the input (exit 2)', async () => {
      const text = '{"id":"a","text":"x"}\n{"id":"b","text":"y"}\n';
      const input = await file('sym/in.jsonl', text);
      const alias = path.join(dir, 'sym', 'link.jsonl');
      await fsp.symlink(input, alias);
      const r = await cli(cache, ['embed', '-i', input, '-o', alias]);
      assert.strictEqual(r.code, 2, r.stderr);
      assert.match(r.stderr, /is the same file as the input/);
      assert.strictEqual(await fsp.readFile(input, 'utf8'), text);
    });

    it('explain -o the input by a path that resolves to it (exit 2)', async () => {
      const input = await file('ex/p.jsonl', TWO_PAIRS);
      const r = await cli(cache, ['explain', '-i', input, '-o', path.join(dir, 'ex', '.', '..', 'ex', 'p.jsonl')]);
      assert.strictEqual(r.code, 2, r.stderr);
      assert.strictEqual(await fsp.readFile(input, 'utf8'), TWO_PAIRS);
    });

    it('eval DIR -o DIR/corpus.jsonl and --run DIR/qrels/test.tsv (exit 2, dataset untouched)', async () => {
      const corpus = await file('beir/corpus.jsonl', '{"_id":"d1","title":"","text":"Rayleigh scattering"}\n');
      await file('beir/queries.jsonl', '{"_id":"q1","text":"why is the sky blue"}\n');
      const qrels = await file('beir/qrels/test.tsv', 'query-id\tcorpus-id\tscore\nq1\td1\t1\n');
      const before = [await fsp.readFile(corpus, 'utf8'), await fsp.readFile(qrels, 'utf8')];
      for (const argv of [
        ['-o', corpus],
        ['--run', qrels],
        ['-o', path.join(dir, 'beir', 'ok.json'), '--run', path.join(dir, 'beir', 'ok.json')],
      ]) {
        const r = await cli(cache, ['eval', path.join(dir, 'beir'), ...argv]);
        assert.strictEqual(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /same file/);
      }
      assert.deepStrictEqual([await fsp.readFile(corpus, 'utf8'), await fsp.readFile(qrels, 'utf8')], before);
    });

    it('views generate -o a hard link to its input (exit 2, corpus untouched)', async () => {
      const corpus = await file('views/corpus.jsonl', '{"_id":"d1","title":"","text":"x"}\n');
      const alias = path.join(dir, 'views', 'views.jsonl');
      await fsp.link(corpus, alias);
      const r = await cli(cache, ['views', 'generate', '-i', corpus, '-o', alias, '--endpoint', 'http://127.0.0.1:9/v1', '--llm-model', 'm']);
      assert.strictEqual(r.code, 2, r.stderr);
      assert.match(r.stderr, /is the same file as the input/);
      assert.strictEqual(await fsp.readFile(corpus, 'utf8'), '{"_id":"d1","title":"","text":"x"}\n');
    });

    it('steer --eval s.jsonl --save s.jsonl (exit 2, pairs untouched)', async () => {
      const pairs = await file('steer/s.jsonl', TWO_PAIRS);
      const r = await cli(cache, ['steer', '--eval', pairs, '--save', pairs]);
      assert.strictEqual(r.code, 2, r.stderr);
      assert.match(r.stderr, /--save .*s\.jsonl is the same file as the input/);
      assert.strictEqual(await fsp.readFile(pairs, 'utf8'), TWO_PAIRS);
    });
  });

  describe('the output folder is checked before any work, and named', () => {
    it('eval -o and steer --save in a missing folder fail at once naming the file (not a bare ENOENT after the work)', async () => {
      await file('beir2/corpus.jsonl', '{"_id":"d1","title":"","text":"x"}\n');
      await file('beir2/queries.jsonl', '{"_id":"q1","text":"y"}\n');
      await file('beir2/qrels/test.tsv', 'q1\td1\t1\n');
      const out = path.join(dir, 'nowhere', 'metrics.json');
      const e = await cli(cache, ['eval', path.join(dir, 'beir2'), '-o', out]);
      assert.strictEqual(e.code, 1, e.stderr);
      // the model cache is empty: had the work started, the error would be about the model
      assert.strictEqual(e.stderr, `xetrieval: ${out}: folder ${path.dirname(out)} does not exist\n`);
      const pairs = await file('steer2/p.jsonl', TWO_PAIRS);
      const s = await cli(cache, ['steer', '--eval', pairs, '--save', path.join(dir, 'nowhere', 'steer.json')]);
      assert.strictEqual(s.code, 1, s.stderr);
      assert.match(s.stderr, /nowhere\/steer\.json: folder .*nowhere does not exist\n$/);
    });

    it('a folder that cannot be written (read-only file system) is named before any work', async function () {
      const ro = path.join(dir, 'ro');
      await fsp.mkdir(ro);
      if (!tryMount(ro, 'ro,size=64k')) this.skip();
      mounts.push(ro);
      const input = await file('rw/in.jsonl', TWO_PAIRS);
      await file('rw/beir/corpus.jsonl', '{"_id":"d1","title":"","text":"x"}\n');
      await file('rw/beir/queries.jsonl', '{"_id":"q1","text":"y"}\n');
      await file('rw/beir/qrels/test.tsv', 'q1\td1\t1\n');
      for (const argv of [
        ['score', '-i', input, '-o', path.join(ro, 'scores.jsonl')],
        ['steer', '--eval', input, '--save', path.join(ro, 'steer.json')],
        ['eval', path.join(dir, 'rw', 'beir'), '-o', path.join(ro, 'metrics.json')],
        ['eval', path.join(dir, 'rw', 'beir'), '--run', path.join(ro, 'run.trec')],
      ]) {
        const r = await cli(cache, argv);
        assert.strictEqual(r.code, 1, r.stderr);
        // the model cache is empty: had the work started, the error would be about the model
        assert.match(r.stderr, /^xetrieval: .*ro\/(scores\.jsonl|steer\.json|metrics\.json|run\.trec): cannot write in folder .*ro: read-only file system \(EROFS\)\n$/, argv.join(' '));
      }
    });
  });

  describe('the writer: temporary file, whole lines, stale targets', () => {
    it('writes beside the target and replaces it only when finished; no temporary file is left', async () => {
      const target = await file('w/out.jsonl', 'older results\n');
      const out = await OutputFile.open(target, { flag: '--output', inputs: [], stdout: new PassThrough() });
      await out.writeLines(['{"a":1}', '{"a":2}']);
      assert.strictEqual(await fsp.readFile(target, 'utf8'), 'older results\n', 'the target changes only at the end');
      assert.strictEqual((await leftovers(path.dirname(target))).length, 1);
      assert.deepStrictEqual(await out.finish(), { records: 2, removedStale: false });
      assert.strictEqual(await fsp.readFile(target, 'utf8'), '{"a":1}\n{"a":2}\n');
      assert.deepStrictEqual(await leftovers(path.dirname(target)), []);
    });

    it('a symbolic link as output stays a link; the data goes where it points', async () => {
      const real = await file('w/real.jsonl', 'old\n');
      const link = path.join(dir, 'w', 'link-out.jsonl');
      await fsp.symlink(real, link);
      const out = await OutputFile.open(link, { flag: '--output', inputs: [], stdout: new PassThrough() });
      await out.writeLines(['{"b":1}']);
      await out.finish();
      assert.ok((await fsp.lstat(link)).isSymbolicLink());
      assert.strictEqual(await fsp.readFile(real, 'utf8'), '{"b":1}\n');
    });

    it('a run that wrote nothing removes the older output, and says so (embed with only bad lines)', async () => {
      const target = await file('stale/out.jsonl', '{"id":"old","embedding":[1]}\n');
      const input = await file('stale/in.jsonl', '{"id":"a"}\nnot json\n');
      const r = await cli(cache, ['embed', '-i', input, '-o', target]);
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /0 embedded, 2 errors/);
      assert.match(r.stderr, /out\.jsonl: removed the older file there: this run wrote no results to it/);
      assert.strictEqual(fs.existsSync(target), false, 'no older results left to pass for this run');
      assert.deepStrictEqual(await leftovers(path.dirname(target)), []);
    });

    it('eval: when --run is refused, an older -o file is left as it was (the run never started)', async () => {
      await file('keep2/beir/corpus.jsonl', '{"_id":"d1","title":"","text":"x"}\n');
      await file('keep2/beir/queries.jsonl', '{"_id":"q1","text":"y"}\n');
      await file('keep2/beir/qrels/test.tsv', 'q1\td1\t1\n');
      const metrics = await file('keep2/metrics.json', '{"older":true}\n');
      const r = await cli(cache, ['eval', path.join(dir, 'keep2', 'beir'), '-o', metrics, '--run', path.join(dir, 'keep2', 'nowhere', 'run.trec')]);
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /run\.trec: folder .*nowhere does not exist/);
      assert.strictEqual(await fsp.readFile(metrics, 'utf8'), '{"older":true}\n');
      assert.deepStrictEqual(await leftovers(path.join(dir, 'keep2')), []);
    });

    it('a missing input is named before the output is touched', async () => {
      const target = await file('keep/out.jsonl', 'kept\n');
      const r = await cli(cache, ['score', '-i', path.join(dir, 'keep', 'typo.jsonl'), '-o', target]);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /typo\.jsonl: file not found/);
      assert.strictEqual(await fsp.readFile(target, 'utf8'), 'kept\n');
    });

    it('disk full: the error names the file, and the target holds whole lines only', async function () {
      const small = path.join(dir, 'full');
      await fsp.mkdir(small);
      if (!tryMount(small, 'size=16k')) this.skip();
      mounts.push(small);
      const target = path.join(small, 'out.jsonl');
      const out = await OutputFile.open(target, { flag: '--output', inputs: [], stdout: new PassThrough() });
      const line = JSON.stringify({ id: 'x', embedding: Array.from({ length: 60 }, (_, i) => i / 7) });
      let error: unknown;
      let written = 0;
      try {
        for (let i = 0; i < 100; i++) {
          await out.writeLines([line, line, line]);
          written += 3;
        }
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof InputError, `expected a write error, got ${error}`);
      assert.match(error.message, new RegExp(`^${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot write: no space left on the device \\(ENOSPC\\); the ${written} results written before it are kept$`));
      await out.finish();
      const text = await fsp.readFile(target, 'utf8');
      assert.ok(text.endsWith('\n'), 'no half line at the end');
      const lines = text.split('\n').slice(0, -1);
      assert.strictEqual(lines.length, written);
      for (const l of lines) assert.strictEqual(l, line);
    });

    it('core: clashes by path or by device and inode; temporary files sit beside the target', () => {
      const id = { dev: 1, ino: 2 };
      assert.strictEqual(clashingInput({ file: 'a/../b.jsonl' }, [{ file: 'b.jsonl' }])?.file, 'b.jsonl');
      assert.strictEqual(clashingInput({ file: 'alias.jsonl', id }, [{ file: 'v.jsonl', id: { dev: 1, ino: 2 } }])?.file, 'v.jsonl');
      assert.strictEqual(clashingInput({ file: 'other.jsonl', id }, [{ file: 'v.jsonl', id: { dev: 2, ino: 2 } }]), undefined);
      assert.strictEqual(path.dirname(tempPathFor('/x/y/out.jsonl', 7, 1)), '/x/y');
      assert.notStrictEqual(tempPathFor('/x/out.jsonl', 7, 1), tempPathFor('/x/out.jsonl', 7, 2));
      assert.strictEqual(linesBlock(['a', 'b']), 'a\nb\n');
      assert.throws(() => linesBlock(['a\nb']), /more than one line/);
    });

    it('a folder given as output is a usage error', async () => {
      await assert.rejects(OutputFile.open(dir, { flag: '--save', inputs: [], stdout: new PassThrough() }), (e: unknown) => e instanceof UsageError && /is a folder/.test(e.message));
    });
  });

  describe('strict options: a bad number exits 2 naming the flag, before any work', () => {
    it('every numeric flag', async () => {
      const pairs = await file('opts/p.jsonl', TWO_PAIRS);
      const cases: [string[], RegExp][] = [
        [['explain', '-i', pairs, '--tau', 'abc'], /option '--tau <x>' argument 'abc' is invalid/],
        [['explain', '-i', pairs, '--tau', '-1'], /option '--tau <x>' argument '-1' is invalid/],
        [['explain', '-i', pairs, '--tau', '0.5x'], /option '--tau <x>' argument '0.5x' is invalid/],
        [['explain', '-i', pairs, '--examples', 'xyz'], /option '--examples <n>' argument 'xyz' is invalid/],
        [['explain', '-i', pairs, '--examples', '-3'], /option '--examples <n>' argument '-3' is invalid/],
        [['explain', '-i', pairs, '--examples', '2.5'], /option '--examples <n>' argument '2.5' is invalid/],
        [['steer', '--eval', pairs, '--alphas', 'a,b'], /option '--alphas <list>' argument 'a,b' is invalid/],
        [['steer', '--eval', pairs, '--key-features', 'abc'], /option '--key-features <n>' argument 'abc' is invalid/],
        [['--batch-size', '3x', 'score', '-i', pairs], /option '--batch-size <n>' argument '3x' is invalid/],
        [['train', 'bundle', '--data', dir, '--dict-size', 'big'], /option '--dict-size <n>' argument 'big' is invalid/],
        [['train', 'bundle', '--data', dir, '--k', '0'], /option '--k <n>' argument '0' is invalid/],
        [['train', 'bundle', '--data', dir, '--k', '5000'], /--k 5000 must be below --dict-size 4096/],
        [['train', 'bundle', '--data', dir, '--epochs', '1.5'], /option '--epochs <n>' argument '1.5' is invalid/],
        [['train', 'bundle', '--data', dir, '--seed', '-1'], /option '--seed <n>' argument '-1' is invalid/],
        [['train', 'bundle', '--data', dir, '--generic-threshold', '2'], /option '--generic-threshold <share>' argument '2' is invalid/],
        [['train', 'bundle', '--data', dir, '--key-features', '12abc'], /option '--key-features <m\|auto>' argument '12abc' is invalid/],
        [['train', 'bundle', '--data', dir, '--label-sample', 'many'], /option '--label-sample <n>' argument 'many' is invalid/],
        [['train', 'corpus', '--out', dir, '--cap', 'abc'], /option '--cap <n>' argument 'abc' is invalid/],
        [['views', 'generate', '-i', pairs, '-o', path.join(dir, 'v.jsonl'), '--endpoint', 'http://127.0.0.1:9/v1', '--llm-model', 'm', '--concurrency', '0'], /option '--concurrency <n>' argument '0' is invalid/],
        [['views', 'generate', '-i', pairs, '-o', path.join(dir, 'v.jsonl'), '--endpoint', 'http://127.0.0.1:9/v1', '--llm-model', 'm', '--limit', 'x'], /option '--limit <n>' argument 'x' is invalid/],
      ];
      for (const [argv, re] of cases) {
        const r = await cli(cache, argv);
        assert.strictEqual(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re, argv.join(' '));
      }
    });

    it('the parsers take the whole text only', () => {
      const n = wholeNumber(0, 100);
      assert.strictEqual(n(' 7 '), 7);
      for (const bad of ['', 'abc', '3xyz', '-3', '2.5', '1e2', '101', '0x10']) assert.throws(() => n(bad), /expected a whole number from 0 to 100/, bad);
      const x = decimal(0, 1, { minExclusive: true });
      assert.strictEqual(x('0.25'), 0.25);
      assert.strictEqual(x('1e-3'), 0.001);
      for (const bad of ['0', 'NaN', 'Infinity', '.', '0.5.1', '2', '-0.1']) assert.throws(() => x(bad), /expected a number/, bad);
    });
  });

  describe('inputs: exact ids, UTF-8 per line, empty texts', () => {
    it('ids above 2^53 keep their exact text; numbers stay numbers', async () => {
      const v = parseJson('{"query_id":12345678901234567890,"doc_id":9007199254740993,"small":42,"label":1,"x":1.5}') as Record<string, unknown>;
      const loc = { file: 'f', line: 1 };
      assert.ok(v.query_id instanceof ExactNumber);
      assert.strictEqual(requireId(v, 'query_id', loc), '12345678901234567890');
      assert.strictEqual(requireId(v, 'doc_id', loc), '9007199254740993');
      assert.strictEqual(v.small, 42);
      assert.strictEqual(v.x, 1.5);
      // 16+ digits that a double holds exactly stay plain numbers
      assert.strictEqual((parseJson('{"n":10000000000000000}') as { n: unknown }).n, 1e16);
      assert.strictEqual(requireNumber({ label: new ExactNumber('12345678901234567890') }, 'label', loc), 12345678901234567890);
      const f = await file('ids/p.jsonl', '{"query_id":12345678901234567890,"doc_id":"d","query":"q","doc":"d"}\n');
      const recs = [];
      for await (const r of readJsonl(f)) recs.push(r);
      assert.strictEqual(parsePair(recs[0].value, { file: f, line: 1 }).query_id, '12345678901234567890');
      // the editor reads pair lines with the same parser
      const line = parsePairLine('{"query_id":12345678901234567890,"doc_id":"d","query":"q","doc":"d"}', 'f', 1);
      assert.strictEqual(line.kind === 'pair' && line.pair.query_id, '12345678901234567890');
    });

    it('invalid UTF-8 is an error on its own line (file:line), the other lines read', async () => {
      const bad = Buffer.concat([Buffer.from('{"id":"a","text":"ok"}\n{"id":"b","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{"id":"c","text":"été"}\n')]);
      const f = await file('utf8/in.jsonl', bad);
      const recs = [];
      for await (const r of readJsonl(f)) recs.push(r);
      assert.strictEqual(recs.length, 3);
      assert.deepStrictEqual(recs[0].value, { id: 'a', text: 'ok' });
      assert.ok(recs[1].error instanceof InputError);
      assert.strictEqual(recs[1].error.message, `${f}:2: not valid UTF-8 (byte 22 of the line); save the file as UTF-8`);
      assert.deepStrictEqual(recs[2].value, { id: 'c', text: 'été' });
      // a BOM and CRLF are still taken off; a character split across read chunks is whole
      const lines = [];
      for await (const l of readLines('-', { stdin: chunked([Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0xc3]), Buffer.from([0xa9, 0x0d, 0x0a, 0x62])]) })) lines.push(l);
      assert.deepStrictEqual(lines, [
        { line: 1, text: 'aé' },
        { line: 2, text: 'b' },
      ]);
      assert.strictEqual(firstInvalidUtf8(Buffer.from([0x61, 0xc3, 0x28])), 1);
      assert.strictEqual(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80])), 0, 'a surrogate');
      // through the CLI: the bad line is reported and skipped, exit 1
      const r = await cli(cache, ['--quiet', 'embed', '-i', '-', '-o', '-'], Buffer.concat([Buffer.from('{"id":"b","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
      assert.strictEqual(r.code, 1);
      assert.strictEqual(r.stderr, 'xetrieval: <stdin>:1: not valid UTF-8 (byte 22 of the line); save the file as UTF-8 (line skipped)\nxetrieval: 0 embedded, 1 error\n');
    });

    it('an empty or blank query or doc is a per-line error, the same in the CLI and the editor', async () => {
      const loc = { file: 'p.jsonl', line: 3 };
      for (const [field, value] of [
        ['query', ''],
        ['doc', '  \t '],
      ] as const) {
        const obj = { query_id: 'q', doc_id: 'd', query: 'x', doc: 'y', [field]: value };
        assert.throws(() => parsePair(obj, loc), (e: unknown) => e instanceof InputError && e.message === `p.jsonl:3: field "${field}": must not be empty`);
        const line = parsePairLine(JSON.stringify(obj), 'p.jsonl', 3);
        assert.ok(line.kind === 'error' && line.error.message === `p.jsonl:3: field "${field}": must not be empty`);
      }
      const f = await file('empty/p.jsonl', PAIR('q1', 'd1', '', 'doc') + '\n' + PAIR('q2', 'd2', 'query', ' ') + '\n');
      const r = await cli(cache, ['score', '-i', f]);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /p\.jsonl:1: field "query": must not be empty \(line skipped\)/);
      assert.match(r.stderr, /p\.jsonl:2: field "doc": must not be empty \(line skipped\)/);
      assert.match(r.stderr, /0 scored, 2 errors/);
    });
  });

  it('the encoder scan finds NaN and ±Infinity, and nothing in finite vectors', () => {
    assert.strictEqual(firstNonFinite(Float32Array.from([0.5, -1, 3e38])), -1);
    assert.strictEqual(firstNonFinite(Float32Array.from([0.5, NaN, 1])), 1);
    assert.strictEqual(firstNonFinite(Float32Array.from([0, 0, -Infinity])), 2);
  });

  describe('steering configs: fingerprints and feature ids', () => {
    const target = { model: 'all-MiniLM-L6-v2', modelSha256: 'a'.repeat(64), saeSha256: 'b'.repeat(64), dictSize: 4096 };
    it('records the model and SAE fingerprints, and a mismatch or an unknown feature is refused', () => {
      const text = serializeSteeringConfig({ model: target.model, modelSha256: target.modelSha256, saeSha256: target.saeSha256, features: [{ id: 3, alpha: 2 }] });
      const cfg = parseSteeringConfig(text, 's.json');
      assert.strictEqual(cfg.modelSha256, target.modelSha256);
      assert.strictEqual(cfg.saeSha256, target.saeSha256);
      assert.strictEqual(steeringMismatch(cfg, target), undefined);
      assert.strictEqual(steeringMismatch({ ...cfg, saeSha256: 'c'.repeat(64) }, target)?.field, 'saeSha256');
      assert.strictEqual(steeringMismatch({ ...cfg, modelSha256: 'c'.repeat(64) }, target)?.field, 'modelSha256');
      assert.strictEqual(steeringMismatch({ ...cfg, model: 'bge-small-en-v1.5' }, target)?.field, 'model');
      const unknown = steeringMismatch({ model: target.model, features: [{ id: 999999, alpha: 2 }] }, target);
      assert.deepStrictEqual(unknown, { field: 'features[0].id', message: 'feature 999999 does not exist: the SAE has 4096 features (0 to 4095)' });
      assert.throws(() => parseSteeringConfig('{"model":"m","saeSha256":"xyz","features":[]}', 's.json'), /field "saeSha256": must be a sha256/);
    });

    it('explain --steering with a config for another model exits 1 naming the file and field, before any work', async () => {
      const pairs = await file('st/p.jsonl', TWO_PAIRS);
      const cfg = await file('st/other.json', JSON.stringify({ model: 'bge-small-en-v1.5', features: [{ id: 3, alpha: 2 }] }));
      const r = await cli(cache, ['explain', '-i', pairs, '--steering', cfg]);
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /other\.json: field "model": the config is for bge-small-en-v1\.5, but the model is all-MiniLM-L6-v2/);
    });
  });
});

function chunked(parts: Buffer[]): NodeJS.ReadableStream {
  const s = new PassThrough();
  for (const p of parts) s.write(p);
  s.end();
  return s;
}
