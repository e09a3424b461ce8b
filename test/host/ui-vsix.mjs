#!/usr/bin/env node
// The packaged extension in a real workbench (packaging acceptance): the
// linux-x64 .vsix is installed into a fresh extensions folder of the VS Code
// server, the server starts WITHOUT extensionDevelopmentPath (so the installed
// copy is the only Xetrieval there is), and the driver, through the command
// palette, the keyboard and clicks only, sets a query from a selection in a
// text file, runs Explain Selection, and checks the panel (score, features),
// the status bar (model, CPU) and that what ran is the installed copy (the
// panel's script and the worker process both come from the temp extensions
// folder; the extension host logs that folder as the extension's location).
//   XETRIEVAL_CACHE_DIR=/work/main/.cache/xetrieval node test/host/ui-vsix.mjs
//     → test-results/ui-vsix-{panel,log}.png and a summary JSON on the last line; exit 0 when every check passed.
//
// The .vsix: $XETRIEVAL_VSIX when set (used as given); otherwise the first of
// out/vsix/xetrieval-linux-x64.vsix (left by the .vsix integration test) and
// ./xetrieval-linux-x64.vsix (npm run package) whose contents match the
// freshly built dist/, models/, media/ and package.json byte for byte (CRC-32
// of every entry); otherwise it packages one (vsce, ~20 s) and leaves it in
// out/vsix/ for the next run.
// The model cache reaches the extension as the workspace setting
// xetrieval.cacheFolder = $XETRIEVAL_CACHE_DIR (makeWorkspace in prepare.mjs);
// it must already hold the model, since the machine may have no network.
//
// Env: XETRIEVAL_VSIX, XETRIEVAL_HOST_VERBOSE=1, XETRIEVAL_HOST_KEEP=1 (keep the scratch folder)
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import * as zlib from 'node:zlib';
import { isNoise, openBrowser, quickOpenFile, runFromPalette, serverMain, startServer, webviewFrame } from './lib.mjs';
import { makeWorkspace, root } from './prepare.mjs';

const verbose = process.env.XETRIEVAL_HOST_VERBOSE === '1';
const outDir = path.join(root, 'test-results');
const sharedVsix = path.join(root, 'out/vsix/xetrieval-linux-x64.vsix');
const t0 = Date.now();
const say = (m) => console.log(`[vsix ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const failures = [];
const timings = {};
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const since = (t) => Math.round(performance.now() - t);

if (!fs.existsSync(serverMain)) {
  console.error(`VS Code server missing: run test/host/install.sh first (${serverMain})`);
  process.exit(2);
}
if (!process.env.XETRIEVAL_CACHE_DIR) say('warning: XETRIEVAL_CACHE_DIR not set: the model would be pulled into a scratch cache');
// dist/ as the sources say now: the reference a reused .vsix is compared against.
if (spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('scripts/build.mjs failed');
fs.mkdirSync(outDir, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-vsix-ui-'));

// 1. The .vsix.
let t = performance.now();
const vsix = await pickVsix();
timings.vsixMs = since(t);
timings.vsix = vsix.startsWith(`${root}/`) ? path.relative(root, vsix) : vsix;
say(`vsix ${vsix} (${(fs.statSync(vsix).size / 1e6).toFixed(1)} MB) after ${timings.vsixMs} ms`);

// 2. Install it into the extensions folder the server will use (startServer: <scratch>/server/exts), empty until now.
const serverData = path.join(scratch, 'server');
const exts = path.join(serverData, 'exts');
t = performance.now();
const installLog = execFileSync(process.execPath, [serverMain, '--install-extension', vsix, '--extensions-dir', exts, '--server-data-dir', serverData], {
  encoding: 'utf8',
  env: { ...process.env, XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'), XDG_DATA_HOME: path.join(scratch, 'xdg-data') },
});
timings.installMs = since(t);
const extDirs = fs.readdirSync(exts).filter((d) => !d.startsWith('.') && d !== 'extensions.json');
const installed = path.join(exts, extDirs.find((d) => d.startsWith('xetrieval.xetrieval-')) ?? 'missing');
say(`install (${timings.installMs} ms): ${installLog.trim().split('\n').pop()}; extensions folder: ${extDirs.join(', ')}`);
check(/successfully installed/.test(installLog) && extDirs.length === 1 && fs.existsSync(path.join(installed, 'dist/extension.js')), `the .vsix installed into a fresh extensions folder as ${path.basename(installed)}`);

// 3. A workspace with a text file; the server without extensionDevelopmentPath.
const { workspace, cacheDir } = makeWorkspace(scratch);
const queryText = 'Vitamin D deficiency is associated with a higher risk of multiple sclerosis.';
fs.writeFileSync(
  path.join(workspace, 'notes.txt'),
  [
    queryText,
    '',
    'Low serum 25-hydroxyvitamin D levels were observed in patients with multiple sclerosis compared with healthy controls, and supplementation reduced relapse rates in a small randomized trial.',
    '',
  ].join('\n'),
);
say(`workspace ${workspace}, model cache ${cacheDir}`);
const server = await startServer(scratch, { env: { XETRIEVAL_CACHE_DIR: cacheDir }, verbose });
say(`server on 127.0.0.1:${server.port}`);
// Tall enough that the panel shows the score and the first rows of the feature table together.
const { context, page } = await openBrowser(path.join(scratch, 'chromium'), { viewport: { width: 1440, height: 1350 } });
try {
  await page.exposeFunction('codeAutomationExit', () => {});
  await page.exposeFunction('codeAutomationLog', (level, args) => {
    const line = format(...(Array.isArray(args) ? args : [args]));
    if (verbose || (!isNoise(line) && level !== 'info')) say(`workbench ${level}: ${line.replace(/\s+/g, ' ').slice(0, 300)}`);
  });
  page.on('console', (msg) => {
    if (/allow-scripts and allow-same-origin/.test(msg.text())) return;
    if (/webview|vscode-cdn|vscode-resource/.test(msg.location().url ?? '') && (msg.type() === 'error' || msg.type() === 'warning')) say(`webview console ${msg.type()}: ${msg.text()}`);
  });

  // Only skipWelcome in the payload: no extensionDevelopmentPath, no extensionTestsPath.
  const url = `http://127.0.0.1:${server.port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify([['skipWelcome', 'true']]))}`;
  t = performance.now();
  await page.goto(url);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await page.locator('#workbench\\.parts\\.statusbar').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1500); // let the workbench settle (restored views)
  timings.workbenchReadyMs = since(t);
  const statusItem = page.locator('#workbench\\.parts\\.statusbar .statusbar-item').filter({ hasText: 'all-MiniLM-L6-v2 ·' });
  say(`workbench ready after ${timings.workbenchReadyMs} ms; Xetrieval status item before any command: ${(await statusItem.count()) ? 'present' : 'absent'}`);

  // The Extensions view lists it as installed.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Shift+X');
  // Its "<server> - Installed" section: extensions installed on the server (not the browser's, not recommended ones).
  const installedPane = page.locator('.extensions-viewlet .pane').filter({ has: page.locator('.pane-header', { hasText: new RegExp(`${server.port} - installed`, 'i') }) });
  const extRow = installedPane.locator('.monaco-list-row').filter({ hasText: 'Xetrieval' });
  await extRow.first().waitFor({ timeout: 30_000 }).catch(() => {});
  const extRowText = ((await extRow.first().locator('.name').textContent().catch(() => '')) ?? '').trim();
  const installedRows = await installedPane.locator('.monaco-list-row').count();
  say(`Extensions view, installed on the server: ${installedRows} row(s), "${extRowText}"`);
  check(extRowText === 'Xetrieval' && installedRows === 1, 'the Extensions view lists Xetrieval as the one extension installed on the server');
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'ui-vsix-extensions.png') });
  await palette('View: Show Explorer', /Show Explorer/);

  // 4. Set Query from Selection: the first line of notes.txt (this command activates the extension).
  await quickOpen('notes.txt');
  const editor = page.locator('.editor-instance .monaco-editor').filter({ hasText: 'Vitamin D deficiency' }).first();
  await editor.waitFor({ timeout: 20_000 });
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('Shift+End');
  t = performance.now();
  await palette('Xetrieval: Set Query from Selection', undefined, { escape: false });
  await statusItem.first().waitFor({ timeout: 60_000 });
  timings.activationMs = since(t);
  const queryItem = page.locator('#workbench\\.parts\\.statusbar .statusbar-item').filter({ hasText: 'Vitamin D deficiency' });
  await queryItem.first().waitFor({ timeout: 10_000 }).catch(() => {});
  const queryItemText = ((await queryItem.first().textContent().catch(() => '')) ?? '').trim();
  say(`activated in ${timings.activationMs} ms: status "${(await statusItem.first().textContent())?.trim()}", query item "${queryItemText}"`);
  check(queryItemText.startsWith('Vitamin D deficiency'), `the query status item shows the selected query ("${queryItemText}")`);

  // 5. Explain Selection: the second paragraph against that query.
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+Control+End');
  t = performance.now();
  await palette('Xetrieval: Explain Selection', undefined, { escape: false });
  const frame = webviewFrame(page);
  await frame.locator('#feature-table tbody tr.feature').first().waitFor({ timeout: 180_000 });
  timings.explainSelectionToPaintMs = since(t);
  const scoreText = ((await frame.locator('#raw-score').textContent()) ?? '').trim();
  const score = Number(scoreText);
  const nFeatures = await frame.locator('#feature-table tbody tr.feature').count();
  const labels = (await frame.locator('#feature-table tbody tr.feature td.label').allTextContents()).map((s) => s.trim());
  const countText = ((await frame.locator('#feature-count').textContent().catch(() => '')) ?? '').trim();
  say(`Explain Selection → painted in ${timings.explainSelectionToPaintMs} ms: score ${scoreText}, ${nFeatures} feature rows (${countText}); labels: ${labels.slice(0, 4).join(' | ')}`);
  check(scoreText !== '' && Number.isFinite(score) && score > 0 && score <= 1, `the panel paints a score (${scoreText})`);
  check(nFeatures > 0 && labels.some((l) => l && l !== '(unlabelled)'), `the panel paints ${nFeatures} shared features with labels`);
  const body = (await frame.locator('body').textContent()) ?? '';
  check(body.includes('Vitamin D deficiency') && body.includes('25-hydroxyvitamin D'), 'the panel shows the selected query and document');

  // 6. Status bar: the model and the device the worker runs on.
  const readyItem = statusItem.filter({ hasText: /· ready/ });
  await readyItem.first().waitFor({ timeout: 30_000 }).catch(() => {});
  timings.statusText = ((await statusItem.first().textContent()) ?? '').trim();
  const cudaPossible = fs.existsSync('/dev/nvidiactl');
  check(
    (cudaPossible ? /all-MiniLM-L6-v2 · (CPU|CUDA) · fp32 · ready/ : /all-MiniLM-L6-v2 · CPU · fp32 · ready/).test(timings.statusText),
    `the status bar shows the model and the device: "${timings.statusText}"`,
  );

  // 7. The panel's code is the installed copy's: its script URL points into the temp extensions folder.
  const scripts = await frame.locator('script[src]').evaluateAll((els) => els.map((e) => e.src));
  const scriptPaths = scripts.map((s) => decodeURIComponent(new URL(s).pathname));
  say(`panel script(s): ${scriptPaths.join(', ')}`);
  check(scriptPaths.some((p) => p.endsWith(`${installed}/dist/webview.js`)), 'the panel loads dist/webview.js from the installed copy');
  check(!scriptPaths.some((p) => p.startsWith(`${root}/`)), 'the panel loads nothing from the repository');

  await page.mouse.move(1200, 50); // empty tab-bar space: no tooltip there
  await page.waitForTimeout(600);
  await page.screenshot({ path: path.join(outDir, 'ui-vsix-panel.png') });
  say('screenshot test-results/ui-vsix-panel.png');

  // 8. The status item's click opens the worker log; its "worker ready" line names the worker's pid,
  //    whose command line is the installed copy's dist/worker.js.
  await statusItem.first().click();
  const outputLines = page.locator('.output-view .view-lines, .panel .output .view-lines, [id="workbench.panel.output"] .view-lines');
  let logText = '';
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await page.waitForTimeout(300)) {
    logText = (await outputLines.allTextContents().catch(() => [])).join('\n').replace(/\u00a0/g, ' '); // the editor renders spaces as NBSP
    if (/worker ready/.test(logText)) break;
  }
  const ready = /worker ready: (\w+), pid (\d+)/.exec(logText);
  say(`Output "Xetrieval": ${ready ? ready[0] : `no "worker ready" line (${logText.slice(0, 200)})`}`);
  check(!!ready, 'the Output channel "Xetrieval" opens from the status item and logs the worker start');
  if (ready) {
    const cmdline = procCmdline(Number(ready[2]));
    say(`worker pid ${ready[2]}: ${cmdline}`);
    check(cmdline.includes(`${installed}/dist/worker.js`), 'the worker process runs the installed copy\'s dist/worker.js');
  }
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'ui-vsix-log.png') });
  say('screenshot test-results/ui-vsix-log.png');

  // 9. The extension host's own log: the extension activated (on the palette command; the exthost log names no paths).
  const exthostLog = readExthostLog(serverData);
  const activated = /_doActivateExtension xetrieval\.xetrieval\b.*onCommand:xetrieval\.setQueryFromSelection/.test(exthostLog);
  say(`extension host log: ${(/.*_doActivateExtension xetrieval\.xetrieval.*/.exec(exthostLog) ?? ['no activation line'])[0]}`);
  check(activated, 'the extension host log shows xetrieval.xetrieval activated by Set Query from Selection');
  const workers = processesOfGroup(server.port).filter((p) => /worker\.js/.test(p.cmdline));
  say(`worker processes under the server: ${workers.map((p) => `${p.pid} ${p.cmdline}`).join(' ; ') || 'none'}`);
  check(workers.length > 0 && workers.every((p) => p.cmdline.includes(installed) && !p.cmdline.includes(`${root}/dist`)), 'every worker under this server runs from the installed copy');
} catch (e) {
  failures.push(String(e));
  say(`failed: ${e.stack ?? e}`);
  await page.screenshot({ path: path.join(outDir, 'ui-vsix-failure.png') }).catch(() => {});
} finally {
  await context.close().catch(() => {});
  server.stop();
}
timings.totalMs = Date.now() - t0;
if (failures.length === 0 && process.env.XETRIEVAL_HOST_KEEP !== '1') fs.rmSync(scratch, { recursive: true, force: true });
else say(`scratch kept: ${scratch}`);
say(`${failures.length ? `${failures.length} check(s) failed: ${failures.join(' | ')}` : 'all checks passed'}`);
console.log(JSON.stringify({ timings, failures }));
process.exit(failures.length ? 1 : 0);

/** $XETRIEVAL_VSIX, else a fresh existing package, else a new one (kept in out/vsix/ for the next run). */
async function pickVsix() {
  if (process.env.XETRIEVAL_VSIX) {
    const given = path.resolve(process.env.XETRIEVAL_VSIX);
    const why = await staleReason(given);
    say(`using $XETRIEVAL_VSIX as given${why ? ` (note: ${why})` : ' (matches the built tree)'}`);
    return given;
  }
  for (const candidate of [sharedVsix, path.join(root, 'xetrieval-linux-x64.vsix')]) {
    if (!fs.existsSync(candidate)) continue;
    const why = await staleReason(candidate);
    if (!why) {
      say(`reusing ${path.relative(root, candidate)}: every entry matches the built tree`);
      return candidate;
    }
    say(`not reusing ${path.relative(root, candidate)}: ${why}`);
  }
  const fresh = path.join(scratch, 'xetrieval-linux-x64.vsix');
  say('packaging (vsce package --target linux-x64)…');
  const vsce = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/@vscode/vsce/vsce'), 'package', '--target', 'linux-x64', '--allow-missing-repository', '--skip-license', '-o', fresh],
    { cwd: root, encoding: 'utf8' },
  );
  if (vsce.status !== 0) throw new Error(`vsce package failed (${vsce.status}): ${vsce.stderr || vsce.stdout}`);
  // Others may rebuild dist/ meanwhile: then the package holds the tree as it was, and is not kept.
  const why = await staleReason(fresh);
  if (why) {
    say(`note: the tree changed while packaging (${why}); testing the package as made, not keeping it`);
    return fresh;
  }
  // Leave it for the next run: copy then rename, so a concurrent reader never sees half a file.
  try {
    fs.mkdirSync(path.dirname(sharedVsix), { recursive: true });
    const tmp = `${sharedVsix}.${process.pid}.tmp`;
    fs.copyFileSync(fresh, tmp);
    fs.renameSync(tmp, sharedVsix);
  } catch (e) {
    say(`could not keep the package in out/vsix/: ${e.message}`);
  }
  return fresh;
}

/**
 * Why the .vsix at `file` does not hold the current tree, or '' when it does:
 * every `extension/<path>` entry (but the readme vsce rewrites) must have the
 * CRC-32 and size of `<root>/<path>`, and every non-map file under dist/,
 * models/ and media/ must be in it.
 */
async function staleReason(file) {
  const yauzl = createRequire(path.join(root, 'package.json'))('yauzl');
  let entries;
  try {
    entries = await new Promise((resolve, reject) => {
      yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => {
        if (err) return reject(err);
        const out = [];
        zip.on('entry', (e) => {
          out.push(e);
          zip.readEntry();
        });
        zip.on('end', () => resolve(out));
        zip.on('error', reject);
        zip.readEntry();
      });
    });
  } catch (e) {
    return `unreadable (${e.message})`;
  }
  const inPackage = new Set();
  for (const e of entries) {
    if (!e.fileName.startsWith('extension/') || e.fileName.endsWith('/')) continue;
    const rel = e.fileName.slice('extension/'.length);
    inPackage.add(rel);
    if (/^readme\.md$|^changelog\.md$|^license(\.\w+)?$/i.test(rel)) continue;
    const onDisk = path.join(root, rel);
    if (!fs.existsSync(onDisk)) return `${rel} is no longer in the tree`;
    const buf = fs.readFileSync(onDisk);
    if (buf.length !== e.uncompressedSize || zlib.crc32(buf) !== e.crc32) return `${rel} differs from the tree`;
  }
  for (const dir of ['dist', 'models', 'media']) {
    if (!fs.existsSync(path.join(root, dir))) continue;
    for (const f of fs.readdirSync(path.join(root, dir), { recursive: true })) {
      const rel = `${dir}/${f}`.split(path.sep).join('/');
      if (rel.endsWith('.map') || !fs.statSync(path.join(root, rel)).isFile()) continue;
      if (!inPackage.has(rel)) return `${rel} is missing from it`;
    }
  }
  if (!inPackage.has('package.json') || !inPackage.has('dist/extension.js')) return 'no package.json or dist/extension.js in it';
  return '';
}

/** A process's command line, '' when it is gone. */
function procCmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** The processes in the server's process group (the server runs detached: it leads its own group). */
function processesOfGroup(port) {
  const all = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((pid) => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
        return { pid: Number(pid), pgid, cmdline: procCmdline(pid) };
      } catch {
        return undefined;
      }
    })
    .filter(Boolean);
  const leader = all.find((p) => p.cmdline.includes(serverMain) && p.cmdline.includes(`--port ${port} `));
  return leader ? all.filter((p) => p.pgid === leader.pgid) : [];
}

/** The remote extension host's log(s) under the server's data folder. */
function readExthostLog(dir) {
  const logs = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'remoteexthost.log' || e.name === 'exthost.log') logs.push(fs.readFileSync(p, 'utf8'));
    }
  };
  try {
    walk(dir);
  } catch {}
  return logs.join('\n');
}

/** F1, type the command's title, wait until the top row matches, Enter. */
async function palette(title, match, opts) {
  return runFromPalette(page, title, match, opts);
}

/** Ctrl+P, file name, Enter. */
async function quickOpen(name) {
  return quickOpenFile(page, name);
}
