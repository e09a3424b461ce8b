/** Status bar item: model · device · worker state; a click opens the worker log. */
import * as vscode from 'vscode';
import type { WorkerState } from '../client/engineClient';
import type { StatusSnapshot } from './api';
import { resolvePrecision, type PrecisionSetting } from '../protocol/worker';

const WORKER_LABEL: Record<WorkerState['status'], string> = {
  stopped: 'idle',
  starting: 'starting',
  ready: 'ready',
  crashed: 'crashed',
};

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('xetrieval.status', vscode.StatusBarAlignment.Right, 100);
  private worker: WorkerState = { status: 'stopped' };
  private model = '';
  private device = '';
  private precision: PrecisionSetting = 'fp32';

  constructor(openLogCommand: string) {
    this.item.name = 'Xetrieval';
    this.item.command = openLogCommand;
    this.item.show();
  }

  update(change: { worker?: WorkerState; model?: string; device?: string; precision?: PrecisionSetting }): void {
    this.worker = change.worker ?? this.worker;
    this.precision = change.precision ?? this.precision;
    this.model = change.model ?? this.model;
    this.device = change.device ?? this.device;
    const w = this.worker;
    const device = w.status === 'ready' ? w.provider.toUpperCase() : this.device === 'auto' ? 'auto' : this.device.toUpperCase();
    const icon = w.status === 'starting' ? '$(sync~spin)' : w.status === 'crashed' ? '$(error)' : '$(search)';
    // the precision requests will run at: resolved once the worker knows its device
    const provider = w.status === 'ready' && w.provider === 'cuda' ? 'cuda' : 'cpu';
    const [plain, bundle] = [resolvePrecision(this.precision, provider), resolvePrecision(this.precision, provider, true)];
    // auto on the CPU: scores and eval files in int8, explanations in fp32 (the bundle's)
    const precision = w.status !== 'ready' ? this.precision : plain === bundle ? plain : `${plain}/${bundle}`;
    this.item.text = `${icon} ${this.model} · ${device} · ${precision} · ${WORKER_LABEL[w.status]}`;
    const lines = [`Xetrieval model: ${this.model}`, `Device: ${device} (setting: ${this.device})`, `Precision: ${plain === bundle ? precision : `${plain} for scores and eval files, ${bundle} for explanations`} (setting: ${this.precision})`, `Worker: ${WORKER_LABEL[w.status]}`];
    if (w.status === 'ready') lines.push(`Worker pid: ${w.pid}`);
    if (w.status === 'ready' && w.providerNote) lines.push(`Fell back to CPU: ${w.providerNote}`);
    if (w.status === 'crashed') lines.push(`Reason: ${w.reason}`);
    lines.push('Click to show the worker log');
    this.item.tooltip = lines.join('\n');
    this.item.backgroundColor = w.status === 'crashed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  snapshot(): StatusSnapshot {
    return { worker: this.worker, text: this.item.text, tooltip: String(this.item.tooltip ?? '') };
  }

  dispose(): void {
    this.item.dispose();
  }
}
