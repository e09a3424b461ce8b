#!/usr/bin/env node
// The test/vscode suite on VS Code desktop, for machines that have it:
//   VSCODE_EXECUTABLE=/path/to/code node test/host/run-electron.mjs
// (@vscode/test-electron cannot download VS Code here; run.mjs is the way on these machines.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { build, makeWorkspace, root, testsEntry } from './prepare.mjs';

if (!process.env.VSCODE_EXECUTABLE) {
  console.error('set VSCODE_EXECUTABLE to a VS Code desktop executable');
  process.exit(2);
}
await build();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-electron-'));
const { workspace } = makeWorkspace(scratch);
try {
  await runTests({
    vscodeExecutablePath: process.env.VSCODE_EXECUTABLE,
    extensionDevelopmentPath: root,
    extensionTestsPath: testsEntry,
    launchArgs: [workspace, '--disable-extensions', '--user-data-dir', path.join(scratch, 'ud')],
  });
} catch {
  process.exitCode = 1;
}
