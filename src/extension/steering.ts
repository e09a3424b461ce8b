/**
 * One loaded eval file's steering: its sliders (feature id → α), the worker's
 * candidate set for the file and the basis the panel re-ranks with. Each
 * loaded file has its own, so loading, reloading or closing a file never
 * touches another file's sliders or ranking.
 *
 * The set is made once per load (`rerankSet`) and made again when the worker
 * lost it (a restart, or more files than the worker keeps sets for).
 *
 * α is held here and nowhere else on the host: the panel's case reads the
 * sliders from here (FlowContext.shown), the panel keeps no copy, and the
 * webview's slider positions are replaced by what this says. "Latest wins"
 * is this class's LatestRunner: one `rerank` at a time, each with every
 * slider's latest value (a move a later move of the same slider replaced is
 * answered SUPERSEDED), and likewise one basis fetch at a time.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { EngineClient, EngineError } from '../client/engineClient';
import { LatestRunner, splitCaseKey, SUPERSEDED } from '../core/cases';
import type { SteeringConfig, SteeringSide } from '../core/explain/steering';
import type { PanelSlider, PanelSteeringBasis } from '../protocol/webview';
import { resolveModelSpec } from '../engine/models/registry';
import type { ExplainPair, ModelRef, SteeringTargetInfo } from '../protocol/worker';
import type { CaseStore } from './cases';

/** Sliders a steering basis is made for at most; beyond, moves re-rank through the worker. */
export const MAX_BASIS_FEATURES = 64;

export interface SteerPair {
  key: string;
  pair: ExplainPair;
}

export interface Applied {
  /** host-measured: request, re-rank in the worker, scores folded into the tree */
  elapsedMs: number;
  workerMs?: number;
}

/** What a file's steering needs from the extension: the worker, the model, the log, and where to tell news. */
export interface SteeringContext {
  client(): EngineClient;
  ref(): ModelRef;
  batchSize(): number;
  log: vscode.LogOutputChannel;
  /** the set is ready (with the re-ranking of kept values, if any) */
  onReady(steering: Steering, applied?: Applied): void;
  /** the panel's basis for this file changed (undefined: none) */
  onBasis(steering: Steering, basis: PanelSteeringBasis | undefined): void;
}

export interface SteeringState {
  ready: boolean;
  setId?: number;
  pairs: number;
  sliders: PanelSlider[];
  /** why the suggestions are few or none, when the file cannot show much steering */
  note?: string;
  /** which texts the sliders steer */
  apply: SteeringSide;
}

export class Steering implements vscode.Disposable {
  private pairs: SteerPair[] = [];
  private setId: number | undefined;
  private setPid: number | undefined;
  private preparing: Promise<void> | undefined;
  /** the file's sliders: feature id → α. The only place α is held on the host; the panel's case and the webview get copies. */
  private readonly alphas = new Map<number, number>();
  /** which texts the sliders steer: both, unless a loaded config says only queries or only documents */
  private side: SteeringSide = 'both';
  private readonly labels = new Map<number, string>();
  private readonly rus = new Map<number, number>();
  private suggested = new Set<number>();
  private readonly runner = new LatestRunner<Applied>(() => this.rerankNow());
  /** set, side and features of the basis the panel has (or is being fetched) */
  private basisKey: string | undefined;
  /** what to ask the worker for that basis */
  private basisWanted: { key: string; setId: number; features: number[]; side: SteeringSide; pairs: SteerPair[] } | undefined;
  /** basis fetches, one at a time, the latest wanted next: the same runner as re-ranks, so "latest wins" has one mechanism */
  private readonly basisRunner = new LatestRunner<void>(() => this.fetchBasis());
  private currentBasis: PanelSteeringBasis | undefined;
  private disposed = false;
  /** the model and SAE of the worker's set (fingerprints for a saved config, checks for a loaded one) */
  target: SteeringTargetInfo | undefined;
  /** the set's note (e.g. candidate lists too short to re-rank) */
  private setNote: string | undefined;
  /** What the panel's slider caption says: the set's note, and which texts the sliders steer when not both. */
  get note(): string | undefined {
    const side = this.side === 'both' ? undefined : `The loaded config steers only the ${this.side === 'query' ? 'queries' : 'documents'}: α scales a feature in each ${this.side}, not in the ${this.side === 'query' ? 'documents' : 'queries'}.`;
    return [this.setNote, side].filter((x) => x).join(' ') || undefined;
  }
  /** the SAE's dictionary size, once the worker made the set: valid feature ids are below it */
  get dictSize(): number | undefined {
    return this.target?.dictSize;
  }

  constructor(
    private readonly ctx: SteeringContext,
    private readonly store: CaseStore,
  ) {}

  get basis(): PanelSteeringBasis | undefined {
    return this.currentBasis;
  }

  /** The file was explained (again): its pairs become the candidate set; slider values the user moved carry over. */
  prepare(pairs: SteerPair[]): void {
    this.pairs = pairs;
    const replaces = this.setId;
    this.setId = undefined;
    this.setPid = undefined;
    // Suggestions of the last load go unless the user moved them.
    for (const id of this.suggested) if ((this.alphas.get(id) ?? 1) === 1) this.alphas.delete(id);
    this.suggested = new Set();
    const preparing = this.createSet(replaces)
      .then(async () => {
        this.preparing = undefined;
        if (this.disposed) return;
        // Values loaded or kept from before apply to the new load at once.
        const kept = [...this.alphas.values()].some((a) => a !== 1) ? await this.apply('all') : undefined;
        this.ctx.onReady(this, kept === SUPERSEDED ? undefined : kept);
      })
      .catch((e) => this.ctx.log.warn(`steering is unavailable for ${this.fileName()}: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        if (this.preparing === preparing) this.preparing = undefined;
      });
    this.preparing = preparing;
  }

  private fileName(): string {
    return this.store.source ? path.basename(this.store.source.uri.fsPath) : 'this file';
  }

  private async createSet(replaces?: number): Promise<void> {
    if (this.pairs.length === 0) return;
    const client = this.ctx.client();
    const pairs = this.pairs.map((p) => p.pair);
    const { result, meta } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Xetrieval: preparing steering' }, () =>
      client.request('rerankSet', { ref: this.ctx.ref(), pairs, batchSize: this.ctx.batchSize(), replaces: client.pid === this.setPid ? replaces : undefined }),
    );
    if (this.disposed) {
      void client.request('dropSet', { setId: result.setId }).catch(() => undefined);
      return;
    }
    this.setId = result.setId;
    this.setPid = meta.workerPid;
    this.target = result.target;
    this.suggested = new Set(result.suggested.map((s) => s.id));
    this.setNote = result.note;
    for (const s of result.suggested) {
      this.labels.set(s.id, s.label);
      this.rus.set(s.id, s.rus);
      if (!this.alphas.has(s.id)) this.alphas.set(s.id, 1);
    }
    this.ctx.log.info(
      `steering ready for ${this.fileName()}: ${pairs.length} pairs, ${result.suggested.length} suggested feature(s)${result.note ? ` (${result.note})` : ''}; ${result.encoded.texts} text(s) encoded, ${result.encoded.fromCache} already encoded`,
    );
    this.refreshBasis();
  }

  /** The file is being explained again: the panel must not keep re-ranking with the last load's basis. */
  dropBasis(): void {
    if (this.basisKey === undefined && this.currentBasis === undefined) return;
    this.basisKey = undefined;
    this.basisWanted = undefined;
    this.setBasis(undefined);
  }

  private setBasis(b: PanelSteeringBasis | undefined): void {
    this.currentBasis = b;
    if (!this.disposed) this.ctx.onBasis(this, b);
  }

  /**
   * Makes the panel's basis for the current sliders, so it re-ranks by itself
   * while one moves; asked again when the sliders or the set change. None when
   * the set does not hold every loaded case (the file's metrics would be off)
   * or for more sliders than a basis is worth.
   */
  private refreshBasis(): void {
    const features = [...this.alphas.keys()].sort((a, b) => a - b);
    const setId = this.setId;
    const usable = setId !== undefined && features.length > 0 && features.length <= MAX_BASIS_FEATURES && this.pairs.length === this.store.set.size;
    const side = this.side;
    const key = usable ? `${setId}:${side}:${features.join(',')}` : undefined;
    if (key === this.basisKey) return;
    this.basisKey = key;
    if (!usable) {
      this.basisWanted = undefined;
      return this.setBasis(undefined);
    }
    this.basisWanted = { key: key!, setId: setId!, features, side, pairs: this.pairs };
    void this.basisRunner.request('basis');
  }

  private async fetchBasis(): Promise<void> {
    const want = this.basisWanted;
    if (!want || want.key !== this.basisKey) return;
    const { pairs, features } = want;
    try {
      const { result } = await this.ctx.client().request('steeringBasis', { setId: want.setId, features });
      if (this.basisKey !== want.key) return; // the sliders or the set changed meanwhile: the fetch for them is next
      const { elapsedMs, ...b } = result;
      const ids = pairs.map((p) => splitCaseKey(p.key));
      this.setBasis({
        ...b,
        queryIds: ids.map((x, i) => x?.queryId ?? pairs[i].pair.query_id ?? ''),
        docIds: ids.map((x, i) => x?.docId ?? pairs[i].pair.doc_id ?? ''),
        labels: pairs.map((p) => this.store.set.get(p.key)?.label ?? null),
        apply: want.side,
      });
      this.ctx.log.info(`steering basis: ${features.length} slider feature(s) over ${pairs.length} pairs in ${elapsedMs.toFixed(1)} ms; slider moves re-rank in the panel`);
    } catch (e) {
      if (this.basisKey !== want.key) return;
      this.basisKey = undefined;
      this.setBasis(undefined);
      this.ctx.log.warn(`steering basis unavailable, sliders re-rank through the worker: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  has(id: number): boolean {
    return this.alphas.has(id);
  }

  alpha(id: number): number {
    return this.alphas.get(id) ?? 1;
  }

  setAlpha(id: number, alpha: number): void {
    this.alphas.set(id, alpha);
  }

  /** Why `id` cannot get a slider (a message for the user), or undefined when it can. */
  refuseSlider(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0) return `"${id}" is not a feature id: ids are whole numbers from 0.`;
    if (this.dictSize !== undefined && id >= this.dictSize) return `#${id} is not a feature of this SAE: its ${this.dictSize} features are #0 to #${this.dictSize - 1}.`;
    if (this.alphas.has(id)) return `#${id} (${this.labels.get(id) ?? `feature ${id}`}) already has a slider.`;
    return undefined;
  }

  addSlider(id: number, label?: string): void {
    const refused = this.refuseSlider(id);
    if (refused) throw new Error(refused);
    this.alphas.set(id, 1);
    if (label) this.labels.set(id, label);
    this.refreshBasis();
  }

  /** Every α back to 1, steering both texts again. */
  reset(): void {
    for (const id of this.alphas.keys()) this.alphas.set(id, 1);
    this.setSide('both');
  }

  /** Which texts the sliders steer (a loaded config's `apply`). */
  get steers(): SteeringSide {
    return this.side;
  }

  private setSide(side: SteeringSide): void {
    if (side === this.side) return;
    this.side = side;
    this.refreshBasis();
  }

  load(cfg: SteeringConfig, labels?: (id: number) => string | undefined): void {
    this.reset();
    this.side = cfg.apply ?? 'both';
    for (const f of cfg.features) {
      this.alphas.set(f.id, f.alpha);
      const l = labels?.(f.id);
      if (l && !this.labels.has(f.id)) this.labels.set(f.id, l);
    }
    this.refreshBasis();
  }

  config(model: string): SteeringConfig {
    const features = [...this.alphas].filter(([, a]) => a !== 1).map(([id, alpha]) => ({ id, alpha }));
    const createdFrom: Record<string, string | number> = { tool: 'xetrieval-vscode' };
    if (this.store.source) createdFrom.evalFile = path.basename(this.store.source.uri.fsPath);
    if (this.store.source?.split) createdFrom.split = this.store.source.split;
    // with the fingerprints, a load elsewhere refuses this config for other weights or another SAE
    const t = this.target && this.target.model === (resolveModelSpec(model)?.id ?? model) ? this.target : undefined;
    return { model, features, apply: this.side, ...(t ? { modelSha256: t.modelSha256, saeSha256: t.saeSha256 } : {}), createdFrom };
  }

  /** The sliders with α ≠ 1, as feature id → α. */
  moved(): Map<number, number> {
    return new Map([...this.alphas].filter(([, a]) => a !== 1));
  }

  sliders(): PanelSlider[] {
    return [...this.alphas]
      .map(([id, alpha]) => ({ id, alpha: Math.min(2, Math.max(0, alpha)), label: this.labels.get(id) ?? `feature ${id}`, suggested: this.suggested.has(id), rus: this.rus.get(id) }))
      .sort((a, b) => Number(b.suggested) - Number(a.suggested) || (b.rus ?? 0) - (a.rus ?? 0) || a.id - b.id);
  }

  state(): SteeringState {
    return { ready: this.setId !== undefined, setId: this.setId, pairs: this.pairs.length, sliders: this.sliders(), note: this.note, apply: this.side };
  }

  /** Re-ranks with the current sliders; SUPERSEDED when a later change of the same slot replaced this one. */
  async apply(slot: string): Promise<Applied | typeof SUPERSEDED> {
    return this.runner.request(slot);
  }

  async idle(): Promise<void> {
    while (this.preparing) await this.preparing;
    await this.runner.idle();
    await this.basisRunner.idle();
  }

  private async rerankNow(): Promise<Applied> {
    const t0 = performance.now();
    const features = [...this.alphas].filter(([, a]) => a !== 1).map(([id, alpha]) => ({ id, alpha }));
    if (features.length === 0) {
      // Every α is 1: the unsteered scores, no worker needed.
      this.store.set.resetScores();
      this.store.notify();
      return { elapsedMs: performance.now() - t0 };
    }
    if (this.preparing) await this.preparing.catch(() => undefined);
    const client = this.ctx.client();
    if (this.setId === undefined || client.pid !== this.setPid) await this.createSet();
    if (this.setId === undefined) throw new Error('no candidate set to re-rank: explain an eval file first');
    let reply;
    try {
      reply = await client.request('rerank', { setId: this.setId, features, apply: this.side });
    } catch (e) {
      // The worker restarted or dropped the set (more files loaded than it keeps) between the check and the call: make it again, once.
      if (!(e instanceof EngineError) || (e.code !== 'E_NO_SET' && e.code !== 'E_WORKER_DIED')) throw e;
      await this.createSet();
      reply = await this.ctx.client().request('rerank', { setId: this.setId!, features, apply: this.side });
    }
    const scores = reply.result.scores;
    this.store.set.setScores(this.pairs.map((p, i): [string, number] => [p.key, scores[i]]));
    this.store.notify();
    return { elapsedMs: performance.now() - t0, workerMs: reply.result.elapsedMs };
  }

  /** The file was closed: its set goes from the worker too. */
  dispose(): void {
    this.disposed = true;
    const client = this.ctx.client();
    if (this.setId !== undefined && client.pid === this.setPid) void client.request('dropSet', { setId: this.setId }).catch(() => undefined);
    this.setId = undefined;
  }
}
