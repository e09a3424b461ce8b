/** What `activate` returns; tests reach it through `extension.exports`. */
import type { EngineClient, WorkerState } from '../client/engineClient';
import type { PulledModel } from '../protocol/worker';
import type { ComparePanel } from './compare';
import type { EditorFlows } from './editorFlows';
import type { ExplanationPanel } from './panel';
import type { PatchPanel } from './patchView';

export interface StatusSnapshot {
  worker: WorkerState;
  /** The status bar item as shown. */
  text: string;
  tooltip: string;
}

export interface XetrievalApi {
  /** The current worker client; replaced when the worker restarts. */
  readonly client: EngineClient;
  /** Pulls a model into the cache folder with notification progress; throws on failure. */
  pullModel(model?: string, source?: string): Promise<PulledModel | undefined>;
  state(): StatusSnapshot;
  /** Selection, eval-file, cases and steering flows (tests drive them through this). */
  readonly flows: EditorFlows;
  /** The compare view (d− against d+ of a failing case). */
  readonly compare: ComparePanel;
  /** The explanation panel; `panel.case` is the case as last sent to the webview, baselines filled. */
  readonly panel: ExplanationPanel;
  /** The activation patching view (Patch This Case…). */
  readonly patch: PatchPanel;
}
