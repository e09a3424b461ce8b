/**
 * The steering commands (save, load, reset) and the panel's handlers, on the
 * file whose case the panel shows (else the active file): sliders, re-ranking
 * and the updates the panel gets.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { caseKey, SUPERSEDED } from '../core/cases';
import { clashingInput, tempPathFor } from '../core/output';
import { unnamedName } from '../core/explain/attribution';
import { parseSteeringConfig, serializeSteeringConfig, SteeringConfig, steeringMismatch } from '../core/explain/steering';
import { resolveModelSpec } from '../engine/models/registry';
import type { PanelSlider, SteeringUpdate } from '../protocol/webview';
import type { CaseFlows } from './caseFlows';
import type { LoadedFile } from './evalFiles';
import type { FlowContext } from './flowContext';
import type { PanelHandlers } from './panelPort';

export interface SteeringResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  file?: string;
  sliders?: PanelSlider[];
  metrics?: Record<string, number>;
  elapsedMs?: number;
}

export function steeringFlows(ctx: FlowContext, openCase: CaseFlows['openCase']) {
  // ---- steering commands --------------------------------------------------------

  /** The file steering commands act on: the panel's case's, else the active one. */
  const steeringFile = (): LoadedFile | undefined => ctx.shownFile ?? ctx.files.active;
  const noFile = (): SteeringResult & { update?: SteeringUpdate } => {
    const message = 'Steering re-ranks a loaded eval file: run "Xetrieval: Explain Eval File" first.';
    void vscode.window.showWarningMessage(`Xetrieval: ${message}`);
    return { status: 'warning', message };
  };

  const saveSteering = async (target?: unknown): Promise<SteeringResult> => {
    const file = steeringFile();
    if (!file) return noFile();
    const store = file.store;
    const cfg = file.steering.config(ctx.ref().model);
    let uri = target instanceof vscode.Uri ? target : typeof target === 'string' ? vscode.Uri.file(target) : undefined;
    if (!uri) {
      const base = store.source ? vscode.Uri.file(path.join(path.dirname(store.source.uri.fsPath), 'steering.json')) : vscode.workspace.workspaceFolders?.[0]?.uri;
      uri = await vscode.window.showSaveDialog({ title: 'Save Steering Config', defaultUri: base, filters: { 'Steering config': ['json'] } });
      if (!uri) return { status: 'cancelled' };
    }
    // the loaded eval file is an input: saving over it (or a link to it) would lose the pairs, as `steer --save` refuses
    if (uri.scheme === 'file' && store.source?.uri.scheme === 'file') {
      const stat = (f: string) => fs.promises.stat(f).then((st) => ({ dev: st.dev, ino: st.ino }), () => undefined);
      const clash = clashingInput({ file: uri.fsPath, id: await stat(uri.fsPath) }, [{ file: store.source.uri.fsPath, id: await stat(store.source.uri.fsPath) }]);
      if (clash) {
        const message = `${uri.fsPath} is the same file as the loaded eval file ${clash.file}; choose another file for the steering config.`;
        void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
        return { status: 'error', message, code: 'E_SAME_FILE' };
      }
    }
    try {
      const bytes = Buffer.from(serializeSteeringConfig(cfg), 'utf8');
      if (uri.scheme === 'file') {
        // beside the target, then renamed: a failed write never leaves half a config
        const tmp = vscode.Uri.file(tempPathFor(uri.fsPath, process.pid, Date.now()));
        try {
          await vscode.workspace.fs.writeFile(tmp, bytes);
          await vscode.workspace.fs.rename(tmp, uri, { overwrite: true });
        } finally {
          await fs.promises.rm(tmp.fsPath, { force: true });
        }
      } else await vscode.workspace.fs.writeFile(uri, bytes);
    } catch (e) {
      return ctx.reportError(`Saving the steering config to ${uri.fsPath}`, e);
    }
    const message = `Saved ${cfg.features.length} steered feature(s) to ${vscode.workspace.asRelativePath(uri)}`;
    return { status: 'ok', message, file: uri.fsPath, sliders: file.steering.sliders() };
  };

  const loadSteering = async (source?: unknown, push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    const file = steeringFile();
    if (!file) return noFile();
    let uri = source instanceof vscode.Uri ? source : typeof source === 'string' ? vscode.Uri.file(source) : undefined;
    if (!uri) {
      const picked = await vscode.window.showOpenDialog({ title: 'Load Steering Config', canSelectMany: false, filters: { 'Steering config': ['json'] } });
      if (!picked?.[0]) return { status: 'cancelled' };
      uri = picked[0];
    }
    let cfg: SteeringConfig;
    try {
      const text = Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
      cfg = parseSteeringConfig(text, uri.fsPath);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: (e as { code?: string }).code };
    }
    if (cfg.model !== ctx.ref().model) {
      const message = `${uri.fsPath}: field "model": the config is for ${cfg.model}, but the current model is ${ctx.ref().model}; feature ids of another model's SAE mean nothing here.`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_MODEL_MISMATCH' };
    }
    // other weights, another SAE or an id the SAE lacks: known once a set is loaded (the CLI checks the same in the worker)
    const target = file.steering.target;
    const bad = target && steeringMismatch({ ...cfg, model: resolveModelSpec(cfg.model)?.id ?? cfg.model }, target);
    if (bad && bad.field !== 'model') {
      const message = `${uri.fsPath}: field "${bad.field}": ${bad.message}`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_STEERING_MISMATCH' };
    }
    file.steering.load(cfg, (id) => ctx.shown?.pair.features.find((f) => f.id === id)?.label);
    return applySteering(file, `Loaded ${cfg.features.length} feature(s) from ${vscode.workspace.asRelativePath(uri)}`, push, uri.fsPath);
  };

  const resetSteering = async (push = true): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    const file = steeringFile();
    if (!file) return noFile();
    file.steering.reset();
    return applySteering(file, 'Steering reset: every α is 1.', push);
  };

  /**
   * Re-ranks with the current sliders after they were changed as a whole
   * (load, reset). `push`: tell the panel (not when the panel asked: it gets
   * the update as its answer).
   */
  const applySteering = async (file: LoadedFile, message: string, push: boolean, configFile?: string): Promise<SteeringResult & { update?: SteeringUpdate }> => {
    // Only the panel showing this file's case hears of it.
    const tell = (u: SteeringUpdate) => {
      if (push && ctx.shownFile === file) ctx.panel.pushSteering(u);
    };
    if (!file.store.loaded) {
      const update = ctx.steeringUpdate(file);
      tell(update);
      return { status: 'ok', message: `${message} It applies once the eval file is explained.`, file: configFile, sliders: update.sliders, update };
    }
    try {
      const r = await file.steering.apply('all');
      const update = r === SUPERSEDED ? ctx.steeringUpdate(file) : ctx.steeringUpdate(file, r);
      tell(update);
      return { status: 'ok', message, file: configFile, sliders: update.sliders, metrics: update.rerank?.metrics ?? file.store.set.metrics(), elapsedMs: r === SUPERSEDED ? undefined : r.elapsedMs, update };
    } catch (e) {
      if (!push) throw e;
      return ctx.reportError('Steering', e);
    }
  };

  // ---- the panel's handlers --------------------------------------------------------

  /** The panel's case's file, which its sliders steer. */
  const panelFile = (): LoadedFile => {
    if (!ctx.shownFile || !ctx.files.get(ctx.shownFile.id)?.store.loaded) throw new Error('Steering re-ranks a loaded eval file\'s cases: open a case from the Cases view (after "Xetrieval: Explain Eval File").');
    return ctx.shownFile;
  };

  const handlers: PanelHandlers = {
    currentCase: () => ctx.shown,
    onSelectCandidate: async (docId) => {
      const qid = ctx.shown?.pair.query_id;
      const file = ctx.shownFile;
      if (!file || qid === undefined || !file.store.set.has(caseKey(qid, docId))) throw new Error(`document "${docId}" is not a loaded candidate of this query`);
      const r = await openCase(caseKey(qid, docId), file.id);
      if (r.status === 'error') throw new Error(r.message);
    },
    onSetAlpha: async (id, alpha) => {
      const file = panelFile();
      file.steering.setAlpha(id, alpha);
      const r = await file.steering.apply(`f${id}`);
      return r === SUPERSEDED ? 'superseded' : ctx.rerankUpdateFor(file, r);
    },
    onAddSlider: async (id) => {
      const file = panelFile();
      // The bundle knows every feature's label and the SAE's size, even before the file's steering set is ready.
      const info = await ctx.featureInfo([id]).catch(() => undefined);
      if (file.steering.dictSize === undefined && ctx.dictSizeOf?.model === ctx.ref().model && id >= ctx.dictSizeOf.size) {
        throw new Error(`#${id} is not a feature of this SAE: its ${ctx.dictSizeOf.size} features are #0 to #${ctx.dictSizeOf.size - 1}.`);
      }
      const known = ctx.shown?.pair.features.find((f) => f.id === id) ?? info?.get(id);
      // a label under the detection bar does not name the slider
      file.steering.addSlider(id, known?.unnamed ? unnamedName(id) : known?.label);
      return ctx.steeringUpdate(file);
    },
    onReset: async () => {
      const file = panelFile();
      const r = await resetSteering(false);
      return r.update ?? ctx.steeringUpdate(file);
    },
    onSave: async () => {
      const r = await saveSteering();
      if (r.status === 'error') throw new Error(r.message);
      return r.status === 'ok' ? r.message : undefined;
    },
    onLoad: async () => {
      const r = await loadSteering(undefined, false);
      if (r.status === 'error') throw new Error(r.message);
      return r.status === 'ok' ? r.update : undefined;
    },
    onAttributeWords: (query, doc) => ctx.attributeWords(query, doc),
  };

  return { saveSteering, loadSteering, resetSteering, applySteering, handlers };
}

export type SteeringFlows = ReturnType<typeof steeringFlows>;
