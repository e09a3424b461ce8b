/**
 * The CLI's handle on the engine worker: forwards cancellation, says once on
 * stderr where inference runs, and is always disposed so no worker outlives
 * the command.
 */
import { EngineClient, EngineError } from '../client/engineClient';
import { CancelledError } from '../core/errors';
import type { ExecutionProvider, ParamsOf, ProgressEvent, ResultOf, WorkerMethod } from '../protocol/worker';
import { CliContext } from './context';

/** Lines of the worker's own stdout/stderr kept for a crash report. */
const KEEP_LINES = 30;

export class EngineSession {
  private readonly client: EngineClient;
  private _provider: ExecutionProvider | null | undefined;
  /**
   * The worker's raw output (e.g. onnxruntime's own messages while probing
   * CUDA) is noise on a good run, and the clue when the worker dies; so it is
   * kept, and shown only then.
   */
  private readonly workerOutput: string[] = [];

  constructor(private readonly ctx: CliContext) {
    this.client = new EngineClient({
      device: ctx.globals.device,
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
    if (this.ctx.signal.aborted) throw new CancelledError();
    const { result, meta } = await this.client.request(method, params, { signal: this.ctx.signal, onProgress });
    if (this._provider === undefined) {
      this._provider = meta.provider;
      this.ctx.info(`device: ${meta.provider ?? 'none'}${meta.providerNote ? ` (${meta.providerNote})` : ''}`);
    }
    return result;
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
