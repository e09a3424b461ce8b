/**
 * Extension entry. Activation is lazy (on our commands) and so is the worker:
 * it starts on the first request. The extension host never runs inference;
 * everything goes through the EngineClient to the worker process.
 */
import * as vscode from 'vscode';
import { registerCompare } from './compare';
import { registerPatchView } from './patchView';
import { registerEditorFlows } from './editorFlows';
import { wirePanel } from './panelWiring';
import { EngineClient, type WorkerState } from '../client/engineClient';
import type { PulledModel } from '../protocol/worker';
import type { XetrievalApi } from './api';
import { pickModel, pullWithProgress } from './pullModel';
import { reportError as reportFailure } from './reportError';
import { knownModels, readSettings } from './settings';
import { StatusBar } from './statusBar';

let stopWorker: () => Promise<void> = async () => {};

export function activate(context: vscode.ExtensionContext): XetrievalApi {
  const log = vscode.window.createOutputChannel('Xetrieval', { log: true });
  const status = new StatusBar('xetrieval.showWorkerLog');

  const newClient = (): EngineClient => {
    const { device, model, precision } = readSettings(context);
    status.update({ worker: { status: 'stopped' }, model, device, precision });
    const c: EngineClient = new EngineClient({
      device,
      onLog: (level, message) => log[level](stripAnsi(message)),
      onStateChange: (state) => {
        if (c !== client) return; // a replaced client reporting its own shutdown
        log.info(describeState(state));
        status.update({ worker: state });
      },
    });
    return c;
  };
  let client = newClient();
  stopWorker = () => client.dispose();

  /** Replaces the client (picking up the device setting); starts the new worker when asked. */
  const restart = async (startNow: boolean): Promise<void> => {
    const old = client;
    client = newClient();
    await old.dispose();
    if (startNow) await client.start();
  };

  const pullModel = async (model?: string, source?: string): Promise<PulledModel | undefined> => {
    const s = readSettings(context);
    const chosen = model ?? (await pickModel(knownModels(context), s.model));
    if (!chosen) return undefined;
    const pulled = await pullWithProgress(client, chosen, source ?? s.modelSource, s.cacheFolder);
    void vscode.window.showInformationMessage(`${chosen} ${pulled.fetched ? 'pulled into' : 'is already cached in'} ${pulled.dir}`);
    return pulled;
  };

  const reportError = (what: string, e: unknown) => reportFailure(log, what, e, { sayCancelled: true });

  context.subscriptions.push(
    log,
    status,
    vscode.commands.registerCommand('xetrieval.pullModel', async (model?: unknown, source?: unknown) => {
      try {
        return await pullModel(typeof model === 'string' ? model : undefined, typeof source === 'string' ? source : undefined);
      } catch (e) {
        void reportError('Pull', e);
        return undefined;
      }
    }),
    vscode.commands.registerCommand('xetrieval.showWorkerLog', () => log.show()),
    vscode.commands.registerCommand('xetrieval.restartWorker', async () => {
      try {
        await restart(true);
      } catch (e) {
        void reportError('Worker restart', e);
      }
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('xetrieval.device')) {
        const running = client.state.status === 'ready' || client.state.status === 'starting';
        restart(running).catch((err) => reportError('Worker restart', err));
      } else if (e.affectsConfiguration('xetrieval.model')) {
        status.update({ model: readSettings(context).model });
      }
      // each request carries the precision, so a change needs no worker restart
      if (e.affectsConfiguration('xetrieval.precision')) status.update({ precision: readSettings(context).precision });
    }),
  );

  const flows = registerEditorFlows(context, { client: () => client, log });
  const panel = wirePanel(context, flows.handlers, { log: (level, m) => log[level](m), onRestore: (k) => void flows.restoreCase(k) });
  flows.connectPanel(panel);
  const compare = registerCompare(context, { client: () => client, log, source: flows.compare });
  const patch = registerPatchView(context, { client: () => client, log, source: flows.compare });

  return {
    get client() {
      return client;
    },
    pullModel,
    state: () => status.snapshot(),
    flows,
    compare,
    panel,
    patch,
  };
}

function describeState(s: WorkerState): string {
  if (s.status === 'ready') return `worker ready: ${s.provider.toUpperCase()}, pid ${s.pid}${s.providerNote ? ` (${s.providerNote})` : ''}`;
  return s.status === 'crashed' ? `worker crashed: ${s.reason}` : `worker ${s.status}`;
}

/** onnxruntime colours its stderr lines; the output channel shows the codes raw. */
function stripAnsi(s: string): string {
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

export function deactivate(): Promise<void> {
  return stopWorker();
}
