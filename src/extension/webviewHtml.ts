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

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
