/**
 * A plain clone runs the README: the committed HEAD is cloned into a fresh
 * temporary folder with no `shared` folder beside it, and the first command of
 * the README's "Set-up" block, read from the clone's own README, runs there as
 * written. Only `npm ci` gets `--offline --no-audit --no-fund`, so it installs
 * from the npm cache the outer `npm ci` filled; the model cache is this run's
 * ($XETRIEVAL_CACHE_DIR, else the default folder). The explanations it writes
 * must cover every pair of the clone's examples/pairs.jsonl.
 *
 * Uncommitted files are not in a clone: this tests what a user would get.
 */
import * as assert from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { testCacheDir, tmpDir } from './helpers';

const NPM_CI_OFFLINE = 'npm ci --offline --no-audit --no-fund';

/** The first command of the README's "Set-up" section: the first non-comment line of its first ```sh block. */
function setupCommand(readme: string): string {
  const section = /^## Set-up[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme);
  assert.ok(section, 'README has a "## Set-up" section');
  const block = /^```sh\n([\s\S]*?)^```/m.exec(section[1]);
  assert.ok(block, 'the Set-up section has a ```sh block');
  const command = block[1]
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !l.startsWith('#'));
  assert.ok(command, 'the Set-up block has a command');
  return command;
}

function gitTopLevel(from: string): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: from, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

interface Ran {
  code: number | null;
  output: string;
}

function bash(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** A shell as a user would have it: none of the outer npm's npm_* variables (npm_config_cache kept: it names the cache to install from). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || /^npm_config_cache$/i.test(k)) env[k] = v;
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
  env.XETRIEVAL_CACHE_DIR = path.resolve(testCacheDir());
  return env;
}

const readJsonLines = (f: string) =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('a plain clone runs the README', function () {
  // npm ci in the clone (install and the prepare build) takes 1–3 minutes on a small machine.
  this.timeout(900_000);
  let root: string | undefined;
  let dir: string | undefined;

  before(function () {
    root = gitTopLevel(__dirname);
    if (!root) this.skip(); // not a git checkout (an unpacked tarball): there is nothing to clone
  });
  after(() => {
    if (dir && !process.env.XETRIEVAL_KEEP_CLONE) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the Set-up block's first command explains examples/pairs.jsonl in a fresh clone with no ../shared", async () => {
    dir = tmpDir('plain-clone');
    const clone = path.join(dir, 'repo');
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    execFileSync('git', ['clone', '--quiet', '--no-checkout', root!, clone], { stdio: 'pipe' });
    execFileSync('git', ['checkout', '--quiet', '--detach', head], { cwd: clone, stdio: 'pipe' });
    assert.ok(!fs.existsSync(path.join(dir, 'shared')), 'no shared folder beside the clone');

    const command = setupCommand(fs.readFileSync(path.join(clone, 'README.md'), 'utf8'));
    assert.ok(!command.includes('../shared'), `the set-up command needs nothing outside the clone: ${command}`);
    assert.match(command, /^npm ci && /, `the set-up command starts with npm ci: ${command}`);
    const input = /--input\s+(\S+)/.exec(command)?.[1];
    const output = /--output\s+(\S+)/.exec(command)?.[1];
    assert.ok(input && output, `the set-up command names --input and --output files: ${command}`);
    assert.ok(fs.existsSync(path.join(clone, input)), `${input} is committed (uncommitted files are not in a clone)`);

    const started = Date.now();
    const ran = await bash(command.replace(/^npm ci(?= )/, NPM_CI_OFFLINE), clone, userEnv());
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const tail = ran.output.slice(-4000);
    assert.strictEqual(ran.code, 0, `"${command}" exited ${ran.code} after ${seconds} s:\n${tail}`);

    const pairs = readJsonLines(path.join(clone, input));
    assert.ok(pairs.length >= 40, `${input} has ${pairs.length} pairs`);
    assert.match(ran.output, new RegExp(`${pairs.length} explained, 0 errors`), tail);
    const explained = readJsonLines(path.join(clone, output));
    assert.strictEqual(explained.length, pairs.length, 'one explanation per pair');

    const key = (r: Record<string, unknown>) => `${r.query_id}\t${r.doc_id}`;
    assert.deepStrictEqual(explained.map(key).sort(), pairs.map(key).sort(), 'every pair explained once');
    const relevant = new Set(pairs.filter((p) => p.label === 1).map(key));
    assert.ok(relevant.size > 0, 'the example file has relevant pairs');
    for (const e of explained) {
      const where = key(e);
      assert.ok(typeof e.score === 'number' && Number.isFinite(e.score), `${where}: score ${e.score}`);
      const shared = e.shared_features as unknown[];
      const features = e.features as { id: number; label?: unknown }[];
      assert.ok(Array.isArray(shared) && Array.isArray(features), `${where}: shared_features and features`);
      if (relevant.has(where)) assert.ok(shared.length > 0, `${where}: a relevant pair shares features`);
      for (const f of features) assert.ok(typeof f.label === 'string' && f.label.trim(), `${where}: feature ${f.id} has a label`);
    }
    console.log(`      plain clone: "${command}" ran in ${seconds} s`);
  });
});
