/**
 * Caller side of the worker protocol, shared by the extension host and the
 * CLI. Starts the worker lazily, matches replies to request ids, forwards
 * progress and cancellation, and turns a worker death into an error for every
 * request in flight; the next request starts a fresh worker.
 */
import { ChildProcess, fork } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  DeviceSetting,
  FromWorker,
  InitResult,
  ParamsOf,
  ProgressEvent,
  ResponseMeta,
  ResultOf,
  ToWorker,
  WireError,
  WorkerMethod,
  isFromWorker,
} from '../protocol/worker';

export class EngineError extends Error {
  readonly code: string;
  readonly file?: string;
  readonly line?: number;
  readonly field?: string;
  constructor(err: WireError) {
    super(err.message);
    this.name = 'EngineError';
    this.code = err.code;
    this.file = err.file;
    this.line = err.line;
    this.field = err.field;
  }
}

export interface EngineClientOptions {
  device?: DeviceSetting;
  threads?: number;
  /** Path of the bundled worker script; defaults to dist/worker.js beside this bundle. */
  workerPath?: string;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  onStateChange?: (state: WorkerState) => void;
}

export type WorkerState =
  | { status: 'stopped' }
  | { status: 'starting' }
  | { status: 'ready'; provider: string; pid: number; providerNote?: string }
  | { status: 'crashed'; reason: string };

export interface RequestOptions {
  onProgress?: (p: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface Reply<M extends WorkerMethod> {
  result: ResultOf<M>;
  meta: ResponseMeta;
}

interface Pending {
  resolve: (r: { result: unknown; meta: ResponseMeta }) => void;
  reject: (e: Error) => void;
  onProgress?: (p: ProgressEvent) => void;
  cleanup: () => void;
}

export function defaultWorkerPath(): string {
  const candidates = [
    path.join(__dirname, 'worker.js'),
    path.join(__dirname, '..', 'dist', 'worker.js'),
    path.join(__dirname, '..', '..', 'dist', 'worker.js'),
    path.join(__dirname, '..', '..', '..', 'dist', 'worker.js'),
  ];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`worker bundle not found (looked in ${candidates.join(', ')}); run "npm run build"`);
}

export class EngineClient {
  private child: ChildProcess | null = null;
  private starting: Promise<InitResult> | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private readonly opts: EngineClientOptions;
  private _state: WorkerState = { status: 'stopped' };

  constructor(opts: EngineClientOptions = {}) {
    this.opts = opts;
  }

  get state(): WorkerState {
    return this._state;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private setState(s: WorkerState): void {
    this._state = s;
    this.opts.onStateChange?.(s);
  }

  /** Starts the worker if none runs, and resolves once it answered `init`. */
  async start(): Promise<InitResult> {
    if (this.child && this.starting) return this.starting;
    this.setState({ status: 'starting' });
    const workerPath = this.opts.workerPath ?? defaultWorkerPath();
    const child = fork(workerPath, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      // The extension host may run on Electron; a plain node is what we want.
      execArgv: [],
    });
    this.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: unknown) => {
        if (isFromWorker(m) && m.kind === 'ready') {
          child.off('message', onMsg);
          resolve();
        }
      };
      child.on('message', onMsg);
      child.once('exit', (code, sig) => reject(new Error(`worker exited before it was ready (code ${code}, signal ${sig})`)));
    });
    child.on('message', (m: unknown) => this.onMessage(m));
    child.stdout?.on('data', (d: Buffer) => this.opts.onLog?.('info', d.toString().trimEnd()));
    child.stderr?.on('data', (d: Buffer) => this.opts.onLog?.('warn', d.toString().trimEnd()));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (e) => this.opts.onLog?.('error', `worker process error: ${e.message}`));

    this.starting = (async () => {
      await ready;
      const { result } = await this.send('init', { device: this.opts.device ?? 'auto', threads: this.opts.threads });
      this.setState({ status: 'ready', provider: result.provider, pid: child.pid ?? -1, providerNote: result.providerNote });
      return result;
    })();
    try {
      return await this.starting;
    } catch (e) {
      this.starting = null;
      throw e;
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = null;
    this.starting = null;
    const reason = signal ? `worker was killed (${signal})` : `worker exited with code ${code}`;
    this.setState(code === 0 && !signal ? { status: 'stopped' } : { status: 'crashed', reason });
    const err = new EngineError({ code: 'E_WORKER_DIED', message: `${reason}; the request was lost. The next request starts a new worker.` });
    for (const [, p] of this.pending) {
      p.cleanup();
      p.reject(err);
    }
    this.pending.clear();
  }

  private onMessage(m: unknown): void {
    if (!isFromWorker(m)) return;
    switch (m.kind) {
      case 'log':
        this.opts.onLog?.(m.level, m.message);
        return;
      case 'progress':
        this.pending.get(m.id)?.onProgress?.(m.progress);
        return;
      case 'result':
      case 'error': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.cleanup();
        if (m.kind === 'result') p.resolve({ result: m.result, meta: m.meta });
        else p.reject(new EngineError(m.error));
        return;
      }
      case 'ready':
        return;
    }
  }

  private send<M extends WorkerMethod>(method: M, params: ParamsOf<M>, opts: RequestOptions = {}): Promise<Reply<M>> {
    const child = this.child;
    if (!child || !child.connected) return Promise.reject(new EngineError({ code: 'E_WORKER_DIED', message: 'worker is not running' }));
    const id = this.nextId++;
    return new Promise<Reply<M>>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      if (opts.signal) {
        if (opts.signal.aborted) {
          reject(new EngineError({ code: 'E_CANCELLED', message: 'cancelled' }));
          return;
        }
        onAbort = () => {
          const msg: ToWorker = { kind: 'cancel', id };
          if (child.connected) child.send(msg);
        };
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      this.pending.set(id, {
        resolve: resolve as (r: { result: unknown; meta: ResponseMeta }) => void,
        reject,
        onProgress: opts.onProgress,
        cleanup: () => {
          if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
        },
      });
      const msg = { kind: 'request', id, method, params } as ToWorker;
      child.send(msg, (err) => {
        if (err) {
          const p = this.pending.get(id);
          if (p) {
            this.pending.delete(id);
            p.cleanup();
            reject(new EngineError({ code: 'E_WORKER_DIED', message: `could not reach worker: ${err.message}` }));
          }
        }
      });
    });
  }

  /** Sends a request, starting a worker first when none is running. */
  async request<M extends WorkerMethod>(method: M, params: ParamsOf<M>, opts: RequestOptions = {}): Promise<Reply<M>> {
    await this.start();
    return this.send(method, params, opts);
  }

  /** Stops the worker; requests in flight fail. */
  async dispose(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
      }, 2000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
