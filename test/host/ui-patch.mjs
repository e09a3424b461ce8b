#!/usr/bin/env node
// Drives "Xetrieval: Patch This Case…" in a real workbench with the real model,
// by palette, clicks, quick picks and the Cases view's context menu only:
// Explain Eval File on examples/pairs.jsonl, right-click a query of the Cases
// view → "Patch This Case…", pick its first document, TFC1 and the default
// term (the one `xetrieval patch` draws), check what the patching view shows, and take screenshots:
//   XETRIEVAL_CACHE_DIR=$HOME/.cache/xetrieval node test/host/ui-patch.mjs
//     → test-results/ui-patch.png (maps), ui-patch-tokens.png (top tokens per layer); exit 0 when every check passed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { casesView, openBrowser, quickOpenFile, runFromPalette, startServer, webviewFrame, workbenchUrl } from './lib.mjs';
import { build, makeWorkspace, root } from './prepare.mjs';

const outDir = path.join(root, 'test-results');
const t0 = Date.now();
const say = (m) => console.log(`[patch ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const failures = [];
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

await build();
fs.mkdirSync(outDir, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-patch-'));
const { workspace, cacheDir } = makeWorkspace(scratch);
fs.copyFileSync(path.join(root, 'examples', 'pairs.jsonl'), path.join(workspace, 'pairs.jsonl'));
const server = await startServer(scratch, { env: { XETRIEVAL_CACHE_DIR: cacheDir } });
const { context, page } = await openBrowser(path.join(scratch, 'chromium'));
try {
  await page.exposeFunction('codeAutomationExit', () => {});
  await page.exposeFunction('codeAutomationLog', () => {});
  await page.goto(workbenchUrl(server, workspace));
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await page.locator('#workbench\\.parts\\.statusbar').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1500);

  await quickOpenFile(page, 'pairs.jsonl');
  await runFromPalette(page, 'Xetrieval: Explain Eval File');
  const { pane: casesPane } = await casesView(page);
  const rows = casesPane.locator('.monaco-list-row');
  await rows.first().waitFor({ timeout: 120_000 });
  await page.locator('.notification-toast, .notifications-toasts .monaco-list-row').filter({ hasText: /Explained \d+ case/ }).first().waitFor({ timeout: 300_000 }).catch(() => say('no completion notification seen'));
  await runFromPalette(page, 'Notifications: Clear All Notifications').catch(() => {});
  // the egg query (short documents), else the first query
  const eggRow = rows.filter({ hasText: 'egg' });
  const row = (await eggRow.count()) ? eggRow.first() : rows.first();
  say(`row: ${(await row.textContent())?.trim()}`);

  const item = page.locator('.context-view .action-item, .monaco-menu .action-item').filter({ hasText: 'Patch This Case…' }).first();
  for (let attempt = 1; ; attempt++) {
    await page.waitForTimeout(500);
    await row.click({ button: 'right' });
    if (await item.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
    if (attempt === 3) throw new Error('the row has no "Patch This Case…" in its context menu');
    await page.keyboard.press('Escape');
  }
  await page.waitForTimeout(300);
  await item.click();

  // quick picks: the document (first), the axiom (TFC1), the term (the default, first)
  const qinput = page.locator('.quick-input-widget .quick-input-box input');
  const qtitle = page.locator('.quick-input-widget .quick-input-title');
  const pickStep = async (titleRe, text) => {
    await qinput.waitFor({ timeout: 30_000 });
    for (const deadline = Date.now() + 30_000; !titleRe.test((await qtitle.textContent().catch(() => '')) ?? ''); await page.waitForTimeout(100)) {
      if (Date.now() > deadline) throw new Error(`no quick pick titled ${titleRe}`);
    }
    say(`quick pick: ${(await qtitle.textContent())?.trim()}`);
    if (text) await qinput.fill(text);
    await page.waitForTimeout(300);
    const first = (await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').first().getAttribute('aria-label').catch(() => '')) ?? '';
    await page.keyboard.press('Enter');
    return first;
  };
  // a query row asks for its document first; a case row goes straight to the axiom
  await qinput.waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  if (/Patch which document/.test((await qtitle.textContent().catch(() => '')) ?? '')) await pickStep(/Patch which document/);
  await pickStep(/which axiom/, 'TFC1');
  // the default term, the one `xetrieval patch --axiom TFC1` draws for this pair
  const defaultTerm = await pickStep(/query term to append/);

  // the patching view: whichever webview holds the block map
  let frame;
  for (const deadline = Date.now() + 300_000; !frame; await page.waitForTimeout(500)) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let i = 0; i < n && !frame; i++) {
      const f = webviewFrame(page, i);
      if ((await f.locator('#block-map td').count().catch(() => 0)) > 0) frame = f;
    }
    if (Date.now() > deadline) throw new Error('no patching view with a block map appeared');
  }
  await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 } }).catch(() => {});
  const tokens = await frame.locator('#block-map th.tok').allTextContents();
  const changed = await frame.locator('#block-map th.tok.changed').allTextContents();
  const blockCells = await frame.locator('#block-map td').count();
  const headCells = await frame.locator('#head-map td').count();
  const depthRows = await frame.locator('#top-tokens tbody tr').count();
  const scores = (await frame.locator('#scores').textContent())?.trim();
  const caption = (await frame.locator('#caption').textContent())?.trim() ?? '';
  const appended = (await frame.locator('mark.appended').textContent())?.trim();
  check(!!appended && defaultTerm.startsWith(appended), `the default term is appended: ${appended} (the pick's first row: ${defaultTerm})`);
  say(`view: ${tokens.length} token labels (changed: ${changed.join(' ')}), ${blockCells} block cells, ${headCells} head cells, ${depthRows} depths; ${scores}`);
  check(tokens.length > 5 && blockCells === 3 * 6 * tokens.length, `block map: 3 blocks × 6 layers × ${tokens.length} positions = ${blockCells} cells`);
  check(headCells === 6 * 12, `head map: 6 × 12 = ${headCells} cells`);
  check(changed.length >= 1, `the perturbed position(s) marked: ${changed.join(' ')}`);
  check(depthRows === 7, `top tokens at ${depthRows} depths`);
  check(/s_patched − s_orig/.test(caption), 'the caption says what the metric means');
  const tip = await frame.locator('#head-map td').first().getAttribute('title');
  check(/metric [+−]\d/.test(tip ?? ''), `a head cell's tooltip: ${JSON.stringify(tip)}`);

  // wider: the view alone in the window
  await page.locator('.tab').filter({ hasText: 'pairs.jsonl' }).first().click().catch(() => {});
  await runFromPalette(page, 'View: Close All Editors in Group').catch(() => say('could not close the file\'s group'));
  await runFromPalette(page, 'View: Close Primary Side Bar').catch(() => say('could not close the side bar'));
  await page.waitForTimeout(800);
  await page.mouse.move(5, 450);
  await page.screenshot({ path: path.join(outDir, 'ui-patch.png') });
  say('screenshot test-results/ui-patch.png');
  await frame.locator('#top-tokens').scrollIntoViewIfNeeded();
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'ui-patch-tokens.png') });
  say('screenshot test-results/ui-patch-tokens.png');
} catch (e) {
  failures.push(String(e?.message ?? e));
  say(`FAIL ${e?.message ?? e}`);
  await page.screenshot({ path: path.join(outDir, 'ui-patch-failed.png') }).catch(() => {});
} finally {
  await context.close().catch(() => {});
  server.stop();
  if (!failures.length && process.env.XETRIEVAL_HOST_KEEP !== '1') fs.rmSync(scratch, { recursive: true, force: true });
}
console.log(JSON.stringify({ failures }));
process.exit(failures.length ? 1 : 0);
