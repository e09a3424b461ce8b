/**
 * The CLI's handle on the engine worker: forwards cancellation, says once on
 * stderr where inference runs, and is always disposed so no worker outlives
 * the command. A worker that dies or hangs during a request is replaced and
 * the request sent again (every request is a pure function of its params, so
 * a repeat gives the same answer), up to MAX_RESTARTS times in a row.
 */
import { EngineClient, EngineError, WorkerDiedError } from '../client/engineClient';
import { CancelledError } from '../core/errors';
import type { ExecutionProvider, ParamsOf, Precision, ProgressEvent, ResultOf, WorkerMethod } from '../protocol/worker';
import { CliContext } from './context';

/** Lines of the worker's own stdout/stderr kept for a crash report. */
const KEEP_LINES = 30;
/** Restarts of the worker for one request before the command gives up. */
export const MAX_RESTARTS = 3;
/** A request with neither progress nor an answer for this long is taken as hung (the heartbeat catches a stopped worker far sooner). */
export const REQUEST_TIMEOUT_MS = 10 * 60_000;
/** After Ctrl-C the worker has this long to answer before it is killed: the command is ending anyway. */
export const CANCEL_GRACE_MS = 3_000;

export class EngineSession {
  private readonly client: EngineClient;
  private _provider: ExecutionProvider | null | undefined;
  private _precision: Precision | undefined;
  /**
   * The worker's raw output (e.g. onnxruntime's own messages while probing
   * CUDA) is noise on a good run, and the clue when the worker dies; so it is
   * kept, and shown only then.
   */
  private readonly workerOutput: string[] = [];
  /** Where the stream stands, e.g. "line 513 of pairs.jsonl", for the restart message. */
  position: string | undefined;
  /** worker restarts in this session */
  restarts = 0;

  constructor(private readonly ctx: CliContext) {
    this.client = new EngineClient({
      device: ctx.globals.device,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      cancelGraceMs: CANCEL_GRACE_MS,
      onLog: (level, message) => {
        if (level === 'error') {
          ctx.error(`worker: ${message}`);
          return;
        }
        this.workerOutput.push(...message.replace(/\x1b\[[0-9;]*m/g, '').split('\n'));
        this.workerOutput.splice(0, this.workerOutput.length - KEEP_LINES);
      },
    });
  }

  async call<M extends WorkerMethod>(method: M, params: ParamsOf<M>, onProgress?: (p: ProgressEvent) => void): Promise<ResultOf<M>> {
    const { result, meta } = await this.withRestarts(() => this.client.request(method, params, { signal: this.ctx.signal, onProgress }));
    if (this._provider === undefined) {
      this._provider = meta.provider;
      this._precision = meta.precision;
      this.ctx.info(`device: ${meta.provider ?? 'none'}${meta.precision ? `, precision: ${meta.precision}` : ''}${meta.providerNote ? ` (${meta.providerNote})` : ''}`);
    } else if (this._precision === undefined && meta.precision) {
      this._precision = meta.precision;
      this.ctx.info(`precision: ${meta.precision}`);
    }
    return result;
  }

  /** The encoder precision of the first answered request that named a model. */
  get precision(): Precision | undefined {
    return this._precision;
  }

  private async withRestarts<R>(send: () => Promise<R>): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      if (this.ctx.signal.aborted) throw new CancelledError();
      try {
        return await send();
      } catch (e) {
        if (!(e instanceof WorkerDiedError) || this.ctx.signal.aborted) throw e;
        const at = this.position ? ` at ${this.position}` : '';
        if (attempt >= MAX_RESTARTS) {
          throw new EngineError({
            code: 'E_WORKER_DIED',
            message: `${e.reason}; the worker failed ${attempt + 1} times in a row${at}, giving up after ${MAX_RESTARTS} restarts`,
          });
        }
        this.restarts++;
        this.ctx.error(`${e.reason}; starting a new worker and resuming${at} (restart ${attempt + 1} of ${MAX_RESTARTS})`);
      }
    }
  }

  /** Where the first answered request ran; null before any. */
  get provider(): ExecutionProvider | null {
    return this._provider ?? null;
  }

  /** Shows the kept worker output if `e` is the worker dying. */
  reportCrash(e: unknown): void {
    if (!(e instanceof EngineError) || e.code !== 'E_WORKER_DIED' || this.ctx.signal.aborted) return;
    const lines = this.workerOutput.filter((l) => l.trim() !== '');
    if (lines.length) this.ctx.error(`worker output before it stopped:\n${lines.map((l) => `  ${l}`).join('\n')}`);
  }

  dispose(): Promise<void> {
    return this.client.dispose();
  }
}

/** Runs `fn` with a session that is disposed however `fn` ends. */
export async function withSession<T>(ctx: CliContext, fn: (s: EngineSession) => Promise<T>): Promise<T> {
  const session = new EngineSession(ctx);
  try {
    return await fn(session);
  } catch (e) {
    session.reportCrash(e);
    throw e;
  } finally {
    await session.dispose();
  }
}
