// Figures for activation patching (`xetrieval patch`) and the per-layer tools
// (`xetrieval layers`): heatmaps as one HTML page of SVGs, and a Markdown
// summary on stdout. No plotting library: the SVG is written here.
//
//   node scripts/patch-figures.mjs --out figs/ \
//     --axiom TFC1 TFC1_maps.jsonl TFC1_mean.json --axiom TDC TDC_maps.jsonl TDC_mean.json \
//     [--block example_block.jsonl] [--block-mean AXIOM maps_with_block.jsonl] [--layers layers.jsonl]
//
// Then, for PNGs: chromium --headless --screenshot=figs/patching.png --window-size=1400,3000 figs/patching.html
import * as fs from 'fs';
import * as path from 'path';

const args = process.argv.slice(2);
const axioms = [];
let out = 'figs';
let blockFile;
let layersFile;
const hbpFiles = [];
const blockMeans = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--heads-by-position') {
    hbpFiles.push({ name: args[++i], file: args[++i] });
    continue;
  }
  if (args[i] === '--block-mean') {
    blockMeans.push({ name: args[++i], file: args[++i] });
    continue;
  }
  if (args[i] === '--axiom') axioms.push({ name: args[++i], maps: args[++i], mean: args[++i] });
  else if (args[i] === '--out') out = args[++i];
  else if (args[i] === '--block') blockFile = args[++i];
  else if (args[i] === '--layers') layersFile = args[++i];
  else throw new Error(`unknown argument ${args[i]}`);
}
fs.mkdirSync(out, { recursive: true });
const jsonl = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f2 = (x) => (x === null || x === undefined ? '–' : x.toFixed(2));

/** diverging colour: blue < 0 < red, saturating at ±scale */
function colour(v, scale) {
  if (v === null || v === undefined) return '#ddd';
  const t = Math.max(-1, Math.min(1, v / scale));
  const c = (a, b) => Math.round(a + (b - a) * Math.abs(t));
  return t >= 0 ? `rgb(255,${c(255, 40)},${c(255, 40)})` : `rgb(${c(255, 40)},${c(255, 90)},255)`;
}

function heatmap(title, m, rowLabels, colLabels, { cell = 38, scale, values = true, rotate = false } = {}) {
  const flat = m.flat().filter((x) => x !== null && x !== undefined);
  scale ??= Math.max(1e-9, ...flat.map(Math.abs));
  const left = 90;
  const top = rotate ? 110 : 40;
  const w = Math.max(left + colLabels.length * cell + 20, title.length * 7 + 120);
  const h = top + m.length * 26 + 30;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`;
  s += `<text x="4" y="14" font-size="13" font-weight="bold">${esc(title)} (colour scale ±${scale.toFixed(2)})</text>`;
  colLabels.forEach((c, j) => {
    const x = left + j * cell + cell / 2;
    s += rotate ? `<text transform="translate(${x + 4},${top - 4}) rotate(-60)" font-size="10">${esc(c)}</text>` : `<text x="${x}" y="${top - 6}" text-anchor="middle">${esc(c)}</text>`;
  });
  m.forEach((row, i) => {
    s += `<text x="${left - 6}" y="${top + i * 26 + 17}" text-anchor="end">${esc(rowLabels[i])}</text>`;
    row.forEach((v, j) => {
      s += `<rect x="${left + j * cell}" y="${top + i * 26}" width="${cell - 1}" height="25" fill="${colour(v, scale)}"/>`;
      if (values) s += `<text x="${left + j * cell + cell / 2}" y="${top + i * 26 + 17}" text-anchor="middle" font-size="10">${f2(v)}</text>`;
    });
  });
  return s + '</svg>';
}

const md = [];
const svgs = [];
const layerLabels = (n) => Array.from({ length: n }, (_, l) => `layer ${l}`);
const KINDS = ['resid_pre', 'attn_out', 'mlp_out'];
const GROUPS = ['cls', 'doc', 'perturbed', 'sep'];
const summary = {};

for (const ax of axioms) {
  const mean = JSON.parse(fs.readFileSync(ax.mean, 'utf8'));
  const maps = jsonl(ax.maps);
  const defined = maps.filter((r) => r.heads);
  const deltas = maps.map((r) => r.delta);
  const headCols = Array.from({ length: mean.heads }, (_, h) => `h${h}`);
  // Δ-weighted mean = Σ(s_patched − s_orig) / Σ(s_perturbed − s_orig): pairs whose perturbation barely moves the score do not dominate
  const weighted = (get) => {
    const rs = maps.filter((r) => get(r));
    const shape = get(rs[0]);
    const den = rs.reduce((a, r) => a + r.delta, 0);
    const map = (m, f) => (Array.isArray(m) ? m.map((x, i) => map(x, (r) => f(r)[i])) : rs.reduce((a, r) => a + (f(r) ?? 0) * r.delta, 0) / den);
    return map(shape, get);
  };
  md.push(`### ${ax.name}: ${mean.pairs} pairs patched (${mean.undefined_metric} with an undefined metric, ${mean.errors} refused)`);
  md.push('');
  md.push(`Mean Δ = s_perturbed − s_orig: ${(deltas.reduce((a, b) => a + b, 0) / deltas.length).toFixed(4)}; positive in ${deltas.filter((d) => d > 0).length}/${deltas.length} pairs; mean |Δ| ${(deltas.reduce((a, b) => a + Math.abs(b), 0) / deltas.length).toFixed(4)}; mean changed tokens ${(maps.reduce((a, r) => a + r.changed.length, 0) / maps.length).toFixed(2)}; mean length ${(maps.reduce((a, r) => a + r.tokens.length, 0) / maps.length).toFixed(1)} tokens.`);
  md.push('');
  if (mean.heads_mean) {
    const hw = weighted((r) => r.heads);
    svgs.push(heatmap(`${ax.name}: head map [layer × head], Δ-weighted mean metric over ${mean.heads_pairs} pairs`, hw, layerLabels(mean.layers), headCols, { scale: 0.5 }));
    svgs.push(heatmap(`${ax.name}: head map [layer × head], plain mean metric over ${mean.heads_pairs} pairs (MechIR's average)`, mean.heads_mean, layerLabels(mean.layers), headCols));
    const rw = hw.flatMap((row, l) => row.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v);
    md.push(`Δ-weighted head map (Σ(s_patched − s_orig)/Σ(s_perturbed − s_orig)), top heads: ${rw.slice(0, 6).map((x) => `${x.l}.${x.h}: ${x.v.toFixed(3)}`).join(', ')}; most negative: ${rw.slice(-3).reverse().map((x) => `${x.l}.${x.h}: ${x.v.toFixed(3)}`).join(', ')}; per layer sum: ${hw.map((row, l) => `L${l} ${row.reduce((a, b) => a + b, 0).toFixed(2)}`).join(', ')}.`);
    const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const hm = mean.heads_mean.map((row, l) => row.map((_, h) => med(defined.map((r) => r.heads[l][h]))));
    const rm = hm.flatMap((row, l) => row.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v);
    md.push(`Median over pairs, top heads: ${rm.slice(0, 6).map((x) => `${x.l}.${x.h}: ${x.v.toFixed(3)}`).join(', ')}.`);
    const ranked = mean.heads_mean.flatMap((row, l) => row.map((v, h) => ({ l, h, v }))).sort((a, b) => b.v - a.v);
    // how often each head is a pair's own top head
    const top = new Map();
    for (const r of defined) {
      let best = { l: 0, h: 0, v: -Infinity };
      r.heads.forEach((row, l) => row.forEach((v, h) => v > best.v && (best = { l, h, v })));
      const k = `${best.l}.${best.h}`;
      top.set(k, (top.get(k) ?? 0) + 1);
    }
    const topList = [...top.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    md.push(`Heads with the largest mean metric (layer.head: mean): ${ranked.slice(0, 6).map((x) => `${x.l}.${x.h}: ${x.v.toFixed(3)}`).join(', ')}; most negative: ${ranked.slice(-3).reverse().map((x) => `${x.l}.${x.h}: ${x.v.toFixed(3)}`).join(', ')}.`);
    md.push(`A pair's own top head: ${topList.map(([k, n]) => `${k} in ${n}`).join(', ')} of ${defined.length} pairs.`);
    const perLayer = mean.heads_mean.map((row) => row.reduce((a, b) => a + b, 0));
    md.push(`Sum of head metrics per layer: ${perLayer.map((x, l) => `L${l} ${x.toFixed(2)}`).join(', ')}.`);
    md.push('');
    summary[ax.name] = { heads: hw, ranked: rw };
  }
  if (mean.block_groups_patched_mean) {
    const bw = weighted((r) => r.block_groups_patched);
    KINDS.forEach((k, i) => {
      svgs.push(heatmap(`${ax.name}: block map ${k} [layer × position group], each group patched at once, Δ-weighted mean over ${mean.pairs} pairs`, bw[i], layerLabels(mean.layers), GROUPS, { cell: 70, scale: 1 }));
    });
    md.push(`Block map, each position group patched at once, Δ-weighted mean (rows: layer; columns: ${GROUPS.join(' / ')}):`);
    md.push('');
    md.push(`| | ${KINDS.map((k) => GROUPS.map((g) => `${k} ${g}`).join(' | ')).join(' | ')} |`);
    md.push(`|---|${KINDS.flatMap(() => GROUPS.map(() => '---')).join('|')}|`);
    for (let l = 0; l < mean.layers; l++) md.push(`| layer ${l} | ${KINDS.map((_, i) => bw[i][l].map(f2).join(' | ')).join(' | ')} |`);
    md.push('');
    md.push(`The same, plain mean of the per-pair metric (MechIR's average):`);
    md.push('');
    md.push(`| | ${KINDS.map((k) => GROUPS.map((g) => `${k} ${g}`).join(' | ')).join(' | ')} |`);
    md.push(`|---|${KINDS.flatMap(() => GROUPS.map(() => '---')).join('|')}|`);
    for (let l = 0; l < mean.layers; l++) md.push(`| layer ${l} | ${KINDS.map((_, i) => mean.block_groups_patched_mean[i][l].map(f2).join(' | ')).join(' | ')} |`);
    md.push('');
    summary[ax.name] = { ...summary[ax.name], groups: mean.block_groups_patched_mean };
  }
}

if (summary.TFC1?.heads && summary.TDC?.heads) {
  const diff = summary.TFC1.heads.map((row, l) => row.map((v, h) => v - summary.TDC.heads[l][h]));
  svgs.push(heatmap('TFC1 − TDC: difference of the mean head maps', diff, layerLabels(diff.length), diff[0].map((_, h) => `h${h}`)));
  const a = summary.TFC1.heads.flat();
  const b = summary.TDC.heads.flat();
  const ma = a.reduce((x, y) => x + y, 0) / a.length;
  const mb = b.reduce((x, y) => x + y, 0) / b.length;
  const cov = a.reduce((s, x, i) => s + (x - ma) * (b[i] - mb), 0);
  const r = cov / Math.sqrt(a.reduce((s, x) => s + (x - ma) ** 2, 0) * b.reduce((s, x) => s + (x - mb) ** 2, 0));
  const topA = new Set(summary.TFC1.ranked.slice(0, 6).map((x) => `${x.l}.${x.h}`));
  const shared = summary.TDC.ranked.slice(0, 6).map((x) => `${x.l}.${x.h}`).filter((k) => topA.has(k));
  md.push(`### TFC1 vs TDC`);
  md.push('');
  md.push(`Pearson correlation of the two mean head maps: ${r.toFixed(3)}; top-6 heads shared: ${shared.length ? shared.join(', ') : 'none'}.`);
  md.push('');
}

if (blockFile) {
  for (const r of jsonl(blockFile).filter((x) => x.block)) {
    const cols = r.perturbed_tokens.map((t, i) => (r.changed.includes(i) ? `*${t}` : t));
    KINDS.forEach((k, i) => {
      svgs.push(heatmap(`${r.axiom} ${r.query_id}/${r.doc_id}: block map ${k} [layer × position] (columns: perturbed tokens, * = changed)`, r.block[i], layerLabels(r.block[i].length), cols, { cell: 22, scale: 1, values: false, rotate: true }));
    });
  }
}

// per-position block maps of many pairs: positions differ from pair to pair, so each is put in a class relative to
// the changed tokens, and the per-position metrics of a class are summed (Δ-weighted over pairs, as above)
const REL = ['cls', 'doc (rest)', 'doc −3', 'doc −2', 'doc −1', 'changed', 'after changed', 'sep'];
for (const bm of blockMeans) {
  const recs = jsonl(bm.file).filter((r) => r.block);
  const L = recs[0].block[0].length;
  const acc = KINDS.map(() => Array.from({ length: L }, () => REL.map(() => 0)));
  let den = 0;
  for (const r of recs) {
    den += r.delta;
    const P = r.tokens.length;
    const changed = new Set(r.changed);
    const first = Math.min(...r.changed);
    const cls = (p) => (p === 0 ? 0 : p === P - 1 ? 7 : changed.has(p) ? 5 : p > first ? 6 : first - p <= 3 ? 5 - (first - p) : 1);
    r.block.forEach((byLayer, k) => byLayer.forEach((row, l) => row.forEach((v, p) => v !== null && (acc[k][l][cls(p)] += v * r.delta))));
  }
  const m = acc.map((byLayer) => byLayer.map((row) => row.map((x) => x / den)));
  md.push(`### ${bm.name}: per-position block maps of ${recs.length} pairs, each position patched alone; Δ-weighted sums per position class`);
  md.push('');
  md.push(`| component | layer | ${REL.join(' | ')} |`);
  md.push(`|---|---|${REL.map(() => '---').join('|')}|`);
  KINDS.forEach((k, i) => m[i].forEach((row, l) => md.push(`| ${k} | ${l} | ${row.map(f2).join(' | ')} |`)));
  md.push('');
  KINDS.forEach((k, i) => svgs.push(heatmap(`${bm.name}: block map ${k} [layer × position class], each position patched alone, Δ-weighted sums over ${recs.length} pairs`, m[i], layerLabels(L), REL, { cell: 70, scale: 1 })));
}

for (const hf of hbpFiles) {
  // each chosen head patched at one position at a time, folded into the position groups
  const recs = jsonl(hf.file).filter((r) => r.heads_by_position);
  const acc = new Map();
  for (const r of recs) {
    const changed = new Set(r.changed);
    for (const h of r.heads_by_position) {
      const key = `${h.layer}.${h.head}`;
      const a = acc.get(key) ?? GROUPS.map(() => ({ sum: 0, n: 0, pairs: 0 }));
      a.forEach((x) => x.pairs++);
      h.values.forEach((v, pos) => {
        const g = pos === 0 ? 0 : pos === h.values.length - 1 ? 3 : changed.has(pos) ? 2 : 1;
        a[g].sum += v;
        a[g].n++;
      });
      acc.set(key, a);
    }
  }
  const rows = [...acc.entries()];
  md.push(`### ${hf.name}: chosen heads patched one position at a time (${recs.length} pairs): mean metric per position of each group, and the group's sum (mean over pairs)`);
  md.push('');
  md.push(`| head | ${GROUPS.map((g) => `${g} per position`).join(' | ')} | ${GROUPS.map((g) => `${g} sum`).join(' | ')} |`);
  md.push(`|---|${GROUPS.map(() => '---|---').join('|')}|`);
  for (const [k, a] of rows) md.push(`| ${k} | ${a.map((x) => (x.n ? (x.sum / x.n).toFixed(3) : '–')).join(' | ')} | ${a.map((x) => (x.sum / x.pairs).toFixed(3)).join(' | ')} |`);
  md.push('');
  svgs.push(heatmap(`${hf.name}: heads by position, mean metric per position of each group`, rows.map(([, a]) => a.map((x) => (x.n ? x.sum / x.n : null))), rows.map(([k]) => `head ${k}`), GROUPS, { cell: 70 }));
}

if (layersFile) {
  const recs = jsonl(layersFile);
  const rel = recs.filter((r) => (r.label ?? 0) > 0);
  const non = recs.filter((r) => (r.label ?? 0) === 0);
  const avg = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  if (rel.length && non.length) {
    md.push(`### Layers on ${recs.length} pairs (${rel.length} relevant, ${non.length} not): at which depth does the match form?`);
    md.push('');
    md.push('| depth | mean q·d (relevant) | mean q·d (not) | gap |');
    md.push('|---|---|---|---|');
    for (let d = 0; d < recs[0].depths.length; d++) {
      const a = avg(rel.map((r) => r.depths[d].score));
      const b = avg(non.map((r) => r.depths[d].score));
      md.push(`| ${d} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(a - b).toFixed(3)} |`);
    }
    md.push('');
    md.push('Ablation: mean score change, and the relevant − not-relevant gap of the final score after it (unablated gap ' + (avg(rel.map((r) => r.score)) - avg(non.map((r) => r.score))).toFixed(3) + '):');
    md.push('');
    md.push('| layer | attn zero Δ | attn mean Δ | mlp zero Δ | mlp mean Δ | gap: attn zero | attn mean | mlp zero | mlp mean |');
    md.push('|---|---|---|---|---|---|---|---|---|');
    const keys = ['attn_zero', 'attn_mean', 'mlp_zero', 'mlp_mean'];
    for (let l = 0; l < recs[0].ablation.length; l++) {
      const d = keys.map((k) => avg(recs.map((r) => r.ablation[l][`${k}_delta`])).toFixed(3));
      const g = keys.map((k) => (avg(rel.map((r) => r.ablation[l][k])) - avg(non.map((r) => r.ablation[l][k]))).toFixed(3));
      md.push(`| ${l} | ${d.join(' | ')} | ${g.join(' | ')} |`);
    }
    md.push('');
  }
}

if (layersFile) {
  md.push('### Vocabulary projection per depth (mean-pooled residual stream onto the token-embedding table, cosine), ablation per layer');
  md.push('');
  // the first pairs of each of a few queries: a relevant document and non-relevant ones side by side
  for (const r of jsonl(layersFile).slice(0, 6)) {
    md.push(`**${r.query_id} / ${r.doc_id}** (label ${r.label ?? '–'}, score ${r.score.toFixed(3)})`);
    md.push('');
    md.push('| depth | q·d at depth | query top tokens | document top tokens |');
    md.push('|---|---|---|---|');
    for (const d of r.depths) md.push(`| ${d.depth} | ${d.score.toFixed(3)} | ${d.query_top.slice(0, 8).join(' ')} | ${d.doc_top.slice(0, 8).join(' ')} |`);
    md.push('');
    md.push(`Score change when ablated (attn zero / attn mean / mlp zero / mlp mean): ${r.ablation.map((a) => `L${a.layer} ${a.attn_zero_delta.toFixed(3)} / ${a.attn_mean_delta.toFixed(3)} / ${a.mlp_zero_delta.toFixed(3)} / ${a.mlp_mean_delta.toFixed(3)}`).join('; ')}`);
    md.push('');
  }
}

fs.writeFileSync(path.join(out, 'patching.html'), `<!doctype html><html><body style="background:#fff;margin:8px">${svgs.map((s) => `<div style="margin:6px 0">${s}</div>`).join('\n')}</body></html>\n`);
fs.writeFileSync(path.join(out, 'patching.md'), md.join('\n') + '\n');
console.log(md.join('\n'));
