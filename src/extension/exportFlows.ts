/**
 * "Xetrieval: Export Explanation…": the case on screen as a Markdown report,
 * the JSON record or the CSV feature table (src/core/exportExplanation.ts).
 * The file is written by the output rules of the CLI (src/core/output.ts):
 * never over a loaded eval file (by path or by device and inode), written
 * beside the target and renamed onto it, so a failed write leaves no half
 * file; a symbolic link at the target stays a link.
 *
 * The dialogs sit behind ExportDialogs so the real-host tests can answer
 * them (EditorFlows.exportDialogs); the command also takes its answers as an
 * argument: `{ format, target, case }`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { EXPORT_EXTENSIONS, EXPORT_FORMATS, exportBaseName, exportExplanation, type ExportContext, type ExportFormat } from '../core/exportExplanation';
import { clashingInput, describeFsError, tempPathFor, type FileIdentity } from '../core/output';
import { isPanelCase, type PanelCase } from '../protocol/webview';
import type { FlowContext } from './flowContext';

export interface ExportResult {
  status: 'ok' | 'warning' | 'cancelled' | 'error';
  message?: string;
  code?: string;
  format?: ExportFormat;
  /** the written file */
  file?: string;
}

/** What the command asks the user; tests replace these. */
export interface ExportDialogs {
  pickFormat(): Promise<ExportFormat | undefined>;
  pickTarget(defaultUri: vscode.Uri, format: ExportFormat): Promise<vscode.Uri | undefined>;
  /** After a write: says where it went and offers to open it (not awaited by the command). */
  offerOpen(message: string, file: vscode.Uri): void;
}

const FORMAT_ITEMS: { format: ExportFormat; label: string; detail: string }[] = [
  { format: 'markdown', label: 'Markdown report', detail: 'query, document, the score split, the feature table, erasure and word attributions (.md)' },
  { format: 'json', label: 'JSON record', detail: 'the explanation as `xetrieval explain` writes it, plus the texts and where it came from (.json)' },
  { format: 'csv', label: 'CSV feature table', detail: 'one row per feature, minor ones included (.csv)' },
];
const FILTER_NAMES: Record<ExportFormat, string> = { markdown: 'Markdown', json: 'JSON', csv: 'CSV' };

export const defaultExportDialogs = (): ExportDialogs => ({
  pickFormat: async () => (await vscode.window.showQuickPick(FORMAT_ITEMS, { title: 'Export Explanation', placeHolder: 'Format' }))?.format,
  pickTarget: (defaultUri, format) =>
    Promise.resolve(vscode.window.showSaveDialog({ title: 'Export Explanation', defaultUri, filters: { [FILTER_NAMES[format]]: [EXPORT_EXTENSIONS[format]] } })),
  offerOpen: (message, file) => {
    void vscode.window.showInformationMessage(message, 'Open').then((a) => {
      if (a === 'Open') void vscode.window.showTextDocument(file);
    });
  },
});

interface ExportArg {
  format?: ExportFormat;
  target?: vscode.Uri;
  case?: PanelCase;
}

/** The command's argument, when it is ours (a menu passes other things, which are ignored). */
function exportArg(arg: unknown): ExportArg {
  if (typeof arg !== 'object' || arg === null || arg instanceof vscode.Uri) return {};
  const a = arg as Record<string, unknown>;
  const format = EXPORT_FORMATS.find((f) => f === a.format);
  const target = a.target instanceof vscode.Uri ? a.target : typeof a.target === 'string' ? vscode.Uri.file(a.target) : undefined;
  return { format, target, case: isPanelCase(a.case) ? a.case : undefined };
}

const identity = (f: string): Promise<FileIdentity | undefined> => fs.promises.stat(f).then((s) => ({ dev: s.dev, ino: s.ino }), () => undefined);

/**
 * Writes `text` to `file` as the CLI's output writer does: refused when it is
 * one of `inputs`; a temporary file beside the target (a symbolic link's
 * destination), renamed onto it.
 */
export async function writeExportFile(file: string, text: string, inputs: readonly string[]): Promise<void> {
  const target = await fs.promises.stat(file).catch(() => undefined);
  if (target?.isDirectory()) throw new ExportError(`${file} is a folder; name a file`, 'E_USAGE');
  const clash = clashingInput({ file, id: target ? { dev: target.dev, ino: target.ino } : undefined }, await Promise.all(inputs.map(async (i) => ({ file: i, id: await identity(i) }))));
  if (clash) {
    const how = path.resolve(clash.file) === path.resolve(file) ? '' : ' (a hard or symbolic link to it)';
    throw new ExportError(`${file} is the same file as the loaded eval file ${clash.file}${how}; choose another file`, 'E_SAME_FILE');
  }
  const dest = target ? await fs.promises.realpath(file).catch(() => path.resolve(file)) : path.resolve(file);
  const tmp = tempPathFor(dest, process.pid, ++serial);
  try {
    await fs.promises.writeFile(tmp, text, { encoding: 'utf8', flag: 'wx' });
    await fs.promises.rename(tmp, dest);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw new ExportError(`cannot write ${file}: ${describeFsError(e)}`, 'E_WRITE');
  }
}
let serial = 0;

class ExportError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function exportFlows(ctx: FlowContext) {
  const dialogs: ExportDialogs = defaultExportDialogs();

  /** Where the case came from, for the report. */
  const contextOf = (c: PanelCase): ExportContext => {
    const bundle = path.join(ctx.context.extensionPath, 'models', c.model);
    const steered = c.sliders.filter((s) => s.alpha !== 1);
    const selected = c.candidates.find((x) => x.selected);
    return {
      model: c.model,
      precision: c.precision,
      bundle: fs.existsSync(path.join(bundle, 'manifest.json')) ? bundle : undefined,
      file: c.file,
      steering: steered.length ? steered.map((s) => ({ id: s.id, label: s.label, alpha: s.alpha })) : undefined,
      steeredScore: steered.length && selected ? selected.score : undefined,
      device: c.device,
      exportedAt: new Date().toISOString(),
    };
  };

  /** The loaded eval files on disk: an export never replaces one. */
  const inputs = (): string[] =>
    ctx.files
      .list()
      .map((f) => f.store.source?.uri)
      .filter((u): u is vscode.Uri => u?.scheme === 'file')
      .map((u) => u.fsPath);

  const defaultTarget = (c: PanelCase, format: ExportFormat): vscode.Uri => {
    const src = ctx.shownFile?.store.source?.uri;
    const dir = src?.scheme === 'file' ? path.dirname(src.fsPath) : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir());
    return vscode.Uri.file(path.join(dir, `${exportBaseName(c.pair)}.${EXPORT_EXTENSIONS[format]}`));
  };

  const exportExplanationCmd = async (raw?: unknown): Promise<ExportResult> => {
    const arg = exportArg(raw);
    const c = arg.case ?? ctx.shown;
    if (!c) {
      const message = 'No case to export: explain a selection or open a case from an eval file first.';
      void vscode.window.showWarningMessage(`Xetrieval: ${message}`);
      return { status: 'warning', message };
    }
    const format = arg.format ?? (await dialogs.pickFormat());
    if (!format) return { status: 'cancelled' };
    const uri = arg.target ?? (await dialogs.pickTarget(defaultTarget(c, format), format));
    if (!uri) return { status: 'cancelled', format };
    if (uri.scheme !== 'file') {
      const message = `${uri.toString()}: only files on this machine can be written.`;
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: 'E_USAGE', format };
    }
    try {
      await writeExportFile(uri.fsPath, exportExplanation(format, { pair: c.pair, query: c.query, doc: c.doc, context: contextOf(c) }), inputs());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      void vscode.window.showErrorMessage(`Xetrieval: ${message}`);
      return { status: 'error', message, code: (e as { code?: string }).code, format };
    }
    const message = `Exported the ${FORMAT_ITEMS.find((i) => i.format === format)!.label} to ${vscode.workspace.asRelativePath(uri)}`;
    dialogs.offerOpen(message, uri);
    return { status: 'ok', message, format, file: uri.fsPath };
  };

  return { exportExplanation: exportExplanationCmd, dialogs };
}
