#!/usr/bin/env node
// Runs the mocha suites in test/vscode inside a real VS Code extension host:
// the VS Code server from the code-server package (see install.sh) plus
// headless Debian Chromium driven by playwright-core. Exits with the run's code.
//
// Env: XETRIEVAL_CACHE_DIR  model cache the test workspace uses (default: a scratch folder)
//      XETRIEVAL_TEST_GREP  only tests whose title matches
//      XETRIEVAL_HOST_TIMEOUT_S (default 600), XETRIEVAL_HOST_VERBOSE=1 (server output too),
//      XETRIEVAL_HOST_KEEP=1 (keep the scratch folder)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import { isNoise, openBrowser, serverMain, startServer, workbenchUrl } from './lib.mjs';
import { build, makeWorkspace, testsEntry } from './prepare.mjs';

const timeoutMs = Number(process.env.XETRIEVAL_HOST_TIMEOUT_S ?? 600) * 1000;
const verbose = process.env.XETRIEVAL_HOST_VERBOSE === '1';
const t0 = Date.now();
const say = (m) => console.log(`[host ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);

if (!fs.existsSync(serverMain)) {
  console.error(`VS Code server missing: run test/host/install.sh first (${serverMain})`);
  process.exit(2);
}

// 1. Bundles, then 2. a scratch test workspace whose settings point at the model cache.
await build();
say('built');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-host-'));
const { workspace, cacheDir } = makeWorkspace(scratch);
say(`workspace ${workspace}, model cache ${cacheDir}`);

let server;
let context;
let exitCode = 1;
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (server?.stop(), process.exit(130)));
try {
  // 3. The VS Code server, in its own process group so teardown reaches the extension host and our worker.
  server = await startServer(scratch, { verbose });
  say(`server on 127.0.0.1:${server.port}`);

  // 4. Chromium opens the workbench with our extension under development and the mocha entry.
  const browser = await openBrowser(path.join(scratch, 'chromium'));
  context = browser.context;
  const page = browser.page;
  // Expose one at a time: concurrent exposeFunction calls lose one of the bindings.
  let onExit;
  const exited = new Promise((resolve) => (onExit = resolve));
  await page.exposeFunction('codeAutomationExit', (code) => onExit(Number(code)));
  // The workbench log, the extension host's console (mocha's reporter included) among it: (level, [format, ...args]).
  await page.exposeFunction('codeAutomationLog', (level, args) => {
    const line = format(...(Array.isArray(args) ? args : [args]));
    if (verbose || !isNoise(line)) console.log(level === 'info' ? line : `[${level}] ${line}`);
  });
  await page.goto(workbenchUrl(server, workspace, testsEntry));
  say('workbench opened; tests running');

  let timer;
  const timedOut = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') say(`no exit after ${timeoutMs / 1000}s; giving up`);
  else exitCode = result;
} catch (e) {
  say(`failed: ${e.stack ?? e}`);
} finally {
  await context?.close().catch(() => {});
  server?.stop();
  if (exitCode !== 0) say(`logs kept in ${scratch}: server.log, server/ud/logs/*/exthost1/ (remoteexthost.log, xetrieval.xetrieval/Xetrieval.log)`);
  if (process.env.XETRIEVAL_HOST_KEEP !== '1' && exitCode === 0) fs.rmSync(scratch, { recursive: true, force: true });
  say(`exit ${exitCode}`);
}
process.exit(exitCode);
