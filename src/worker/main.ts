/**
 * Entry point of the engine worker process. Speaks src/protocol/worker.ts over
 * Node IPC; every request gets exactly one reply, errors included, so a bad
 * input never takes the process down.
 */
import { Engine, CallContext } from '../engine/engine';
import { settleBackground } from '../engine/background';
import {
  FromWorker,
  PROTOCOL_VERSION,
  RequestMessage,
  ResponseMeta,
  WireError,
  isToWorker,
} from '../protocol/worker';

const engine = new Engine();
const inFlight = new Map<number, AbortController>();

function send(m: FromWorker): void {
  process.send?.(m);
}

function meta(started: number): ResponseMeta {
  return { provider: engine.provider, providerNote: engine.providerNote, elapsedMs: Date.now() - started, workerPid: process.pid };
}

function toWire(e: unknown): WireError {
  if (e instanceof Error) {
    const x = e as Error & { code?: unknown; file?: unknown; line?: unknown; field?: unknown };
    return {
      code: typeof x.code === 'string' ? x.code : 'E_INTERNAL',
      message: e.message,
      file: typeof x.file === 'string' ? x.file : undefined,
      line: typeof x.line === 'number' ? x.line : undefined,
      field: typeof x.field === 'string' ? x.field : undefined,
    };
  }
  return { code: 'E_INTERNAL', message: String(e) };
}

async function dispatch(req: RequestMessage, ctx: CallContext): Promise<unknown> {
  switch (req.method) {
    case 'init':
      return engine.init(req.params.device, req.params.threads);
    case 'pullModel':
      return engine.pull(req.params, ctx);
    case 'modelInfo':
      return engine.modelInfo(req.params.ref, ctx);
    case 'embed':
      return engine.embed(req.params, ctx);
    case 'score':
      return engine.score(req.params, ctx);
    case 'explain':
      return engine.explain(req.params, ctx);
    case 'contrast':
      return engine.contrast(req.params, ctx);
    case 'steer':
      return engine.steer(req.params, ctx);
    case 'internalize':
      return engine.internalize(req.params, ctx);
    case 'rerankSet':
      return engine.rerankSet(req.params, ctx);
    case 'rerank':
      return engine.rerank(req.params);
    case 'steeringBasis':
      return engine.steeringBasis(req.params);
    case 'featureInfo':
      return engine.featureInfo(req.params, ctx);
    case 'dropSet':
      return engine.dropSet(req.params);
    case 'trainBundle':
      return engine.trainBundle(req.params, ctx);
    case 'crash':
      process.exit(req.params.code ?? 70);
    // falls through: exit does not return
    case 'sleep': {
      const step = 20;
      for (let t = 0; t < req.params.ms; t += step) {
        if (ctx.signal.aborted) throw Object.assign(new Error('cancelled'), { code: 'E_CANCELLED' });
        ctx.progress({ phase: 'sleep', done: t, total: req.params.ms });
        await new Promise((r) => setTimeout(r, step));
      }
      return { slept: req.params.ms };
    }
  }
}

async function handle(req: RequestMessage): Promise<void> {
  const started = Date.now();
  const ac = new AbortController();
  inFlight.set(req.id, ac);
  const ctx: CallContext = {
    signal: ac.signal,
    progress: (progress) => send({ kind: 'progress', id: req.id, progress }),
  };
  try {
    const result = await dispatch(req, ctx);
    send({ kind: 'result', id: req.id, result, meta: meta(started) });
  } catch (e) {
    const err = toWire(e);
    if (ac.signal.aborted) err.code = 'E_CANCELLED';
    send({ kind: 'error', id: req.id, error: err, meta: meta(started) });
  } finally {
    inFlight.delete(req.id);
  }
}

process.on('message', (m: unknown) => {
  if (!isToWorker(m)) return;
  if (m.kind === 'cancel') inFlight.get(m.id)?.abort();
  else void handle(m);
});

// The caller going away must not leave an orphan holding a model in memory;
// background work (a graph being saved to the cache) gets a moment to finish,
// well inside the client's 2 s before SIGKILL.
const exitSoon = (): void => void settleBackground(1500).then(() => process.exit(0));
process.on('disconnect', exitSoon);
process.on('SIGTERM', exitSoon);

send({ kind: 'ready', protocolVersion: PROTOCOL_VERSION, pid: process.pid });
