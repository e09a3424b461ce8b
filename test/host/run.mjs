#!/usr/bin/env node
// Runs the mocha suites in test/vscode inside a real VS Code extension host:
// the VS Code server from the code-server package (see install.sh) plus
// headless Debian Chromium driven by playwright-core. Exits with the run's code.
//
// Env: XETRIEVAL_CACHE_DIR  model cache the test workspace uses (default: a scratch folder)
//      XETRIEVAL_TEST_GREP  only tests whose title matches
//      XETRIEVAL_HOST_TIMEOUT_S (default 600), XETRIEVAL_HOST_VERBOSE=1 (server output too),
//      XETRIEVAL_HOST_KEEP=1 (keep the scratch folder)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import { build, makeWorkspace, root, testsEntry } from './prepare.mjs';

const hostDir = path.join(root, '.cache/code-server');
const serverMain = path.join(hostDir, 'node_modules/code-server/lib/vscode/out/server-main.js');
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

// 3. The VS Code server, in its own process group so teardown reaches the extension host and our worker.
const port = await freePort();
const data = path.join(scratch, 'server');
const serverLog = fs.createWriteStream(path.join(scratch, 'server.log'));
const server = spawn(
  process.execPath,
  [serverMain, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token', '--accept-server-license-terms',
    '--enable-smoke-test-driver', '--disable-workspace-trust', '--disable-telemetry',
    '--server-data-dir', data, '--user-data-dir', path.join(data, 'ud'), '--extensions-dir', path.join(data, 'exts')],
  {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'), XDG_DATA_HOME: path.join(scratch, 'xdg-data') },
  },
);
for (const s of [server.stdout, server.stderr]) {
  s.pipe(serverLog, { end: false });
  if (verbose) s.on('data', (d) => process.stdout.write(`[server] ${d}`));
}

let context;
let exitCode = 1;
const stopServer = () => {
  try {
    process.kill(-server.pid, 'SIGTERM');
  } catch {}
};
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (stopServer(), process.exit(130)));
try {
  await waitForServer(port);
  say(`server on 127.0.0.1:${port}`);

  // 4. Chromium opens the workbench with our extension under development and the mocha entry.
  const { chromium } = createRequire(path.join(hostDir, 'package.json'))('playwright-core');
  context = await chromium.launchPersistentContext(path.join(scratch, 'chromium'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  // Expose one at a time: concurrent exposeFunction calls lose one of the bindings.
  let onExit;
  const exited = new Promise((resolve) => (onExit = resolve));
  await page.exposeFunction('codeAutomationExit', (code) => onExit(Number(code)));
  // The workbench log, the extension host's console (mocha's reporter included) among it: (level, [format, ...args]).
  await page.exposeFunction('codeAutomationLog', (level, args) => {
    const line = format(...(Array.isArray(args) ? args : [args]));
    if (verbose || !isNoise(line)) console.log(level === 'info' ? line : `[${level}] ${line}`);
  });
  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(root)],
    ['extensionTestsPath', remote(testsEntry)],
    ['skipWelcome', 'true'],
  ];
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
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
  stopServer();
  serverLog.end();
  if (exitCode !== 0) say(`logs kept in ${scratch}: server.log, server/ud/logs/*/exthost1/ (remoteexthost.log, xetrieval.xetrieval/Xetrieval.log)`);
  if (process.env.XETRIEVAL_HOST_KEEP !== '1' && exitCode === 0) fs.rmSync(scratch, { recursive: true, force: true });
  say(`exit ${exitCode}`);
}
process.exit(exitCode);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForServer(port) {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    if (server.exitCode !== null) throw new Error(`server exited with code ${server.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not answer within 60 s');
}

/** Workbench start-up chatter and errors from having no network; XETRIEVAL_HOST_VERBOSE=1 shows them. */
function isNoise(line) {
  return /^(Resolving connection token|Resolved connection token|Creating a socket|Updating additional builtin extensions|ChatSessionStore|\[Service Worker\])|open-vsx|ENOTFOUND/.test(line);
}
