#!/usr/bin/env node
// The test/vscode suite on VS Code desktop through @vscode/test-electron, for
// machines that have it or can download it:
//   node test/host/run-electron.mjs                              downloads VS Code 1.100.3 into .vscode-test/
//   VSCODE_EXECUTABLE=/path/to/code node test/host/run-electron.mjs   an installed one
// On a headless Linux box run it under xvfb-run. Here VS Code desktop cannot be
// downloaded (update.code.visualstudio.com does not resolve); run.mjs runs the
// same suite in the VS Code server instead.
// Env: XETRIEVAL_CACHE_DIR (model cache the test workspace uses), VSCODE_VERSION.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { build, makeWorkspace, root, testsEntry } from './prepare.mjs';

await build();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-electron-'));
const { workspace, cacheDir } = makeWorkspace(scratch);
console.log(`workspace ${workspace}, model cache ${cacheDir}`);
try {
  const code = await runTests({
    ...(process.env.VSCODE_EXECUTABLE ? { vscodeExecutablePath: process.env.VSCODE_EXECUTABLE } : { version: process.env.VSCODE_VERSION ?? '1.100.3' }),
    extensionDevelopmentPath: root,
    extensionTestsPath: testsEntry,
    extensionTestsEnv: { XETRIEVAL_CACHE_DIR: cacheDir },
    launchArgs: [workspace, '--disable-extensions', '--user-data-dir', path.join(scratch, 'ud')],
  });
  process.exitCode = code;
} catch (e) {
  // a download that failed, or VS Code exiting with failed tests: say which
  console.error(`run-electron: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
