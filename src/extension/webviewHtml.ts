/**
 * The page every Xetrieval webview loads: a strict CSP with a fresh nonce, the
 * entry's stylesheet and script from dist/, and the banner/empty/app shells
 * the scripts fill. lit (inside vscode-elements) styles its shadow roots with
 * constructable stylesheets, which CSP does not govern; its <style> fallback
 * for old engines gets the nonce through window.litNonce. No 'unsafe-inline'.
 */
import * as crypto from 'crypto';
import * as vscode from 'vscode';

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, entry: 'webview' | 'compare' | 'patch', title: string): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const dist = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', f)).toString();
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${dist(`${entry}.css`)}">
<title>${escapeHtml(title)}</title>
</head>
<body>
<div id="banner" class="banner" hidden></div>
<div id="empty" class="empty-state"><p id="empty-message">Loading…</p></div>
<main id="app" hidden></main>
<script nonce="${nonce}">window.litNonce = ${JSON.stringify(nonce)};</script>
<script nonce="${nonce}" src="${dist(`${entry}.js`)}"></script>
</body>
</html>`;
}

/**
 * One webview panel beside the editor, opened without taking focus and
 * loading only from dist/: the compare and patch views. Messages are posted
 * only once the page has said it is ready; a hidden panel's page is gone and
 * must say so again. Closing it lets the next `open` make a new one.
 */
export class BesidePanel {
  private panel: vscode.WebviewPanel | undefined;
  private ready = false;

  constructor(
    private readonly viewType: string,
    private readonly extensionUri: vscode.Uri,
    private readonly entry: 'compare' | 'patch',
    private readonly receive: (m: unknown) => void,
  ) {}

  /** Opens the panel with this title, or retitles and reveals the open one. */
  open(title: string): void {
    if (this.panel) {
      this.panel.title = title;
      this.panel.reveal(undefined, true);
      return;
    }
    this.ready = false;
    const panel = vscode.window.createWebviewPanel(this.viewType, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      enableScripts: true,
      enableCommandUris: false,
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')],
    });
    panel.webview.onDidReceiveMessage(this.receive);
    panel.onDidChangeViewState((e) => {
      if (!e.webviewPanel.visible) this.ready = false;
    });
    panel.onDidDispose(() => {
      if (this.panel === panel) this.panel = undefined;
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, this.entry, `Xetrieval: ${this.entry === 'compare' ? 'Compare' : 'Patch'}`);
    this.panel = panel;
  }

  /** The page said it is ready: messages go through from now on. */
  markReady(): void {
    this.ready = true;
  }

  post(m: unknown): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(m);
  }

  dispose(): void {
    this.panel?.dispose();
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
