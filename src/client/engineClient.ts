/**
 * Caller side of the worker protocol, shared by the extension host and the
 * CLI. Starts the worker lazily, matches replies to request ids, forwards
 * progress and cancellation, and turns a worker death into an error for every
 * request in flight; the next request starts a fresh worker.
 *
 * A worker that hangs is killed, so its requests fail instead of waiting
 * forever: one that stops sending heartbeats (stopped, frozen), one that
 * leaves a request without progress or answer past the request timeout, and
 * one that does not answer a cancellation within a grace period. No worker
 * outlives the process that started it.
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

/** The worker sends a heartbeat this often, from a thread of its own (so long synchronous work does not delay it). */
export const HEARTBEAT_INTERVAL_MS = 500;
/** A worker silent this long is taken as hung and killed. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;
/** How often the caller checks on the worker. */
const WATCHDOG_INTERVAL_MS = Math.min(250, HEARTBEAT_INTERVAL_MS);
/** A watchdog check this late means the caller itself was blocked, not the worker. */
const CALLER_STALL_MS = 1_000;
/** Before its first heartbeat, a starting worker gets this long (a loaded machine starts Node slowly). */
export const STARTUP_TIMEOUT_MS = 60_000;
/**
 * A cancelled request the worker has not answered after this long: the worker
 * is killed (a worker between two cancellation checks can be busy a while,
 * and killing it loses what it holds, such as the live-steering set).
 */
export const DEFAULT_CANCEL_GRACE_MS = 15_000;
/** The file descriptor of the heartbeat pipe in the worker. */
const HEARTBEAT_FD = 4;

export interface EngineClientOptions {
  device?: DeviceSetting;
  threads?: number;
  /** Path of the bundled worker script; defaults to dist/worker.js beside this bundle. */
  workerPath?: string;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  onStateChange?: (state: WorkerState) => void;
  /** silence after which a worker is killed as hung (default 10 s) */
  heartbeatTimeoutMs?: number;
  /** a request with neither progress nor an answer for this long kills the worker (default: none) */
  requestTimeoutMs?: number;
  /** how long a cancelled request may stay unanswered before the worker is killed (default 15 s) */
  cancelGraceMs?: number;
}

/** The worker died, or was killed as hung, while requests were in flight. */
export class WorkerDiedError extends EngineError {
  constructor(
    /** what happened, e.g. "worker was killed (SIGKILL)" */
    readonly reason: string,
  ) {
    super({ code: 'E_WORKER_DIED', message: `${reason}; the request was lost. The next request starts a new worker.` });
  }
}

/** Every live worker of this process, killed when the process exits however it exits. */
const liveWorkers = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackWorker(child: ChildProcess): void {
  liveWorkers.add(child);
  child.once('exit', () => liveWorkers.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously even on process.exit(); kill() is a plain syscall.
  process.on('exit', () => {
    for (const c of liveWorkers) c.kill('SIGKILL');
  });
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
  method: WorkerMethod;
  resolve: (r: { result: unknown; meta: ResponseMeta }) => void;
  reject: (e: Error) => void;
  onProgress?: (p: ProgressEvent) => void;
  cleanup: () => void;
  /** last progress or the time it was sent */
  lastActivity: number;
  cancelled: boolean;
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
  /** last heartbeat of the current worker (its spawn time until the first) */
  private lastBeat = 0;
  private beating = false;
  /** why the client killed the current worker, for the error its requests get */
  private killReason: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** when the watchdog last ran: a long gap means this process's own event loop was blocked */
  private lastCheck = 0;

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
      // fd 4: the heartbeat pipe
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', XETRIEVAL_HEARTBEAT_FD: String(HEARTBEAT_FD), XETRIEVAL_HEARTBEAT_MS: String(HEARTBEAT_INTERVAL_MS) },
      // The extension host may run on Electron; a plain node is what we want.
      execArgv: [],
    });
    this.child = child;
    trackWorker(child);
    this.killReason = undefined;
    this.lastBeat = Date.now();
    this.beating = false;
    const beats = child.stdio[HEARTBEAT_FD] as NodeJS.ReadableStream | null | undefined;
    beats?.on('data', () => {
      if (this.child !== child) return;
      this.lastBeat = Date.now();
      this.beating = true;
    });
    beats?.on('error', () => undefined);
    this.startWatchdog();
    const ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: unknown) => {
        if (isFromWorker(m) && m.kind === 'ready') {
          child.off('message', onMsg);
          // from here on the heartbeat timeout holds (its thread may start a moment after)
          if (this.child === child) {
            this.lastBeat = Date.now();
            this.beating = true;
          }
          resolve();
        }
      };
      child.on('message', onMsg);
      child.once('exit', (code, sig) =>
        reject(new WorkerDiedError(this.killReason ?? `worker exited before it was ready (${sig ? `signal ${sig}` : `code ${code}`})`)),
      );
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
    this.stopWatchdog();
    const reason = this.killReason ?? (signal ? `worker was killed (${signal})` : `worker exited with code ${code}`);
    this.killReason = undefined;
    this.setState(code === 0 && !signal ? { status: 'stopped' } : { status: 'crashed', reason });
    const err = new WorkerDiedError(reason);
    for (const [, p] of this.pending) {
      p.cleanup();
      // a request its caller cancelled ends as cancelled, whatever became of the worker
      p.reject(p.cancelled ? new EngineError({ code: 'E_CANCELLED', message: 'cancelled' }) : err);
    }
    this.pending.clear();
  }

  /** Kills the current worker as hung; its requests fail with `reason`. */
  private killHung(child: ChildProcess, reason: string): void {
    if (this.child !== child || this.killReason) return;
    this.killReason = reason;
    this.opts.onLog?.('warn', reason);
    // SIGKILL: a stopped process does not act on SIGTERM until it is continued
    child.kill('SIGKILL');
  }

  private startWatchdog(): void {
    this.stopWatchdog();
    this.lastCheck = Date.now();
    this.watchdog = setInterval(() => this.checkHung(), WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private checkHung(): void {
    const child = this.child;
    if (!child) return;
    const now = Date.now();
    // This process was blocked (synchronous work, a spawnSync): the worker's heartbeats and
    // progress sit unread in the pipes, so the silence is ours. The stall does not count.
    const stall = now - this.lastCheck - WATCHDOG_INTERVAL_MS;
    this.lastCheck = now;
    if (stall > CALLER_STALL_MS) {
      this.lastBeat += stall;
      for (const p of this.pending.values()) p.lastActivity += stall;
      return;
    }
    const limit = this.beating ? (this.opts.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS) : Math.max(STARTUP_TIMEOUT_MS, this.opts.heartbeatTimeoutMs ?? 0);
    if (now - this.lastBeat > limit) {
      const s = ((now - this.lastBeat) / 1000).toFixed(1);
      this.killHung(child, this.beating ? `worker stopped responding (no heartbeat for ${s} s) and was killed` : `worker did not start (no heartbeat for ${s} s) and was killed`);
      return;
    }
    const timeout = this.opts.requestTimeoutMs;
    const grace = this.opts.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
    for (const p of this.pending.values()) {
      if (p.cancelled && now - p.lastActivity > grace) {
        this.killHung(child, `worker did not answer a cancellation within ${(grace / 1000).toFixed(1)} s and was killed`);
        return;
      }
      if (timeout !== undefined && p.method !== 'trainBundle' && now - p.lastActivity > timeout) {
        this.killHung(child, `worker gave no progress or answer to "${p.method}" for ${(timeout / 1000).toFixed(1)} s and was killed`);
        return;
      }
    }
  }

  private onMessage(m: unknown): void {
    if (!isFromWorker(m)) return;
    switch (m.kind) {
      case 'log':
        this.opts.onLog?.(m.level, m.message);
        return;
      case 'progress': {
        const p = this.pending.get(m.id);
        if (!p) return;
        if (!p.cancelled) p.lastActivity = Date.now();
        p.onProgress?.(m.progress);
        return;
      }
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
          const p = this.pending.get(id);
          if (p) {
            // from now on the clock runs for the cancellation grace
            p.cancelled = true;
            p.lastActivity = Date.now();
          }
          const msg: ToWorker = { kind: 'cancel', id };
          if (child.connected) child.send(msg);
        };
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      this.pending.set(id, {
        method,
        lastActivity: Date.now(),
        cancelled: false,
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
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
      }, 2000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
      // a stopped worker acts on SIGTERM only once continued
      child.kill('SIGCONT');
    });
  }
}
