/** The webview side of the host connection: typed posting, guarded receiving, persisted view state. */
import { isToWebview, restoreViewState, type FromWebview, type PanelViewState, type ToWebview } from '../src/protocol/webview';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  getState(): unknown;
  setState(state: PanelViewState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

// acquireVsCodeApi may be called once per page load.
const api = acquireVsCodeApi();

export function post(message: FromWebview): void {
  api.postMessage(message);
}

export function log(level: 'info' | 'warn' | 'error', message: string): void {
  post({ type: 'log', level, message });
}

export function loadViewState(): PanelViewState {
  return restoreViewState(api.getState());
}

export function saveViewState(s: PanelViewState): void {
  api.setState(s);
}

/** Calls `handler` for every well-formed host message; reports malformed ones back rather than acting on them. */
export function onHostMessage(handler: (m: ToWebview) => void): void {
  window.addEventListener('message', (e: MessageEvent<unknown>) => {
    if (isToWebview(e.data)) handler(e.data);
    else log('warn', `ignored a malformed host message: ${JSON.stringify(e.data).slice(0, 200)}`);
  });
}
