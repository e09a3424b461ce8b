#!/usr/bin/env node
// Drives compare mode in a real workbench with the real model and bundle,
// by palette, clicks and the Cases view's context menu only: Explain Eval File
// on examples/pairs.jsonl, right-click a failing query (the git one) → "Compare with
// the Best Relevant Document", check what the compare view shows, click
// "Apply as steering sliders", and take screenshots:
//   XETRIEVAL_CACHE_DIR=$HOME/.cache/xetrieval node test/host/ui-compare.mjs
//     → test-results/ui-compare.png, ui-compare-words.png, ui-compare-applied.png; exit 0 when every check passed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { casesView, openBrowser, quickOpenFile, runFromPalette, startServer, webviewFrame, workbenchUrl } from './lib.mjs';
import { build, makeWorkspace, root } from './prepare.mjs';

const outDir = path.join(root, 'test-results');
const t0 = Date.now();
const say = (m) => console.log(`[compare ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const failures = [];
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

await build();
fs.mkdirSync(outDir, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-compare-'));
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

  await quickOpen('pairs.jsonl');
  await palette('Xetrieval: Explain Eval File');
  const { pane: casesPane } = await casesView(page);
  const rows = casesPane.locator('.monaco-list-row');
  await rows.first().waitFor({ timeout: 120_000 });
  await page.locator('.notification-toast, .notifications-toasts .monaco-list-row').filter({ hasText: /Explained \d+ case/ }).first().waitFor({ timeout: 300_000 }).catch(() => say('no completion notification seen'));
  // the git query (its flip set is found), else the first failing one; query rows only (level 2): the file row's
  // description also says "failing", and while the file is still streaming it may be the only such row
  const queryRows = casesPane.locator('.monaco-list-row[aria-level="2"]');
  const gitRow = queryRows.filter({ hasText: 'failing' }).filter({ hasText: 'git' });
  await gitRow.first().waitFor({ timeout: 60_000 }).catch(() => say('no failing git row seen'));
  const failingRow = (await gitRow.count()) ? gitRow.first() : queryRows.filter({ hasText: 'failing' }).first();
  await palette('Notifications: Clear All Notifications').catch(() => {});
  const rowText = (await failingRow.textContent())?.trim();
  say(`first failing row: ${rowText}`);

  // the Cases view's context menu (again when the tree re-rendered under the click and the menu is another row's)
  const item = page.locator('.context-view .action-item, .monaco-menu .action-item').filter({ hasText: 'Compare with the Best Relevant Document' }).first();
  for (let attempt = 1; ; attempt++) {
    await page.waitForTimeout(500);
    await failingRow.click({ button: 'right' });
    if (await item.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
    if (attempt === 3) throw new Error('the failing row has no "Compare with the Best Relevant Document" in its context menu');
    await page.keyboard.press('Escape');
  }
  await page.waitForTimeout(300);
  await item.click();
  // on a loaded machine the first click can land before the menu takes input
  await page.waitForTimeout(1000);
  if (await item.isVisible().catch(() => false)) await item.click().catch(() => page.keyboard.press('Enter'));

  // the compare view: whichever webview holds the chart
  let frame;
  for (const deadline = Date.now() + 120_000; !frame; await page.waitForTimeout(250)) {
    const n = await page.locator('iframe.webview.ready').count();
    for (let i = 0; i < n && !frame; i++) {
      const f = webviewFrame(page, i);
      if ((await f.locator('#chart .row').count().catch(() => 0)) > 0) frame = f;
    }
    if (Date.now() > deadline) throw new Error('no compare view with a chart appeared');
  }
  const flipText = (await frame.locator('#flip-text').textContent())?.trim() ?? '';
  const bars = await frame.locator('#chart .row:not(.rest)').count();
  const flipRows = await frame.locator('#chart .row.in-flip').count();
  const flipItems = await frame.locator('.flip-features li').count();
  const minusId = (await frame.locator('#doc-minus .id').textContent())?.trim();
  const plusId = (await frame.locator('#doc-plus .id').textContent())?.trim();
  const diff = (await frame.locator('#difference').textContent())?.trim();
  say(`compare view: ${minusId} vs ${plusId}; ${diff}; ${bars} bars, ${flipRows} highlighted; flip: ${flipText}`);
  check(bars > 0, `the diverging chart has ${bars} feature bars`);
  check(!!minusId && !!plusId && minusId !== plusId, `d− (${minusId}) and d+ (${plusId}) side by side`);
  check(/d\+ wins by|no set of at most 20/.test(flipText), `the flip line: "${flipText}"`);
  if (/d\+ wins by/.test(flipText)) check(flipItems > 0 && flipRows <= flipItems, `${flipItems} flip features listed, ${flipRows} of them highlighted among the bars`);
  await page.mouse.move(5, 450);
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'ui-compare.png') });
  say('screenshot test-results/ui-compare.png');

  // the words behind the top contrast features, marked once occlusion has run
  const marks = frame.locator('mark.word');
  for (const deadline = Date.now() + 120_000; !(await marks.count()) && Date.now() < deadline; ) await page.waitForTimeout(250);
  const markTexts = await marks.allTextContents();
  check(markTexts.length > 0, `${markTexts.length} word marks in the documents: ${markTexts.slice(0, 8).join(' | ')}`);
  if (markTexts.length) {
    await marks.first().scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(outDir, 'ui-compare-words.png') });
    say('screenshot test-results/ui-compare-words.png');
    await frame.locator('#flip').scrollIntoViewIfNeeded();
  }

  const apply = frame.locator('#apply-flip');
  if (await apply.count()) {
    await apply.click();
    const status = frame.locator('#apply-status');
    await status.waitFor({ timeout: 10_000 });
    for (const deadline = Date.now() + 120_000; !((await status.textContent()) ?? '').trim(); await page.waitForTimeout(250)) {
      if (Date.now() > deadline) break;
    }
    const st = ((await status.textContent()) ?? '').trim();
    check(/α = 0/.test(st) && /on the whole file/i.test(st), `after the click: "${st}"`);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(outDir, 'ui-compare-applied.png') });
    say('screenshot test-results/ui-compare-applied.png');
  }
} catch (e) {
  failures.push(String(e?.message ?? e));
  say(`FAIL ${e?.message ?? e}`);
  await page.screenshot({ path: path.join(outDir, 'ui-compare-failed.png') }).catch(() => {});
} finally {
  await context.close().catch(() => {});
  server.stop();
  if (!failures.length && process.env.XETRIEVAL_HOST_KEEP !== '1') fs.rmSync(scratch, { recursive: true, force: true });
}
console.log(JSON.stringify({ failures }));
process.exit(failures.length ? 1 : 0);

async function palette(title, match, opts) {
  return runFromPalette(page, title, match, opts);
}

async function quickOpen(name) {
  return quickOpenFile(page, name);
}
