/** Typed access to the `xetrieval.*` settings. */
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DeviceSetting, PrecisionSetting } from '../protocol/worker';

export interface Settings {
  model: string;
  /** undefined: the model's default source */
  modelSource?: string;
  device: DeviceSetting;
  precision: PrecisionSetting;
  batchSize: number;
  cacheFolder: string;
}

export function readSettings(context: vscode.ExtensionContext): Settings {
  const c = vscode.workspace.getConfiguration('xetrieval');
  const source = c.get<string>('modelSource', '').trim();
  return {
    model: c.get<string>('model', 'all-MiniLM-L6-v2'),
    modelSource: source || undefined,
    device: c.get<DeviceSetting>('device', 'auto'),
    precision: c.get<PrecisionSetting>('precision', 'fp32'),
    batchSize: c.get<number>('batchSize', 32),
    cacheFolder: resolveFolder(c.get<string>('cacheFolder', '').trim()) ?? context.globalStorageUri.fsPath,
  };
}

/** `~/x` → home folder; a relative path is taken from the first workspace folder. */
function resolveFolder(p: string): string | undefined {
  if (!p) return undefined;
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return path.isAbsolute(p) || !base ? p : path.join(base, p);
}

/** The model ids the `xetrieval.model` setting accepts, from the manifest. */
export function knownModels(context: vscode.ExtensionContext): string[] {
  const props = context.extension.packageJSON?.contributes?.configuration?.properties ?? {};
  return (props['xetrieval.model']?.enum as string[] | undefined) ?? [];
}
