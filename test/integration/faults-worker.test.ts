/**
 * Fault injection against the built CLI and the worker, with the real model:
 * workers killed, stopped (SIGSTOP) or stuck mid-run, retries running out,
 * and Ctrl-C. What must hold: every result once, in input order, exit 0 when
 * the run recovered; exit 1 with a clear message and every result so far kept
 * when it could not; and no process of the run left once the CLI has exited.
 */
import * as assert from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { EngineClient, EngineError, WorkerDiedError } from '../../src/client/engineClient';
import { ModelRef } from '../../src/protocol/worker';
import { DEFAULT_MODEL, REPO_ROOT, WORKER_PATH, minilm, testCacheDir, tmpDir } from './helpers';

const BIN = path.join(REPO_ROOT, 'bin', 'xetrieval.js');

/** `n` pairs of short texts, doc_id d0…d(n-1), so order and completeness are checked by id. */
export function writeShortPairs(file: string, n: number): void {
  const w = 'alpha beta gamma delta protein kinase cell growth river bank money loan water ice float cold heat'.split(' ');
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const query = `${w[i % 17]} ${w[(i * 7) % 17]} query ${i % 50}`;
    const doc = `${w[(i * 3) % 17]} ${w[(i * 5) % 17]} ${w[(i * 11) % 17]} document number ${i}`;
    lines.push(JSON.stringify({ query_id: `q${i % 50}`, doc_id: `d${i}`, query, doc }));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/** Pids of the live children of `pid`, from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // the command name may hold spaces and parentheses: fields start after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Whole lines written so far: the output is written to a hidden `.NAME.*.partial` beside it until the run ends. */
function lineCount(file: string): number {
  const dir = path.dirname(file);
  const partial = fs.readdirSync(dir).find((n) => n.startsWith(`.${path.basename(file)}.`) && n.endsWith('.partial'));
  try {
    return fs.readFileSync(partial ? path.join(dir, partial) : file, 'utf8').split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  child: ChildProcess;
  /** every worker pid seen under the CLI */
  workers: Set<number>;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Every run started, so a failing test still leaves no process behind. */
const runs: Run[] = [];

function killLeftovers(): void {
  for (const run of runs.splice(0)) {
    for (const pid of [run.child.pid!, ...run.workers, ...childrenOf(run.child.pid!)]) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
}

function startCli(args: string[], opts: { detached?: boolean; env?: Record<string, string> } = {}): Run {
  const t0 = Date.now();
  const child = spawn(process.execPath, [BIN, '--device', 'cpu', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: opts.detached,
    env: { ...process.env, ...opts.env },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const workers = new Set<number>();
  const poll = setInterval(() => childrenOf(child.pid!).forEach((p) => workers.add(p)), 50);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, ms: Date.now() - t0 });
    }),
  );
  const run = { child, workers, stderr: () => err, done };
  runs.push(run);
  return run;
}

/** Resolves with the CLI's worker pid once one is running and `ready()` holds; rejects if the CLI exits first. */
async function waitFor(run: Run, ready: () => boolean, exclude: Set<number> = new Set()): Promise<number> {
  for (;;) {
    if (run.child.exitCode !== null || run.child.signalCode !== null) throw new Error(`CLI exited early: ${run.stderr()}`);
    const pid = childrenOf(run.child.pid!).find((p) => !exclude.has(p));
    if (pid !== undefined && ready()) return pid;
    await sleep(50);
  }
}

function readScores(file: string): { doc_id: string; score: number }[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the output ends with a whole line');
  return text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as { doc_id: string; score: number });
}

function assertInOrder(rows: { doc_id: string }[], n: number): void {
  assert.strictEqual(rows.length, n, `${rows.length} results, expected ${n}`);
  rows.forEach((r, i) => assert.strictEqual(r.doc_id, `d${i}`, `result ${i} is ${r.doc_id}`));
}

function assertNoneLeft(run: Run): void {
  assert.ok(run.workers.size > 0, 'a worker was seen');
  const left = [run.child.pid!, ...run.workers].filter(alive);
  assert.deepStrictEqual(left, [], `processes of the run still alive: ${left.join(', ')}`);
}

describe('faults: the worker under the CLI', function () {
  this.timeout(300_000);
  let dir: string;
  let pairs5000: string;
  let pairs1500: string;

  before(async function () {
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli.js'))) this.skip();
    await minilm();
    dir = tmpDir('faults');
    pairs5000 = path.join(dir, 'pairs5000.jsonl');
    pairs1500 = path.join(dir, 'pairs1500.jsonl');
    writeShortPairs(pairs5000, 5000);
    writeShortPairs(pairs1500, 1500);
  });
  afterEach(killLeftovers);
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kill the worker 3 times during a 5,000-pair score: all 5,000 results once each, in input order, exit 0', async () => {
    const out = path.join(dir, 'kill3.jsonl');
    const run = startCli(['score', '-i', pairs5000, '-o', out]);
    const killed = new Set<number>();
    for (const atLeast of [500, 2000, 3500]) {
      const pid = await waitFor(run, () => lineCount(out) >= atLeast, killed);
      process.kill(pid, 'SIGKILL');
      killed.add(pid);
    }
    const r = await run.done;
    assert.strictEqual(r.code, 0, run.stderr());
    assert.strictEqual((run.stderr().match(/starting a new worker and resuming at line \d+ of /g) ?? []).length, 3, run.stderr());
    assert.match(run.stderr(), /5000 scored, 0 errors/);
    assertInOrder(readScores(out), 5000);
    assert.strictEqual(run.workers.size, 4, 'three replacements');
    assertNoneLeft(run);
  });

  it('a worker that keeps dying: exit 1 after 3 restarts, with a clear message and every result so far kept', async () => {
    const out = path.join(dir, 'exhausted.jsonl');
    const run = startCli(['score', '-i', pairs1500, '-o', out]);
    const killed = new Set<number>();
    // the first chunk goes through, then every worker dies as soon as it is seen
    await waitFor(run, () => lineCount(out) >= 256);
    const killer = setInterval(() => {
      for (const pid of childrenOf(run.child.pid!)) {
        if (killed.has(pid)) continue;
        killed.add(pid);
        process.kill(pid, 'SIGKILL');
      }
    }, 20);
    const r = await run.done;
    clearInterval(killer);
    assert.strictEqual(r.code, 1, run.stderr());
    const err = run.stderr();
    assert.match(err, /(SIGKILL\)|signal SIGKILL\)); the worker failed 4 times in a row at line 257 of .*pairs1500\.jsonl, giving up after 3 restarts/);
    const rows = readScores(out);
    assert.match(err, new RegExp(`the ${rows.length} results before it are kept in ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.ok(rows.length >= 256 && rows.length < 1500, `${rows.length} kept`);
    assertInOrder(rows, rows.length);
    assert.strictEqual(killed.size, 4, 'the first worker and three replacements');
    assertNoneLeft(run);
  });

  it('a stopped (SIGSTOP) worker is found by its missing heartbeat within 10 s, killed and replaced; the run completes', async () => {
    const out = path.join(dir, 'stopped.jsonl');
    const run = startCli(['score', '-i', pairs1500, '-o', out]);
    const pid = await waitFor(run, () => lineCount(out) >= 256);
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    // the replacement appears once the stopped worker is killed
    await waitFor(run, () => true, new Set([pid]));
    const replacedAfter = Date.now() - stoppedAt;
    const r = await run.done;
    assert.strictEqual(r.code, 0, run.stderr());
    assert.match(run.stderr(), /worker stopped responding \(no heartbeat for 1\d\.\d s\) and was killed; starting a new worker and resuming/);
    assert.ok(replacedAfter < 15_000, `replaced after ${replacedAfter} ms`);
    assert.ok(!alive(pid), 'the stopped worker is gone');
    assertInOrder(readScores(out), 1500);
    assertNoneLeft(run);
  });

  it('one Ctrl-C (SIGINT to the CLI alone) ends the run and a hung worker: exit 130, whole lines kept, no process left', async () => {
    const out = path.join(dir, 'sigint-hung.jsonl');
    const run = startCli(['score', '-i', pairs1500, '-o', out]);
    const pid = await waitFor(run, () => lineCount(out) >= 256);
    process.kill(pid, 'SIGSTOP');
    await sleep(300);
    const t = Date.now();
    run.child.kill('SIGINT');
    const r = await Promise.race([run.done, sleep(20_000).then(() => null)]);
    if (r === null) {
      run.child.kill('SIGKILL');
      process.kill(pid, 'SIGKILL');
      assert.fail('one SIGINT did not end the CLI within 20 s');
    }
    assert.strictEqual(r.code, 130, run.stderr());
    assert.match(run.stderr(), /cancelled/);
    assert.ok(Date.now() - t < 10_000, `ended ${Date.now() - t} ms after SIGINT`);
    const rows = readScores(out);
    assertInOrder(rows, rows.length);
    assertNoneLeft(run);
  });

  it('Ctrl-C in a terminal (SIGINT to the whole process group) ends the CLI and its worker: exit 130, no process left', async () => {
    const out = path.join(dir, 'sigint-group.jsonl');
    const run = startCli(['score', '-i', pairs1500, '-o', out], { detached: true });
    await waitFor(run, () => lineCount(out) >= 256);
    process.kill(-run.child.pid!, 'SIGINT');
    const r = await Promise.race([run.done, sleep(20_000).then(() => null)]);
    if (r === null) {
      process.kill(-run.child.pid!, 'SIGKILL');
      assert.fail('SIGINT to the group did not end the CLI within 20 s');
    }
    assert.strictEqual(r.code, 130, run.stderr());
    assertInOrder(readScores(out), lineCount(out));
    assertNoneLeft(run);
  });
});

describe('faults: the engine client', function () {
  this.timeout(120_000);
  const ref: ModelRef = { model: DEFAULT_MODEL, cacheDir: testCacheDir() };

  it('a worker whose main thread is stuck (heartbeat still going) is killed at the request timeout, and the next request gets a new worker', async () => {
    const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH, requestTimeoutMs: 1500 });
    try {
      await client.start();
      const first = client.pid!;
      const t = Date.now();
      let err: unknown;
      await client.request('hang', { ms: 30_000 }).catch((e: unknown) => (err = e));
      assert.ok(err instanceof WorkerDiedError, `got ${err}`);
      assert.match(err.reason, /gave no progress or answer to "hang" for 1\.5 s and was killed/);
      assert.ok(Date.now() - t < 10_000, `${Date.now() - t} ms`);
      assert.ok(!alive(first) || (await sleep(500), !alive(first)), 'the stuck worker is gone');
      const r = await client.request('embed', { ref, texts: ['after the restart'], kind: 'query' });
      assert.strictEqual(r.result.dim, 384);
      assert.notStrictEqual(client.pid, first);
    } finally {
      await client.dispose();
    }
  });

  it('long synchronous work under the request timeout does not trip the heartbeat', async () => {
    const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH, heartbeatTimeoutMs: 1500 });
    try {
      await client.start();
      const pid = client.pid;
      // the main thread is blocked twice as long as the heartbeat timeout: the heartbeat thread keeps beating
      const r = await client.request('hang', { ms: 3000 });
      assert.deepStrictEqual(r.result, { hung: 3000 });
      assert.strictEqual(client.pid, pid, 'the same worker');
    } finally {
      await client.dispose();
    }
  });

  it('a caller whose own event loop is blocked past the heartbeat timeout keeps its worker (the beats were waiting unread)', async () => {
    const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH, heartbeatTimeoutMs: 1500 });
    try {
      await client.start();
      const pid = client.pid;
      const p = client.request('sleep', { ms: 4000 });
      // as a benchmark's spawnSync does: this process reads nothing for twice the timeout
      spawnSync('sleep', ['3']);
      const r = await p;
      assert.deepStrictEqual(r.result, { slept: 4000 });
      assert.strictEqual(client.pid, pid, 'the same worker');
      assert.ok(alive(pid!));
    } finally {
      await client.dispose();
    }
  });

  it('a stopped worker fails its request as hung after the heartbeat timeout; a cancelled request ends even if the worker never answers', async () => {
    const client = new EngineClient({ device: 'cpu', workerPath: WORKER_PATH, heartbeatTimeoutMs: 2000, cancelGraceMs: 1000 });
    try {
      await client.start();
      const a = client.pid!;
      const p = client.request('sleep', { ms: 60_000 });
      process.kill(a, 'SIGSTOP');
      const e = await p.catch((x: unknown) => x);
      assert.ok(e instanceof WorkerDiedError && /no heartbeat for 2\.\d s/.test(e.reason), `got ${e}`);
      await sleep(200);
      assert.ok(!alive(a), 'the stopped worker was killed');

      await client.start();
      const b = client.pid!;
      const ac = new AbortController();
      const q = client.request('hang', { ms: 60_000 }, { signal: ac.signal });
      await sleep(300);
      ac.abort();
      const t = Date.now();
      const c = await q.catch((x: unknown) => x);
      assert.ok(c instanceof EngineError && c.code === 'E_CANCELLED', `got ${c}`);
      assert.ok(Date.now() - t < 5000, `${Date.now() - t} ms`);
      await sleep(200);
      assert.ok(!alive(b), 'the worker that ignored the cancellation was killed');
    } finally {
      await client.dispose();
    }
  });
});

describe('faults: model pulls', function () {
  this.timeout(120_000);
  let dir: string;
  let server: http.Server;
  let url: string;

  before(async function () {
    if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli.js'))) this.skip();
    dir = tmpDir('faults-pull');
    // a hub that serves the small files at once and the weights slowly: 1 MiB, then nothing
    server = http.createServer((req, res) => {
      const file = (req.url ?? '').split('/resolve/main/')[1];
      if (file === 'config.json' || file === 'tokenizer.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      } else if (file === 'model.safetensors') {
        res.writeHead(200, { 'content-length': String(64 << 20) });
        res.write(Buffer.alloc(1 << 20, 1));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(killLeftovers);
  after(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Ctrl-C in a terminal during a first pull: exit 130, no staging and no entry left in the cache, no process left', async () => {
    const cacheDir = path.join(dir, 'cache');
    const staged = () => {
      const tmp = path.join(cacheDir, 'tmp');
      return fs.existsSync(tmp) ? (fs.readdirSync(tmp, { recursive: true }) as string[]) : [];
    };
    const run = startCli(['--cache-dir', cacheDir, 'models', 'pull', 'slow-model', '--source', 'hf:org/slow-model'], { detached: true, env: { HF_ENDPOINT: url } });
    // the weights are being written into staging
    await waitFor(run, () => staged().some((f) => f.endsWith('model.safetensors') && fs.statSync(path.join(cacheDir, 'tmp', f)).size > 0));
    process.kill(-run.child.pid!, 'SIGINT');
    const r = await Promise.race([run.done, sleep(20_000).then(() => null)]);
    assert.ok(r !== null, 'the CLI ended');
    assert.strictEqual(r.code, 130, run.stderr());
    assert.deepStrictEqual(staged(), [], 'no staging left');
    assert.ok(!fs.existsSync(path.join(cacheDir, 'models', 'slow-model')), 'no entry');
    assertNoneLeft(run);
  });
});
