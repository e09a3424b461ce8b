#!/usr/bin/env node
// Drives the explanation panel in a real workbench and takes screenshots:
//   node test/host/ui-panel.mjs            → test-results/panel-*.png, exit 0 when every check passed
// It starts the VS Code server with XETRIEVAL_TEST=1, opens the workbench in
// headless Chromium with a small extensionTestsPath entry that runs
// `xetrieval.test.showSamplePanel` (200 features, no worker) and then waits
// for orders from this driver (files in the scratch folder), so the driver
// can hide/reveal the panel and switch themes between screenshots.
//
// Env: XETRIEVAL_HOST_VERBOSE=1 (server output and workbench log), XETRIEVAL_HOST_KEEP=1 (keep the scratch folder)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import * as esbuild from 'esbuild';
import { isNoise, openBrowser, startServer, webviewFrame, workbenchUrl } from './lib.mjs';
import { build, makeWorkspace, root } from './prepare.mjs';

const verbose = process.env.XETRIEVAL_HOST_VERBOSE === '1';
const outDir = path.join(root, 'test-results');
const t0 = Date.now();
const say = (m) => console.log(`[ui ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const failures = [];
const timings = {};
const check = (ok, what) => {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

await build();
fs.mkdirSync(outDir, { recursive: true });
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-ui-'));
const { workspace } = makeWorkspace(scratch);
const control = path.join(scratch, 'control');
fs.mkdirSync(control);

// The panel code for the entry's fallback, for a tree whose extension.ts does not call wirePanel yet.
// Both files go to the scratch folder, not out/ (a test run beside this one may empty out/ at any time).
const bundle = path.join(scratch, 'ui-panel-bundle.js');
await esbuild.build({
  stdin: { contents: "export * from './src/extension/panel'; export * from './src/extension/panelWiring';", resolveDir: root, loader: 'ts' },
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['vscode'],
  logLevel: 'warning',
});
const entry = path.join(scratch, 'ui-panel-entry.js');
fs.writeFileSync(entry, entrySource(control, bundle));

const logs = [];
let onLog = () => {};
let seq = 0;
const server = await startServer(scratch, { env: { XETRIEVAL_TEST: '1' }, verbose });
say(`server on 127.0.0.1:${server.port}`);
const { context, page } = await openBrowser(path.join(scratch, 'chromium'));
try {
  await page.exposeFunction('codeAutomationExit', () => {});
  // The webview's own console (warnings and errors only): it runs in a frame of this page.
  const consoleLines = [];
  page.on('console', (msg) => {
    // VS Code's own webview host frame warns about its sandbox flags on every load: not ours.
    if (/allow-scripts and allow-same-origin/.test(msg.text())) return;
    if (/webview|vscode-cdn|vscode-resource/.test(msg.location().url ?? '') && (msg.type() === 'error' || msg.type() === 'warning')) {
      consoleLines.push(`${msg.type()}: ${msg.text()}`);
      say(`webview console ${msg.type()}: ${msg.text()}`);
    }
  });
  await page.exposeFunction('codeAutomationLog', (level, args) => {
    const line = format(...(Array.isArray(args) ? args : [args]));
    const m = /^\[panel-log\] (.*)$/.exec(line);
    if (m) {
      const l = JSON.parse(m[1]);
      logs.push(l);
      onLog(l);
      if (l.level !== 'info' || verbose) say(`webview ${l.level}: ${l.message}`);
    } else if (line.startsWith('[ui-entry]') || verbose || (!isNoise(line) && level !== 'info')) say(line);
  });
  await page.goto(workbenchUrl(server, workspace, entry));
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  await host('ping', {}, 60_000);
  say('workbench and entry ready');

  // 1. The sample case in the dark theme: 200 feature rows painted, time reported by the webview.
  await host('theme', { name: 'Default Dark Modern' });
  const painted = waitLog((l) => l.rendered?.reason === 'case');
  const shown = await host('show', { features: 200 });
  say(`panel shown via ${shown.via}`);
  const first = await painted;
  check(first.rendered.rows === 200, `painted ${first.rendered.rows} feature rows`);
  say(`receive → paint of 200 rows: ${first.rendered.ms.toFixed(1)} ms`);
  timings.paint200RowsMs = Number(first.rendered.ms.toFixed(1));
  const frame = webviewFrame(page);
  await frame.locator('#feature-table tbody tr.feature').first().waitFor();
  check((await frame.locator('#feature-table tbody tr.feature').count()) === 200, '200 rows in the DOM');
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'panel-dark.png') });
  say('screenshot test-results/panel-dark.png');
  // A dozen suggested sliders: five are drawn, the rest behind "Show 7 more".
  const nSliders = (await host('state')).sliders.length;
  check(nSliders === 12 && (await frame.locator('.slider').count()) === 5, `5 of ${nSliders} sliders drawn`);
  check((await frame.locator('#more-sliders').textContent()) === 'Show 7 more', `toggle reads "${await frame.locator('#more-sliders').textContent()}"`);

  // 2. Move the first slider by clicking near its right end (α ≈ 1.8): the host re-ranks and the list moves.
  const slider = frame.locator('input[data-slider]').first();
  const box = await slider.boundingBox();
  const reranked = waitLog((l) => l.rendered?.reason === 'rerank');
  await slider.click({ position: { x: box.width * 0.9, y: box.height / 2 } });
  await reranked;
  const alphaText = await frame.locator('.slider output').first().textContent();
  check(Number(alphaText) > 1.5, `slider shows α = ${alphaText}`);
  const state = await host('state');
  check(state.sliders[0].alpha === Number(alphaText), `host holds α = ${state.sliders[0].alpha} for feature ${state.sliders[0].id}`);
  const moves = await frame.locator('li.cand .move.up, li.cand .move.down').count();
  check(moves > 0, `${moves} candidates show a rank move`);
  const ndcg = await frame.locator('.metric[data-metric="ndcg@10"] .delta').textContent();
  say(`NDCG@10 change shown: ${ndcg}; ${await frame.locator('#rerank-time').textContent()}`);
  // The slider moved, the metrics and the re-ranked list are on one screen, without scrolling.
  const seen = await inView(frame, ['.metric[data-metric="ndcg@10"]', 'input[data-slider] >> nth=0', 'li.cand >> nth=0', 'li.cand >> nth=5', 'li.cand.selected']);
  check(seen.every((x) => x.in), `in view beside the moved slider: ${seen.map((x) => `${x.what} ${x.in ? 'yes' : `NO (${x.box})`}`).join(', ')}`);
  const titles = await candidateText(frame);
  const long = titles.filter((c) => c.title.length > 45);
  check(long.length > 0 && long.every((c) => c.lines === 2 && c.width >= 180), `long candidate titles wrap to 2 lines in ${long.map((c) => c.width).join('/')} px`);
  check(titles.every((c) => c.tooltip === `${c.docId}: ${c.title}`), 'each candidate has its doc id and whole title in the tooltip');
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(outDir, 'panel-steered.png') });
  say('screenshot test-results/panel-steered.png');

  // Every slider: they scroll in a bounded box, and the candidates stay where they were.
  const candTop = (await frame.locator('li.cand').first().boundingBox()).y;
  await frame.locator('#more-sliders').click();
  check((await frame.locator('.slider').count()) === 12, `Show 7 more: ${await frame.locator('.slider').count()} sliders drawn`);
  const box2 = await frame.locator('#sliders').evaluate((el) => ({ all: el.classList.contains('all'), scroll: el.scrollHeight, client: el.clientHeight }));
  check(box2.all && box2.scroll > box2.client, `the slider list scrolls in its box (${box2.client} of ${box2.scroll} px shown)`);
  const seenAll = await inView(frame, ['.metric[data-metric="ndcg@10"]', 'li.cand >> nth=0', 'li.cand.selected']);
  const candTop2 = (await frame.locator('li.cand').first().boundingBox()).y;
  check(seenAll.every((x) => x.in), `with every slider shown the metrics and candidates stay in view (list moved ${Math.round(candTop2 - candTop)} px)`);
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(outDir, 'panel-sliders-all.png') });
  say('screenshot test-results/panel-sliders-all.png');

  await frame.locator('#section-erasure').screenshot({ path: path.join(outDir, 'panel-erasure.png') });
  say('screenshot test-results/panel-erasure.png');
  const csp = await frame.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  check(!/unsafe-inline|unsafe-eval/.test(csp) && /script-src 'nonce-/.test(csp), `CSP: ${csp.replace(/https:\/\/\S+/g, '<cspSource>')}`);

  // Add a slider by id, then reset: both are requests answered with a steering update.
  await frame.locator('#add-id input, #add-id').first().click();
  await page.keyboard.type('#9');
  const added = waitLog((l) => l.rendered?.reason === 'steering');
  await frame.locator('#add-slider').click();
  check((await added).rendered.rows === 13, 'Add slider: a 13th slider for feature 9');
  check((await frame.locator('.slider[data-id="9"]').count()) === 1, 'the added slider is drawn');
  const reset = waitLog((l) => l.rendered?.reason === 'steering');
  await frame.locator('#reset-steering').click();
  await reset;
  const alphas = await frame.locator('.slider output').allTextContents();
  check(alphas.every((a) => a === '1.00'), `Reset: every α back to 1 (${alphas.join(', ')})`);
  check((await frame.locator('li.cand .move.up, li.cand .move.down').count()) === 0, 'Reset: no rank moves left');

  // Export…: the button runs "Export Explanation…" on the case; answer its quick pick and save dialog with the keyboard.
  await frame.locator('#export-explanation').click();
  const pick = page.locator('.quick-input-widget');
  await pick.locator('.quick-input-list-row', { hasText: 'CSV feature table' }).waitFor({ timeout: 15_000 });
  await page.screenshot({ path: path.join(outDir, 'panel-export-pick.png') });
  say('screenshot test-results/panel-export-pick.png');
  await pick.locator('.quick-input-list-row', { hasText: 'CSV feature table' }).click();
  // the save dialog (VS Code's own, in the quick input) proposes a name after the case, in the workspace folder
  await page.waitForFunction(() => /xetrieval-[^/]*\.csv$/.test(document.querySelector('.quick-input-widget .quick-input-box input')?.value ?? ''), null, { timeout: 15_000 });
  const proposed = await pick.locator('.quick-input-box input').inputValue();
  say(`save dialog proposes ${proposed}`);
  await page.keyboard.press('Enter');
  const exported = () => fs.readdirSync(workspace).filter((f) => /^xetrieval-.*\.csv$/.test(f));
  for (const deadline = Date.now() + 15_000; exported().length === 0 && Date.now() < deadline; ) await page.waitForTimeout(100);
  const csvFile = exported()[0];
  check(csvFile !== undefined && path.basename(proposed) === csvFile, `Export…: the CSV feature table written to the workspace as ${csvFile}`);
  if (csvFile) {
    const lines = fs.readFileSync(path.join(workspace, csvFile), 'utf8').split('\r\n').filter(Boolean);
    check(lines[0].startsWith('query_id,doc_id,feature_id,label,') && lines.length === 201, `the CSV has a header and ${lines.length - 1} feature rows`);
  }
  await frame.locator('#export-message').filter({ hasText: 'Exported the CSV feature table' }).waitFor({ timeout: 10_000 });
  check(true, `the panel says: ${await frame.locator('#export-message').textContent()}`);
  const titleAction = await page.locator('.editor-actions [aria-label*="Export Explanation"]').count();
  check(titleAction === 1, `the panel's title bar has the Export Explanation action (${titleAction})`);
  await frame.locator('.feature-section .toolbar').screenshot({ path: path.join(outDir, 'panel-export-toolbar.png') });
  say('screenshot test-results/panel-export-toolbar.png');

  // The error line, as the flows show it when an action fails.
  await host('error', { message: 'document "d-99" is not a loaded candidate of this query' });
  await frame.locator('.banner.error').waitFor();
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(outDir, 'panel-error.png'), clip: { x: 340, y: 30, width: 1100, height: 260 } });
  say('screenshot test-results/panel-error.png');
  await frame.locator('.banner.error vscode-button').click();
  check(await frame.locator('#banner').isHidden(), 'Dismiss hides the error line');

  // 3. Sort by label, filter, open a row's examples.
  await frame.locator('button[data-sort="label"]').click();
  await frame.locator('#filter input, #filter').first().click();
  await page.keyboard.type('vitamin');
  await page.waitForTimeout(400);
  const filtered = await frame.locator('#feature-table tbody tr.feature').count();
  check(filtered >= 1 && filtered < 200, `filter "vitamin" leaves ${filtered} rows`);
  await frame.locator('#feature-table tbody tr.feature').first().click();
  await frame.locator('tr.examples-row').first().waitFor();
  check((await frame.locator('tr.examples-row ol.examples li').count()) > 0, 'expanded row lists top-activating examples');
  check((await frame.locator('tr.examples-row ol.examples li mark.term').count()) > 0, "the feature's words are marked in its examples");
  await page.waitForTimeout(200);
  await page.screenshot({ path: path.join(outDir, 'panel-expanded.png') });
  say('screenshot test-results/panel-expanded.png');

  // 4. Hide and show again: the webview is rebuilt (no retained context) and restores sort, filter, expansion.
  await host('hide');
  const again = waitLog((l) => l.rendered?.reason === 'case');
  await host('reveal');
  await again;
  const f2 = webviewFrame(page);
  await f2.locator('#feature-table tbody tr.feature').first().waitFor();
  const filterValue = await f2.locator('#filter').evaluate((el) => el.value);
  check(filterValue === 'vitamin', `filter restored ("${filterValue}")`);
  check((await f2.locator('th[aria-sort="ascending"] button[data-sort="label"]').count()) === 1, 'sort by label restored');
  check((await f2.locator('tr.examples-row').count()) === 1, 'expanded row restored');
  check(await f2.locator('#banner').isHidden(), 'the dismissed error does not come back');
  const alphaAfter = await f2.locator('.slider output').allTextContents();
  check(alphaAfter.length === 13 && alphaAfter.every((a) => a === '1.00'), `sliders restored, all 13 still shown (${alphaAfter.join(', ')})`);
  // Show fewer: the first five suggested and the one added by hand.
  await f2.locator('#more-sliders').click();
  const fewer = await f2.locator('.slider').evaluateAll((els) => els.map((e) => e.dataset.id));
  check(fewer.length === 6 && fewer.includes('9') && (await f2.locator('#more-sliders').textContent()) === 'Show 7 more', `Show fewer: sliders ${fewer.join(', ')}`);

  // Optional: paint time of the 200-row table, re-sorted repeatedly (median).
  if (process.env.XETRIEVAL_UI_BENCH === '1') await bench(f2);

  // 5. Light theme, live.
  await f2.locator('#filter').evaluate((el) => {
    el.value = '';
    el.dispatchEvent(new Event('input'));
  });
  await host('theme', { name: 'Default Light Modern' });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: path.join(outDir, 'panel-light.png') });
  say('screenshot test-results/panel-light.png');

  // 6. A narrow editor: one column, steering above the table.
  await page.setViewportSize({ width: 820, height: 900 });
  await page.waitForTimeout(800);
  await page.screenshot({ path: path.join(outDir, 'panel-narrow.png') });
  say('screenshot test-results/panel-narrow.png');
  await webviewFrame(page).locator('.feature-section').evaluate((el) => el.scrollIntoView());
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(outDir, 'panel-narrow-table.png') });
  say('screenshot test-results/panel-narrow-table.png');

  // 7. The usual layout: the panel beside an editor. At 1440×900 with the sidebar open, then (sidebar closed)
  // at 700 and 480 px of panel: label, share and erasure Δ must show whole, nothing scrolls sideways,
  // no column heading is cut, and the activations wrap under the label once their columns collapse.
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.waitForTimeout(800);
  // the whole window first: the panel alone in the editor area, as the sample opens
  const wide = await webviewFrame(page).locator('#feature-table thead').evaluate((thead) =>
    [...thead.querySelectorAll('button')].filter((b) => b.scrollWidth > b.clientWidth + 1).map((b) => b.textContent.trim()),
  );
  check(wide.length === 0, `panel alone at 1440: no column heading cut${wide.length ? ` (${wide.join(', ')})` : ''}`);
  await host('beside');
  await page.waitForTimeout(1200);
  for (const target of [undefined, 700, 480]) {
    if (target !== undefined) {
      await host('sidebar', { open: false });
      // two editor groups share the width: move the window edge until the panel has the width wanted
      for (let i = 0; i < 4; i++) {
        const w = (await page.locator('iframe.webview.ready').boundingBox()).width;
        if (Math.abs(w - target) <= 2) break;
        const vp = page.viewportSize();
        await page.setViewportSize({ width: Math.round(vp.width + 2 * (target - w)), height: 900 });
        await page.waitForTimeout(500);
      }
    }
    await page.waitForTimeout(600);
    const f = webviewFrame(page);
    const width = Math.round((await page.locator('iframe.webview.ready').boundingBox()).width);
    const name = `panel-beside-${target ?? 1440}`;
    const layout = await f.locator('#feature-table').evaluate((table) => {
      const vw = document.documentElement.clientWidth;
      const wrap = table.parentElement;
      const heads = [...table.querySelectorAll('thead th')].filter((th) => getComputedStyle(th).display !== 'none');
      const head = (key) => table.querySelector(`thead button[data-sort="${key}"]`);
      const whole = (el) => !!el && getComputedStyle(el.closest('th')).display !== 'none' && el.getBoundingClientRect().right <= vw + 1 && el.getBoundingClientRect().left >= -1;
      const cut = heads.map((th) => th.querySelector('button')).filter((b) => b && b.scrollWidth > b.clientWidth + 1).map((b) => b.textContent.trim());
      const inline = [...table.querySelectorAll('tbody tr.feature .acts-inline')].filter((x) => getComputedStyle(x).display !== 'none').length;
      return { vw, sideways: table.scrollWidth > wrap.clientWidth + 1 || document.documentElement.scrollWidth > vw + 1, label: whole(head('label')), share: whole(head('share')), erasure: whole(head('erasure')), columns: heads.length, cut, inline };
    });
    say(`${name}: panel ${width} px, ${layout.columns} columns shown, activations inline in ${layout.inline} rows`);
    check(layout.label && layout.share && layout.erasure, `${name}: Label, Share and Erasure Δ show whole`);
    check(!layout.sideways, `${name}: nothing scrolls sideways`);
    check(layout.cut.length === 0, `${name}: no column heading cut${layout.cut.length ? ` (${layout.cut.join(', ')})` : ''}`);
    if (target === 480) check(layout.inline > 0, `${name}: the activations wrap under the label`);
    await page.screenshot({ path: path.join(outDir, `${name}.png`) });
    say(`screenshot test-results/${name}.png`);
    await f.locator('.feature-section').evaluate((el) => el.scrollIntoView());
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(outDir, `${name}-table.png`) });
    say(`screenshot test-results/${name}-table.png`);
    await f.locator('body').evaluate(() => window.scrollTo(0, 0));
  }
  await host('sidebar', { open: true });

  for (const l of logs.filter((l) => l.rendered)) say(`webview: ${l.message}`);
  check(consoleLines.length === 0, `no warnings or errors on the webview console${consoleLines.length ? `: ${consoleLines.join(' | ')}` : ''}`);
  const warnings = logs.filter((l) => l.level !== 'info');
  check(warnings.length === 0, `no webview warnings/errors${warnings.length ? `: ${warnings.map((w) => w.message).join(' | ')}` : ''}`);
} catch (e) {
  failures.push(String(e));
  say(`failed: ${e.stack ?? e}`);
  await page.screenshot({ path: path.join(outDir, 'panel-failure.png') }).catch(() => {});
} finally {
  await context.close().catch(() => {});
  server.stop();
}
if (failures.length === 0 && process.env.XETRIEVAL_HOST_KEEP !== '1') fs.rmSync(scratch, { recursive: true, force: true });
else say(`scratch kept: ${scratch}`);
say(`${failures.length ? `${failures.length} check(s) failed` : 'all checks passed'}`);
// the last line, for `npm run bench -- ui`
console.log(JSON.stringify({ panelTimings: timings, failures }));
process.exit(failures.length ? 1 : 0);

async function bench(frame) {
  await frame.locator('#filter').evaluate((el) => {
    el.value = '';
    el.dispatchEvent(new Event('input'));
  });
  await page.waitForTimeout(300);
  const times = [];
  for (let i = 0; i < 9; i++) {
    const p = waitLog((l) => l.rendered?.reason === 'state' && l.rendered.rows === 200);
    await frame.locator(`button[data-sort="${i % 2 ? 'share' : 'query'}"]`).click();
    times.push((await p).rendered.ms);
    await page.waitForTimeout(150);
  }
  times.sort((a, b) => a - b);
  say(`bench: re-sort of 200 rows, receive → paint median ${times[4].toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times[8].toFixed(1)})`);
  timings.resort200RowsMedianMs = Number(times[4].toFixed(1));
  if (process.env.XETRIEVAL_UI_BENCH_EXTRA) {
    // A one-off comparison script evaluated in the webview frame (e.g. the same rows as vscode-table cells).
    say(`bench extra: ${await frame.locator('body').evaluate(new Function('body', process.env.XETRIEVAL_UI_BENCH_EXTRA))}`);
  }
}

/** Whether each selector's element lies wholly inside the webview's visible area. */
async function inView(frame, selectors) {
  const area = await page.locator('iframe.webview.ready').boundingBox();
  const out = [];
  for (const what of selectors) {
    const b = await frame.locator(what).first().boundingBox();
    const ok = !!b && b.height > 0 && b.y >= area.y - 1 && b.y + b.height <= area.y + area.height + 1 && b.x >= area.x - 1 && b.x + b.width <= area.x + area.width + 1;
    out.push({ what, in: ok, box: b ? `y ${Math.round(b.y)}–${Math.round(b.y + b.height)} of ${Math.round(area.y)}–${Math.round(area.y + area.height)}` : 'none' });
  }
  return out;
}

/** Each candidate's text block: lines drawn, width, the title and the row's tooltip. */
function candidateText(frame) {
  return frame.locator('li.cand').evaluateAll((els) =>
    els.map((li) => {
      const t = li.querySelector('.cand-text');
      const lh = parseFloat(getComputedStyle(t).lineHeight);
      return {
        docId: li.dataset.doc,
        title: (li.querySelector('.cand-title')?.textContent ?? '').trim(),
        tooltip: li.getAttribute('title'),
        lines: Math.round(t.clientHeight / lh),
        width: Math.round(t.clientWidth),
      };
    }),
  );
}

function waitLog(match, ms = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching webview log in time')), ms);
    const prev = onLog;
    onLog = (l) => {
      prev(l);
      if (match(l)) {
        clearTimeout(timer);
        onLog = prev;
        resolve(l);
      }
    };
  });
}

/** Asks the entry inside the extension host to do something; resolves with its answer. */
async function host(cmd, args = {}, ms = 30_000) {
  const n = String(++seq).padStart(3, '0');
  fs.writeFileSync(path.join(control, `${n}.tmp`), JSON.stringify({ cmd, args }));
  fs.renameSync(path.join(control, `${n}.tmp`), path.join(control, `${n}.json`));
  const done = path.join(control, `${n}.done`);
  for (const deadline = Date.now() + ms; !fs.existsSync(done); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > deadline) throw new Error(`host did not answer "${cmd}" within ${ms} ms`);
  }
  const reply = JSON.parse(fs.readFileSync(done, 'utf8'));
  if (reply.error) throw new Error(`host ${cmd}: ${reply.error}`);
  return reply.result;
}

/** The extensionTestsPath entry: runs orders from the driver, never finishes (the driver closes the browser). */
function entrySource(controlDir, bundlePath) {
  return `// Written by test/host/ui-panel.mjs.
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');
const control = ${JSON.stringify(controlDir)};
let panel;

async function show(features) {
  const ext = vscode.extensions.getExtension('xetrieval.xetrieval');
  await ext.activate();
  let via = 'xetrieval.test.showSamplePanel';
  if ((await vscode.commands.getCommands(true)).includes(via)) {
    panel = await vscode.commands.executeCommand(via, features);
  } else {
    // extension.ts does not wire the panel yet: build the same sample panel from the bundled sources.
    via = 'the bundled panel module (command not registered)';
    const m = require(${JSON.stringify(bundlePath)});
    const steering = new m.SampleSteering(features);
    const p = new m.ExplanationPanel(ext.extensionUri, steering.handlers(() => p), { title: 'Xetrieval sample' });
    steering.show(p, m.samplePanelCase(features, steering), vscode.ViewColumn.One);
    panel = p;
  }
  panel.onDidLog((l) => console.log('[panel-log] ' + JSON.stringify(l)));
  return { via };
}

const commands = {
  ping: async () => 'pong',
  show: async (a) => show(a.features),
  state: async () => ({ sliders: panel.case.sliders, candidates: panel.case.candidates }),
  hide: async () => {
    const doc = await vscode.workspace.openTextDocument({ content: 'hiding the panel' });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    return panel.webviewPanel.visible;
  },
  reveal: async () => panel.webviewPanel.reveal(vscode.ViewColumn.One),
  beside: async () => {
    const doc = await vscode.workspace.openTextDocument({ content: '# Notes\\n\\nThe editor the panel sits beside.\\n', language: 'markdown' });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    panel.webviewPanel.reveal(vscode.ViewColumn.Two);
  },
  sidebar: async (a) => vscode.commands.executeCommand(a.open ? 'workbench.action.focusSideBar' : 'workbench.action.closeSidebar'),
  error: async (a) => panel.showError(a.message),
  theme: async (a) => vscode.workspace.getConfiguration('workbench').update('colorTheme', a.name, vscode.ConfigurationTarget.Global),
};

exports.run = async function () {
  console.log('[ui-entry] waiting for orders in ' + control);
  const seen = new Set();
  for (;;) {
    for (const f of fs.readdirSync(control).filter((f) => f.endsWith('.json')).sort()) {
      if (seen.has(f)) continue;
      seen.add(f);
      const { cmd, args } = JSON.parse(fs.readFileSync(path.join(control, f), 'utf8'));
      let reply;
      try {
        reply = { result: (await commands[cmd](args)) ?? null };
      } catch (e) {
        reply = { error: String(e && e.stack || e) };
      }
      // Written whole, then renamed: the driver never reads half an answer.
      const done = path.join(control, f.replace(/\\.json$/, '.done'));
      fs.writeFileSync(done + '.tmp', JSON.stringify(reply));
      fs.renameSync(done + '.tmp', done);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
};
`;
}
