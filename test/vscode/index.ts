/**
 * Mocha entry run inside the extension host (`extensionTestsPath`), the shape
 * both test/host/run.mjs and @vscode/test-electron expect. Runs every
 * `*.test.js` beside this file and ends with `vscode: N passed, N failed`.
 */
import * as fs from 'fs';
import Mocha from 'mocha';
import * as path from 'path';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 120_000, grep: process.env.XETRIEVAL_TEST_GREP });
  for (const f of fs.readdirSync(__dirname).filter((f) => f.endsWith('.test.js')).sort()) mocha.addFile(path.join(__dirname, f));
  const stats = await new Promise<Mocha.Stats>((resolve) => {
    const runner = mocha.run(() => resolve(runner.stats ?? ({ passes: 0, failures: 1 } as Mocha.Stats)));
  });
  console.log(`vscode: ${stats.passes} passed, ${stats.failures} failed`);
  if (stats.failures > 0) throw new Error(`${stats.failures} test(s) failed`);
}
