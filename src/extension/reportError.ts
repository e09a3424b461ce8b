/**
 * The extension's one way to report a failed command: logged, shown with a
 * "Show Log" button, and answered as a result object. A cancellation is not
 * a failure: it is answered as cancelled (and said only when asked to).
 */
import * as vscode from 'vscode';

export interface Reported {
  status: 'cancelled' | 'error';
  message: string;
  code?: string;
}

export function reportError(log: vscode.LogOutputChannel, what: string, e: unknown, opts: { sayCancelled?: boolean } = {}): Reported {
  const code = (e as { code?: unknown })?.code;
  if (code === 'E_CANCELLED') {
    const message = `${what} cancelled.`;
    if (opts.sayCancelled) void vscode.window.showInformationMessage(message);
    return { status: 'cancelled', message };
  }
  const message = `${what} failed: ${e instanceof Error ? e.message : String(e)}`;
  log.error(message);
  void vscode.window.showErrorMessage(message, 'Show Log').then((a) => a === 'Show Log' && log.show());
  return { status: 'error', message, code: typeof code === 'string' ? code : undefined };
}
