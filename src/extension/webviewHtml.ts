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
 * A webview panel beside the editor, without taking focus, that loads only
 * from dist/: the compare and patch views. `hidden` runs when it is hidden
 * (its page is gone: it must say ready again), `disposed` when it closes.
 */
export function besideWebviewPanel(
  viewType: string,
  title: string,
  extensionUri: vscode.Uri,
  entry: 'compare' | 'patch',
  on: { receive: (m: unknown) => void; hidden: () => void; disposed: (panel: vscode.WebviewPanel) => void },
): vscode.WebviewPanel {
  const panel = vscode.window.createWebviewPanel(viewType, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
    enableScripts: true,
    enableCommandUris: false,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist')],
  });
  panel.webview.onDidReceiveMessage(on.receive);
  panel.onDidChangeViewState((e) => {
    if (!e.webviewPanel.visible) on.hidden();
  });
  panel.onDidDispose(() => on.disposed(panel));
  panel.webview.html = webviewHtml(panel.webview, extensionUri, entry, `Xetrieval: ${entry === 'compare' ? 'Compare' : 'Patch'}`);
  return panel;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
