/**
 * What the compare view (src/extension/compare.ts) needs of the loaded eval
 * files: it works on one file, the panel's case's, else the active one; a
 * case key of another file switches it to that file.
 */
import { unnamedName } from '../core/explain/attribution';
import type { CompareSource } from './compare';
import type { LoadedFile } from './evalFiles';
import type { FlowContext } from './flowContext';
import type { SteeringFlows } from './steeringFlows';

export function compareSource(ctx: FlowContext, steering: SteeringFlows): CompareSource {
  let chosen: LoadedFile | undefined;
  const file = (): LoadedFile | undefined => (chosen && ctx.files.get(chosen.id) === chosen ? chosen : (ctx.shownFile ?? ctx.files.active));
  return {
    loaded: () => file()?.store.loaded ?? false,
    currentQueryId: () => ctx.shown?.pair.query_id,
    queryOfCase: (key) => {
      const f = [ctx.shownFile, ctx.files.active, ...ctx.files.list()].find((x) => x?.store.set.has(key));
      chosen = f;
      return f?.store.set.get(key)?.query_id;
    },
    candidates: async (queryId) => {
      const store = file()?.store;
      const q = store?.set.query(queryId);
      if (!store || !q) return undefined;
      const candidates = [];
      for (const c of q.candidates) {
        const t = await store.textsOf(c.key);
        if (t) candidates.push({ doc_id: c.doc_id, doc: t.doc, ...(c.label !== undefined ? { label: c.label } : {}) });
      }
      return { query_id: queryId, query: q.text, candidates };
    },
    applyFeatures: async (features) => {
      const f = file();
      if (!f) return { status: 'warning', message: 'Steering re-ranks a loaded eval file: run "Xetrieval: Explain Eval File" first.' };
      const before = f.store.set.metrics();
      // an unnamed feature goes by its id: its label does not name it reliably
      const name = (x: { id: number; label: string; unnamed?: true }) => (x.unnamed ? unnamedName(x.id) : x.label || `#${x.id}`);
      for (const x of features) {
        if (!f.steering.has(x.id)) f.steering.addSlider(x.id, name(x));
        f.steering.setAlpha(x.id, 0);
      }
      const r = await steering.applySteering(f, `Set ${features.length} feature(s) to α = 0: ${features.map(name).join(', ')}.`, true);
      const after = r.metrics ?? {};
      const moved = Object.keys(after)
        .filter((k) => before[k] !== undefined)
        .map((k) => `${k} ${before[k].toFixed(3)} → ${after[k].toFixed(3)}`);
      return moved.length ? { ...r, message: `${r.message} On the whole file: ${moved.join(', ')}.` } : r;
    },
  };
}
