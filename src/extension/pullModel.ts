/** "Xetrieval: Pull Model": pick a model, pull it in the worker with notification progress. */
import * as vscode from 'vscode';
import type { EngineClient } from '../client/engineClient';
import type { ProgressEvent, PulledModel } from '../protocol/worker';

/** Quick pick of the known models, the configured one first; undefined when dismissed. */
export async function pickModel(models: string[], configured: string): Promise<string | undefined> {
  const ordered = [configured, ...models.filter((m) => m !== configured)];
  const picked = await vscode.window.showQuickPick(
    ordered.map((m) => ({ label: m, description: m === configured ? 'configured' : undefined })),
    { title: 'Xetrieval: Pull Model', placeHolder: 'Model to download into the cache folder' },
  );
  return picked?.label;
}

/** Pulls `model` with a cancellable notification; throws EngineError (E_CANCELLED when cancelled). */
export async function pullWithProgress(client: EngineClient, model: string, source: string | undefined, cacheDir: string): Promise<PulledModel> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Pulling ${model}`, cancellable: true },
    async (progress, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      try {
        const { result } = await client.request('pullModel', { model, source, cacheDir }, { onProgress: progressReporter(progress), signal: abort.signal });
        return result;
      } finally {
        sub.dispose();
      }
    },
  );
}

/** Download bytes become percentage increments; other phases only set the message. */
function progressReporter(progress: vscode.Progress<{ message?: string; increment?: number }>): (p: ProgressEvent) => void {
  let shown = 0;
  return (p) => {
    const label = p.message ?? p.phase;
    if (p.phase !== 'download' || !p.total) {
      progress.report({ message: label });
      return;
    }
    const pct = Math.min(100, (100 * p.done) / p.total);
    progress.report({ message: `${label} ${mb(p.done)} / ${mb(p.total)} MB`, increment: Math.max(0, pct - shown) });
    shown = Math.max(shown, pct);
  };
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
