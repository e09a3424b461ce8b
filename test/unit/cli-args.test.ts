/**
 * The CLI in-process, on paths that never reach the encoder: argument
 * parsing, usage errors, input errors found before any worker starts.
 */
import * as assert from 'assert';
import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { cliInProcess } from './helpers/cli';
import { Progress } from '../../src/cli/progress';

const cli = (argv: string[], stdinText?: string) => cliInProcess(argv, stdinText);

describe('cli (no model)', () => {
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xetrieval-cli-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, text: string) => {
    const f = path.join(dir, name);
    await fsp.writeFile(f, text);
    return f;
  };

  it('prints --help for the program and every command, exit 0', async () => {
    for (const argv of [['--help'], ['models', 'pull', '--help'], ['embed', '--help'], ['score', '--help'], ['eval', '--help']]) {
      const r = await cli(argv);
      assert.strictEqual(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^Usage: xetrieval/, argv.join(' '));
    }
    const top = await cli(['--help']);
    for (const opt of ['--device', '--cache-dir', '--batch-size', '--quiet']) assert.ok(top.stdout.includes(opt), opt);
    const train = await cli(['train', 'bundle', '--help']);
    for (const opt of ['--label-endpoint', '--label-model', '--label-sample', '--api-key']) assert.ok(train.stdout.includes(opt), opt);
  });

  it('exits 2 with one clear line on usage errors', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['embed', '--input', 'x.jsonl'], /xetrieval: required option '-o, --output <file>' not specified/],
      [['--device', 'gpu', 'score', '-i', 'x'], /argument 'gpu' is invalid\. Allowed choices are auto, cpu, cuda/],
      [['--batch-size', '0', 'score', '-i', 'x'], /--batch-size.*expected a whole number from 1 to 4096/],
      [['eval', 'folder', '--metrics', 'map@10'], /unknown metric "map@10"/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['train', 'bundle', '--data', 'x', '--label-endpoint', 'http://127.0.0.1:9/v1'], /--label-endpoint and --label-model go together/],
      // the data is named, never a default beside the checkout
      [['train', 'bundle'], /required option '--data <dir>' not specified/],
      [[], /Usage: xetrieval/],
    ];
    for (const [argv, re] of cases) {
      const r = await cli(argv);
      assert.strictEqual(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, argv.join(' '));
    }
  });

  it('refuses an output that would overwrite the input (exit 2, input untouched)', async () => {
    const f = await file('same.jsonl', '{"id":"a","text":"x"}\n');
    const r = await cli(['embed', '-i', f, '-o', f]);
    assert.strictEqual(r.code, 2);
    assert.match(r.stderr, /is the same file as the input/);
    assert.strictEqual(await fsp.readFile(f, 'utf8'), '{"id":"a","text":"x"}\n');
  });

  it('reports a missing input file and an empty input with one line, exit 1', async () => {
    const missing = await cli(['score', '-i', path.join(dir, 'nope.jsonl')]);
    assert.strictEqual(missing.code, 1);
    assert.match(missing.stderr, /^xetrieval: .*nope\.jsonl: file not found\n$/);

    const empty = await file('empty.jsonl', '\n');
    const r = await cli(['embed', '-i', empty, '-o', path.join(dir, 'never.jsonl')]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /empty\.jsonl: file is empty: no JSON lines/);
    assert.strictEqual(await fsp.stat(path.join(dir, 'never.jsonl')).catch(() => null), null, 'no output created');
  });

  it('reports an output folder that does not exist before doing any work', async () => {
    const input = await file('in.jsonl', '{"id":"a","text":"x"}\n');
    const r = await cli(['embed', '-i', input, '-o', path.join(dir, 'missing-dir', 'out.jsonl')]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /out\.jsonl: folder .*missing-dir does not exist/);
  });

  it('reports every bad line with file:line:field, counts them, and exits 1 (stdin too)', async () => {
    const text = '{"id":"a"}\nnot json\n{"id":"b","text":5}\n[1]\n';
    const r = await cli(['--quiet', 'embed', '-i', '-', '-o', '-'], text);
    assert.strictEqual(r.code, 1);
    assert.strictEqual(r.stdout, '', 'no data on stdout when nothing was valid');
    const lines = r.stderr.trim().split('\n');
    assert.deepStrictEqual(lines, [
      'xetrieval: <stdin>:1: field "text": missing (line skipped)',
      `xetrieval: <stdin>:2: invalid JSON: ${jsonError('not json')} (line skipped)`,
      'xetrieval: <stdin>:3: field "text": expected a string, got number (line skipped)',
      'xetrieval: <stdin>:4: expected a JSON object, got array (line skipped)',
      'xetrieval: 0 embedded, 4 errors',
    ]);
  });

  it('score validates the pair format per line', async () => {
    const f = await file('pairs.jsonl', '{"query_id":"q","doc_id":"d","query":"x"}\n{"query_id":"q","doc_id":"d","query":"x","doc":"y","label":"yes"}\n');
    const r = await cli(['score', '-i', f]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /pairs\.jsonl:1: field "doc": missing/);
    assert.match(r.stderr, /pairs\.jsonl:2: field "label": expected a number, got string/);
    assert.match(r.stderr, /0 scored, 2 errors/);
  });

  it('eval names a folder that is not a dataset and a missing split', async () => {
    const r = await cli(['eval', path.join(dir, 'nowhere')]);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /nowhere: not a BEIR dataset folder/);
    await fsp.mkdir(path.join(dir, 'ds', 'qrels'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'ds', 'qrels', 'train.tsv'), 'query-id\tcorpus-id\tscore\nq\td\t1\n');
    const s = await cli(['eval', path.join(dir, 'ds'), '--split', 'test']);
    assert.strictEqual(s.code, 1);
    assert.match(s.stderr, /split "test" not found \(available splits: train\)/);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

describe('cli progress', () => {
  const sink = (isTTY: boolean) => {
    const s = new PassThrough() as PassThrough & { isTTY?: boolean };
    s.isTTY = isTTY;
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    return { s, text: () => text };
  };

  it('prints a few plain lines (each quarter) when stderr is not a terminal', async () => {
    const { s, text } = sink(false);
    const p = new Progress(s, { enabled: true });
    for (let i = 0; i <= 100; i++) p.update('documents', i, 100);
    p.end();
    await new Promise((r) => setImmediate(r));
    assert.deepStrictEqual(text().trim().split('\n'), ['documents 0% 0/100', 'documents 25% 25/100', 'documents 50% 50/100', 'documents 75% 75/100', 'documents 100% 100/100']);
  });

  it('redraws one line on a terminal, throttled, and ends it with a newline', async () => {
    const { s, text } = sink(true);
    let now = 0;
    const p = new Progress(s, { enabled: true, now: () => now });
    p.update('embedded', 1);
    p.update('embedded', 2); // within 100 ms: skipped
    now = 200;
    p.update('embedded', 3);
    p.end();
    await new Promise((r) => setImmediate(r));
    assert.strictEqual(text(), '\r\x1b[Kembedded 1\r\x1b[Kembedded 3\r\x1b[Kembedded 3\n');
  });

  it('draws nothing when disabled (--quiet)', async () => {
    const { s, text } = sink(true);
    const p = new Progress(s, { enabled: false });
    p.update('x', 1, 2);
    p.end();
    await new Promise((r) => setImmediate(r));
    assert.strictEqual(text(), '');
  });
});
