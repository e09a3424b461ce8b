/**
 * What extension.ts calls to put the explanation panel in place, after the
 * editor flows are registered:
 *
 *   const panel = wirePanel(context, flows.handlers, { log: (level, m) => log[level](m) });
 *   flows.connectPanel(panel);
 *
 * It registers the WebviewPanelSerializer (the panel comes back after a
 * window reload; needs `onWebviewPanel:xetrieval.panel` in activationEvents).
 * `xetrieval.showPanel` stays with the flows (they call panel.reveal()).
 * With XETRIEVAL_TEST=1 it also registers `xetrieval.test.showSamplePanel`,
 * which opens a second panel on a built-in sample case whose sliders re-rank
 * without a worker (UI drivers and tests); it returns that ExplanationPanel.
 */
import * as vscode from 'vscode';
import { ExplanationPanel, registerPanelSerializer, type PanelHandlers, type PanelOptions } from './panel';
import { samplePanelCase, SampleSteering } from './samplePanel';

export { samplePanelCase, SampleSteering };

export function wirePanel(context: vscode.ExtensionContext, handlers: PanelHandlers, options: PanelOptions = {}): ExplanationPanel {
  const panel = new ExplanationPanel(context.extensionUri, handlers, options);
  context.subscriptions.push(panel, registerPanelSerializer(panel));
  if (process.env.XETRIEVAL_TEST === '1') {
    let sample: ExplanationPanel | undefined;
    context.subscriptions.push(
      { dispose: () => sample?.dispose() },
      vscode.commands.registerCommand('xetrieval.test.showSamplePanel', (features?: unknown) => {
        // A fresh panel and sample steering each time, so every run starts from α = 1.
        const n = typeof features === 'number' ? features : 200;
        const steering = new SampleSteering(n);
        sample?.dispose();
        const created: ExplanationPanel = new ExplanationPanel(context.extensionUri, steering.handlers(() => created), { ...options, title: 'Xetrieval sample' });
        sample = created;
        steering.show(created, samplePanelCase(n, steering), vscode.ViewColumn.One);
        return created;
      }),
    );
  }
  return panel;
}
