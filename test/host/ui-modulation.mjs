#!/usr/bin/env node
// Drives "Xetrieval: Modulate with IMRNN Adapter…" in a real workbench with the real model,
// bundle and a released IMRNN adapter, through the palette, the file dialog and clicks only,
// and screenshots the panel's Modulation section (not part of npm test):
//   XETRIEVAL_CACHE_DIR=$HOME/.cache/xetrieval node test/host/ui-modulation.mjs
//     → test-results/ui-modulation-notification.png, ui-modulation.png, ui-modulation-section.png
// Env: XETRIEVAL_SAMPLE_PAIRS (default /work/shared/data/scifact/sample_pairs.jsonl),
//      XETRIEVAL_ADAPTER (default /work/shared/models/imrnn-minilm/imrnns-minilm-scifact.safetensors),
//      XETRIEVAL_HOST_VERBOSE=1, XETRIEVAL_HOST_KEEP=1
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import { isNoise, openBrowser, quickOpenFile, runFromPalette, startServer, webviewFrame, workbenchUrl } from './lib.mjs';
import { build, makeWorkspace, root } from './prepare.mjs';

const verbose = process.env.XETRIEVAL_HOST_VERBOSE === '1';
const pairsSrc = process.env.XETRIEVAL_SAMPLE_PAIRS || '/work/shared/data/scifact/sample_pairs.jsonl';
const adapterSrc = process.env.XETRIEVAL_ADAPTER || '/work/shared/models/imrnn-minilm/imrnns-minilm-scifact.safetensors';
const outDir = path.join(root, 'test-results');
const t0 = Date.now();
const say = (m) => console.log(`[modulation ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const failures = [];
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

await build();
fs.mkdirSync(outDir, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-modulation-'));
const { workspace, cacheDir } = makeWorkspace(scratch);
fs.copyFileSync(pairsSrc, path.join(workspace, 'sample_pairs.jsonl'));
const adapter = path.join(workspace, path.basename(adapterSrc));
fs.copyFileSync(adapterSrc, adapter);

const server = await startServer(scratch, { env: { XETRIEVAL_CACHE_DIR: cacheDir }, verbose });
const { context, page } = await openBrowser(path.join(scratch, 'chromium'));
try {
  await page.exposeFunction('codeAutomationExit', () => {});
  await page.exposeFunction('codeAutomationLog', (level, args) => {
    const line = format(...(Array.isArray(args) ? args : [args]));
    if (verbose || (!isNoise(line) && level !== 'info')) say(`workbench ${level}: ${line.replace(/\s+/g, ' ').slice(0, 300)}`);
  });
  page.on('console', (msg) => {
    if (/webview|vscode-cdn|vscode-resource/.test(msg.location().url ?? '') && (msg.type() === 'error' || msg.type() === 'warning')) say(`webview console ${msg.type()}: ${msg.text()}`);
  });
  await page.goto(workbenchUrl(server, workspace));
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await page.waitForTimeout(1500);

  // the eval file, explained
  await quickOpenFile(page, 'sample_pairs.jsonl');
  await runFromPalette(page, 'Xetrieval: Explain Eval File');
  const done = page.locator('.notification-toast').filter({ hasText: /Explained \d+ case/ });
  await done.first().waitFor({ timeout: 300_000 });
  say('eval file explained');

  // the command, the file dialog answered by typing the adapter's path
  await runFromPalette(page, 'Xetrieval: Modulate with IMRNN Adapter…');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ timeout: 10_000 });
  await page.waitForTimeout(500);
  await input.fill(adapter);
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
  const note = page.locator('.notification-toast').filter({ hasText: /IMRNN adapter .*NDCG@10/ });
  await note.first().waitFor({ timeout: 300_000 });
  const noteText = (await note.first().textContent())?.trim() ?? '';
  say(`notification: ${noteText}`);
  check(/NDCG@10 0\.\d{3} → 0\.\d{3}.*MRR@10.*Recall@100/.test(noteText), 'the notification gives NDCG@10, MRR@10 and Recall@100 before → after');
  await page.waitForTimeout(1000); // the progress toast gone
  await page.screenshot({ path: path.join(outDir, 'ui-modulation-notification.png') });

  // a failing query's relevant document, from the Cases view
  const casesPane = page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: /^Cases/i }) });
  const rows = casesPane.locator('.monaco-list-row');
  await rows.first().waitFor({ timeout: 30_000 });
  const failingRow = rows.filter({ has: page.locator('.label-name .highlight') }).first();
  await failingRow.click();
  if ((await failingRow.getAttribute('aria-expanded')) !== 'true') await page.keyboard.press('ArrowRight');
  const relevant = rows.filter({ hasText: 'label 1' }).first();
  await relevant.waitFor({ timeout: 10_000 });
  say(`opening ${(await relevant.textContent())?.trim()}`);
  await relevant.click();
  const frame = webviewFrame(page);
  const section = frame.locator('#modulation[data-status="ready"]');
  await section.waitFor({ timeout: 120_000 });
  const rank = (await frame.locator('#mod-rank').textContent())?.trim();
  const score = (await frame.locator('#mod-score').textContent())?.trim();
  const amplified = await frame.locator('.mod-side.query .mod-features.amplified li .label').allTextContents();
  const suppressed = await frame.locator('.mod-side.query .mod-features.suppressed li .label').allTextContents();
  const tokens = await frame.locator('.mod-side.document .mod-tokens .tok').allTextContents();
  say(`rank ${rank}; similarity ${score}; query amplified: ${amplified.join(', ')}; suppressed: ${suppressed.join(', ')}; document tokens: ${tokens.join(' ')}`);
  check(/^\d+ → \d+$/.test(rank ?? ''), 'the section shows the rank before → after');
  check(amplified.length > 0 && suppressed.length > 0 && amplified.every((l) => l && l !== '(no label)'), 'labelled SAE features amplified and suppressed');
  check(tokens.length === 8, 'eight tokens along the document shift');
  check((await frame.locator('#mod-metrics tbody tr').count()) === 3, 'the eval file\'s three metrics before and after');
  // the panel alone, wide (its side column, Modulation first, beside the feature table), no toasts over it
  await runFromPalette(page, 'Notifications: Clear All Notifications').catch((e) => say(`notifications stay: ${e.message}`));
  await runFromPalette(page, 'View: Toggle Primary Side Bar Visibility').catch((e) => say(`side bar stays: ${e.message}`));
  // the eval file's editor closed: its empty group goes and the panel takes the width
  const fileTab = page.locator('.tabs-container .tab').filter({ hasText: 'sample_pairs.jsonl' }).first();
  await fileTab.click();
  await fileTab.locator('.tab-actions .action-label').first().click().catch((e) => say(`editor stays: ${e.message}`));
  await page.mouse.move(500, 700); // empty table space: no tooltip
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(outDir, 'ui-modulation.png') });
  // the whole section, scrolled to, within the webview's box
  await frame.locator('.mod-side.document').scrollIntoViewIfNeeded();
  await page.waitForTimeout(400);
  const box = await page.locator('iframe.webview.ready').first().boundingBox();
  await page.screenshot({ path: path.join(outDir, 'ui-modulation-section.png'), clip: box ?? undefined });
  say('screenshots test-results/ui-modulation{,-notification,-section}.png');
} catch (e) {
  failures.push(String(e?.message ?? e));
  say(`FAIL ${e?.stack ?? e}`);
  await page.screenshot({ path: path.join(outDir, 'ui-modulation-failed.png') }).catch(() => {});
} finally {
  await context.close().catch(() => {});
  server.stop();
}
if (failures.length === 0 && process.env.XETRIEVAL_HOST_KEEP !== '1') fs.rmSync(scratch, { recursive: true, force: true });
else say(`scratch kept: ${scratch}`);
say(failures.length ? `${failures.length} step(s) failed: ${failures.join(' | ')}` : 'all steps passed');
process.exit(failures.length ? 1 : 0);
