/**
 * Entry point of the engine worker process. Speaks src/protocol/worker.ts over
 * Node IPC; every request gets exactly one reply, errors included, so a bad
 * input never takes the process down.
 */
// first: the heartbeat starts before the engine's modules load
import './heartbeat';
import { Engine, CallContext } from '../engine/engine';
import { settleBackground } from '../engine/background';
import { trainAdapterInWorker } from '../engine/modulation/train';
import {
  FromWorker,
  ParamsOf,
  PROTOCOL_VERSION,
  ResultOf,
  WorkerMethod,
  RequestMessage,
  ResponseMeta,
  WireError,
  isToWorker,
  ModelRef,
  Precision,
  resolvePrecision,
  BUNDLE_METHODS,
} from '../protocol/worker';

const engine = new Engine();
const inFlight = new Map<number, AbortController>();

function send(m: FromWorker): void {
  process.send?.(m);
}

/** The precision of the encoder a request names, resolved for this device; undefined for requests without a model. */
function precisionOf(req: RequestMessage): Precision | undefined {
  const params: object = req.params;
  if (!('ref' in params)) return undefined;
  return resolvePrecision((params as { ref: ModelRef }).ref.precision, engine.provider, BUNDLE_METHODS.has(req.method));
}

function meta(started: number, precision: Precision | undefined): ResponseMeta {
  return { provider: engine.provider, providerNote: engine.providerNote, ...(precision ? { precision } : {}), elapsedMs: Date.now() - started, workerPid: process.pid };
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

/**
 * One handler per method, typed against WorkerMethods: a handler that returns
 * the wrong shape, or a method without a handler, does not compile.
 */
type Handlers = { [M in WorkerMethod]: (params: ParamsOf<M>, ctx: CallContext) => ResultOf<M> | Promise<ResultOf<M>> };

const handlers: Handlers = {
  init: (p) => engine.init(p.device, p.threads),
  pullModel: (p, ctx) => engine.pull(p, ctx),
  modelInfo: (p, ctx) => engine.modelInfo(p.ref, ctx),
  embed: (p, ctx) => engine.embed(p, ctx),
  score: (p, ctx) => engine.score(p, ctx),
  explain: (p, ctx) => engine.explain(p, ctx),
  steer: (p, ctx) => engine.steer(p, ctx),
  internalize: (p, ctx) => engine.internalize(p, ctx),
  rerankSet: (p, ctx) => engine.rerankSet(p, ctx),
  rerank: (p) => engine.rerank(p),
  steeringBasis: (p) => engine.steeringBasis(p),
  featureInfo: (p, ctx) => engine.featureInfo(p, ctx),
  contrast: (p, ctx) => engine.contrast(p, ctx),
  dropSet: (p) => engine.dropSet(p),
  trainBundle: (p, ctx) => engine.trainBundle(p, ctx),
  patch: (p, ctx) => engine.patch(p, ctx),
  layers: (p, ctx) => engine.layers(p, ctx),
  modulate: (p, ctx) => engine.modulate(p, ctx),
  trainAdapter: (p, ctx) => trainAdapterInWorker(p, ctx),
  crash: (p) => process.exit(p.code ?? 70),
  hang: (p) => {
    // blocks the main thread, as a runaway loop would: the heartbeat thread goes on
    const until = Date.now() + p.ms;
    while (Date.now() < until) {
      /* busy */
    }
    return { hung: p.ms };
  },
  sleep: async (p, ctx) => {
    const step = 20;
    for (let t = 0; t < p.ms; t += step) {
      if (ctx.signal.aborted) throw Object.assign(new Error('cancelled'), { code: 'E_CANCELLED' });
      ctx.progress({ phase: 'sleep', done: t, total: p.ms });
      await new Promise((r) => setTimeout(r, step));
    }
    return { slept: p.ms };
  },
};

function dispatch(req: RequestMessage, ctx: CallContext): Promise<unknown> {
  // The request's method and params agree (RequestMessage is a union over methods); TypeScript cannot follow that through an index.
  const handler = handlers[req.method] as (params: unknown, ctx: CallContext) => unknown;
  return Promise.resolve().then(() => handler(req.params, ctx));
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
    send({ kind: 'result', id: req.id, result, meta: meta(started, precisionOf(req)) });
  } catch (e) {
    const err = toWire(e);
    if (ac.signal.aborted) err.code = 'E_CANCELLED';
    send({ kind: 'error', id: req.id, error: err, meta: meta(started, precisionOf(req)) });
  } finally {
    inFlight.delete(req.id);
  }
}

process.on('message', (m: unknown) => {
  if (!isToWorker(m)) return;
  if (m.kind === 'cancel') inFlight.get(m.id)?.abort();
  else void handle(m);
});

/** Cancels every request in flight; each still answers (a pull removes its staging folder first). */
function cancelAll(): Promise<unknown> {
  const all = [...inFlight.values()];
  for (const ac of all) ac.abort();
  return waitIdle();
}

function waitIdle(): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (inFlight.size === 0 ? resolve() : setTimeout(check, 20));
    check();
  });
}

// The caller going away must not leave an orphan holding a model in memory.
// Requests in flight are cancelled and get a moment to clean up (a pull's
// staging folder), as does background work (a graph being saved to the
// cache), well inside the client's 2 s before SIGKILL.
let exiting = false;
const exitSoon = (): void => {
  if (exiting) return;
  exiting = true;
  const deadline = new Promise((r) => setTimeout(r, 1500).unref());
  void Promise.race([Promise.all([cancelAll(), settleBackground(1500)]), deadline]).then(() => process.exit(0));
};
process.on('disconnect', exitSoon);
process.on('SIGTERM', exitSoon);
// Ctrl-C in a terminal reaches the whole process group, the worker too: it
// cancels the work in flight (cleanly, staging removed) and leaves ending the
// worker to the caller, which got the same Ctrl-C.
process.on('SIGINT', () => void cancelAll());

send({ kind: 'ready', protocolVersion: PROTOCOL_VERSION, pid: process.pid });
