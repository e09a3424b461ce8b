// Small helpers for drivers that run the VS Code server and a headless
// Chromium (the same set-up as run.mjs; see /work/shared/notes/vscode-host.md).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import { root } from './prepare.mjs';

export const hostDir = path.join(root, '.cache/code-server');
export const serverMain = path.join(hostDir, 'node_modules/code-server/lib/vscode/out/server-main.js');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the VS Code server in its own process group (so stopping it takes
 * the extension host along) with scratch data and XDG folders under
 * `scratch`, and waits until it answers. `env` is added to the server's (and
 * so the extension host's) environment.
 */
export async function startServer(scratch, { env = {}, verbose = false } = {}) {
  if (!fs.existsSync(serverMain)) throw new Error(`VS Code server missing: run test/host/install.sh first (${serverMain})`);
  const port = await freePort();
  const data = path.join(scratch, 'server');
  const log = fs.createWriteStream(path.join(scratch, 'server.log'));
  const server = spawn(
    process.execPath,
    [serverMain, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token', '--accept-server-license-terms',
      '--enable-smoke-test-driver', '--disable-workspace-trust', '--disable-telemetry',
      '--server-data-dir', data, '--user-data-dir', path.join(data, 'ud'), '--extensions-dir', path.join(data, 'exts')],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'), XDG_DATA_HOME: path.join(scratch, 'xdg-data'), ...env },
    },
  );
  for (const s of [server.stdout, server.stderr]) {
    s.pipe(log, { end: false });
    if (verbose) s.on('data', (d) => process.stdout.write(`[server] ${d}`));
  }
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {}
    log.end();
  };
  try {
    for (const deadline = Date.now() + 60_000; ; ) {
      if (server.exitCode !== null) throw new Error(`server exited with code ${server.exitCode}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/`)).ok) break;
      } catch {}
      if (Date.now() > deadline) throw new Error('server did not answer within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { port, stop, remote: (p) => `vscode-remote://127.0.0.1:${port}${p}` };
}

/** Headless Debian Chromium through playwright-core (installed by install.sh beside code-server). */
export async function openBrowser(profileDir, { viewport = { width: 1440, height: 900 }, colorScheme = 'dark' } = {}) {
  const { chromium } = createRequire(path.join(hostDir, 'package.json'))('playwright-core');
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport,
    colorScheme,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

/** The workbench URL that opens `folder` with the extension under development and, optionally, an extensionTestsPath entry. */
export function workbenchUrl(server, folder, testsEntry) {
  const payload = [['extensionDevelopmentPath', server.remote(root)], ['skipWelcome', 'true']];
  if (testsEntry) payload.push(['extensionTestsPath', server.remote(testsEntry)]);
  return `http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** A webview's content frame: the workbench's `iframe.webview.ready`, then its `iframe#active-frame`. */
export function webviewFrame(page, nth = 0) {
  return page.frameLocator('iframe.webview.ready').nth(nth).frameLocator('iframe#active-frame');
}

/** Workbench start-up chatter and errors from having no network. */
export function isNoise(line) {
  return /^(Resolving connection token|Resolved connection token|Creating a socket|Updating additional builtin extensions|ChatSessionStore|\[Service Worker\])|open-vsx|ENOTFOUND/.test(line);
}

/**
 * Runs a command from the palette (F1) once its row is on top; `match` (text
 * or RegExp) checks the row when it differs from the title. Escape first
 * closes a leftover quick input, but in an editor it also drops the selection.
 */
export async function runFromPalette(page, title, match, { escape = true } = {}) {
  if (escape) await page.keyboard.press('Escape');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row').first();
  const want = match ?? title;
  // The palette's command list is fixed when it opens: a command contributed after that (the development
  // extension still being registered on a loaded machine) never shows in it, so it is opened again.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    await input.waitFor({ timeout: 10_000 });
    await input.fill(`>${title}`);
    let text = '';
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; await page.waitForTimeout(100)) {
      text = ((await row.getAttribute('aria-label').catch(() => null)) ?? (await row.textContent().catch(() => ''))) || '';
      if (typeof want === 'string' ? text.includes(want) : want.test(text)) {
        await page.keyboard.press('Enter');
        return;
      }
    }
    if (attempt === 4) throw new Error(`palette: no "${want}" (top row: "${text}")`);
    await page.keyboard.press('Escape');
  }
}

/** Ctrl+P, file name, Enter; resolves once the file's tab is open. */
export async function quickOpenFile(page, name) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ timeout: 10_000 });
  await input.fill(name);
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').filter({ hasText: name }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab').filter({ hasText: name }).first().waitFor({ timeout: 15_000 });
}

/**
 * The Cases view after "Explain Eval File": the run opens it by itself; only
 * when it has not within 15 s is the Xetrieval activity-bar container clicked
 * (clicking an open container would close it). `opened`: whether it came by itself.
 */
export async function casesView(page) {
  const pane = page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^Cases/i }) });
  const opened = await pane
    .first()
    .waitFor({ timeout: 15_000 })
    .then(() => true)
    .catch(() => false);
  if (!opened) await page.locator('.activitybar .action-item a[aria-label^="Xetrieval"], .activitybar .action-item [aria-label^="Xetrieval"]').first().click();
  return { pane, opened };
}
