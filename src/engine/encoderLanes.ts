/**
 * How an encoder runs its batches: one onnxruntime session in this thread, or
 * encoder lanes, worker threads that each hold a session of the same graph
 * with a share of the cores and run batches side by side.
 *
 * Why lanes, for int8: onnxruntime spreads one batch over all its threads and
 * waits for the slowest at every operator, and the int8 graph has many small
 * ones (per-token quantization, reductions) that gain little from a second
 * thread. Two sessions of one thread each, on different batches, encode int8
 * about 8% faster on two cores (the encoder bench: 84.3 against 78.3 texts/s),
 * and leave the calling thread free while they run. fp32's large matrix products already use the cores well: lanes made
 * it about 5% slower there, so fp32 keeps one session. Each lane holds its own
 * session: about 150 MB more for int8.
 */
import * as ort from 'onnxruntime-node';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { ModelError } from '../core/errors';
import type { LaneData, LaneReply, LaneRequest, LaneRun } from '../protocol/lane';
import type { ExecutionProvider, Precision } from '../protocol/worker';
import { sessionOptions } from './sessionOptions';

export interface BatchInput {
  /** int64 [batch, seq] */
  inputIds: BigInt64Array;
  /** int64 [batch, seq] */
  attentionMask: BigInt64Array;
  batch: number;
  seq: number;
}

/** Runs the encoder graph on batches. */
export interface BatchRunner {
  /** how many batches to keep in flight: 1 runs them one after the other */
  readonly parallel: number;
  /** how the batches run, for messages: "1 session" or "2 lanes × 1 thread" */
  readonly description: string;
  run(input: BatchInput, fetches: string[]): Promise<Record<string, Float32Array>>;
  /** true once a lane thread died: every later run fails, so the owner replaces this runner */
  readonly broken: boolean;
  release(): Promise<void>;
}

/** One session in this thread; `run` blocks it while onnxruntime computes. */
export class SessionRunner implements BatchRunner {
  readonly parallel = 1;
  readonly description: string;
  readonly broken = false;
  /** `note`: why there are no lanes where some were planned */
  constructor(
    private readonly session: ort.InferenceSession,
    note?: string,
  ) {
    this.description = note ? `1 session (${note})` : '1 session';
  }

  async run(input: BatchInput, fetches: string[]): Promise<Record<string, Float32Array>> {
    const out = await this.session.run(
      {
        input_ids: new ort.Tensor('int64', input.inputIds, [input.batch, input.seq]),
        attention_mask: new ort.Tensor('int64', input.attentionMask, [input.batch, input.seq]),
      },
      fetches,
    );
    const r: Record<string, Float32Array> = {};
    for (const name of fetches) r[name] = out[name].data as Float32Array;
    return r;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export interface LanePlan {
  lanes: number;
  threadsPerLane: number;
}

/**
 * Lanes for a run. `lanes` 'auto': two for int8 on a CPU with at least two
 * cores (or two threads asked for), each with half of them, and none
 * otherwise; a number: that many. Never off the CPU. `threads` is the
 * intra-op threads asked for in all (0 or undefined: every core). No lanes
 * means one session in the calling thread.
 */
export function planLanes(provider: ExecutionProvider, precision: Precision, threads: number | undefined, lanes: 'auto' | number, cores = availableCores()): LanePlan {
  const total = threads && threads > 0 ? threads : cores;
  const n = provider !== 'cpu' ? 1 : lanes === 'auto' ? (precision === 'int8' && total >= 2 ? 2 : 1) : Math.max(1, Math.floor(lanes));
  if (n === 1) return { lanes: 1, threadsPerLane: threads && threads > 0 ? threads : 0 };
  return { lanes: n, threadsPerLane: Math.max(1, Math.floor(total / n)) };
}

export function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

interface Job {
  msg: LaneRun;
  resolve: (out: Record<string, Float32Array>) => void;
  reject: (e: Error) => void;
}

interface Lane {
  worker: Worker;
  job?: Job;
  exited?: boolean;
}

/** The lane thread's script: dist/lane.js next to the bundle, or lane.js next to this file when compiled by tsc. */
export function laneScript(): string {
  return path.join(__dirname, 'lane.js');
}

export class EncoderLanes implements BatchRunner {
  readonly parallel: number;
  readonly description: string;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private failure?: Error;
  private released = false;

  private constructor(
    private readonly lanes: Lane[],
    threadsPerLane: number,
  ) {
    // two batches per lane in flight: a lane that finishes finds the next one waiting
    this.parallel = 2 * lanes.length;
    this.description = `${lanes.length} lanes × ${threadsPerLane} thread${threadsPerLane === 1 ? '' : 's'}`;
  }

  /** Starts `lanes` threads, each building a session of `graph`; resolves once every one is ready. */
  static async start(graph: Uint8Array, plan: LanePlan, name = 'encoder', script = laneScript()): Promise<EncoderLanes> {
    const lanes: Lane[] = [];
    const started: Promise<void>[] = [];
    try {
      for (let i = 0; i < plan.lanes; i++) {
        const data: LaneData = { graph, threads: plan.threadsPerLane };
        let worker: Worker;
        try {
          worker = new Worker(script, { workerData: data });
        } catch (e) {
          throw new ModelError(`${name}: an encoder lane failed to start: ${(e as Error).message}`, 'E_MODEL');
        }
        lanes.push({ worker });
        const ready = new Promise<void>((resolve, reject) => {
          const onMessage = (m: LaneReply) => {
            worker.off('error', onError);
            worker.off('exit', onExit);
            if (m.type === 'ready') resolve();
            else reject(new ModelError(`${name}: an encoder lane could not load the graph: ${m.type === 'failed' ? m.message : m.type}`, 'E_MODEL'));
          };
          const onError = (e: Error) => reject(new ModelError(`${name}: an encoder lane failed to start: ${e.message}`, 'E_MODEL'));
          const onExit = (code: number) => reject(new ModelError(`${name}: an encoder lane exited while starting (code ${code})`, 'E_MODEL'));
          worker.once('message', onMessage);
          worker.once('error', onError);
          worker.once('exit', onExit);
        });
        ready.catch(() => undefined); // awaited below; a lane failing while a later one is still being made is not unhandled
        started.push(ready);
      }
      await Promise.all(started);
    } catch (e) {
      // no lane is left running when the pool does not start; each is stopped
      // once its session is built or failed (ending a thread inside an
      // onnxruntime call can abort the whole process)
      await Promise.allSettled(started);
      await Promise.all(lanes.map((l) => l.worker.terminate()));
      throw e;
    }
    const pool = new EncoderLanes(lanes, plan.threadsPerLane);
    for (const lane of lanes) pool.attach(lane);
    return pool;
  }

  private attach(lane: Lane): void {
    // an idle lane does not keep the process alive; one with a batch does
    lane.worker.unref();
    lane.worker.on('message', (m: LaneReply) => {
      if (m.type !== 'result' && m.type !== 'error') return;
      const job = lane.job;
      if (!job || job.msg.id !== m.id) return;
      lane.job = undefined;
      lane.worker.unref();
      if (m.type === 'result') job.resolve(m.outputs);
      else job.reject(new ModelError(`encoder lane: ${m.message}`, 'E_MODEL'));
      this.dispatch();
    });
    const fail = (why: string) => {
      if (this.released) return;
      this.failure ??= new ModelError(`an encoder lane stopped (${why}); the encoder is rebuilt for the next request`, 'E_MODEL');
      const pending = [...(lane.job ? [lane.job] : []), ...this.queue.splice(0)];
      lane.job = undefined;
      for (const j of pending) j.reject(this.failure);
    };
    lane.worker.on('error', (e) => fail(e.message));
    lane.worker.on('exit', (code) => {
      lane.exited = true;
      fail(`exit code ${code}`);
    });
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  run(input: BatchInput, fetches: string[]): Promise<Record<string, Float32Array>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.released) return Promise.reject(new ModelError('the encoder was released', 'E_MODEL'));
    return new Promise((resolve, reject) => {
      this.queue.push({ msg: { type: 'run', id: this.nextId++, ...input, fetches }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const lane of this.lanes) {
      if (lane.job || !this.queue.length) continue;
      const job = this.queue.shift() as Job;
      lane.job = job;
      lane.worker.ref();
      const req: LaneRequest = job.msg;
      // the inputs were built for this batch alone: moved, not copied
      lane.worker.postMessage(req, [job.msg.inputIds.buffer as ArrayBuffer, job.msg.attentionMask.buffer as ArrayBuffer]);
    }
  }

  /** Frees the lanes' sessions, each after the batch it is running, then ends their threads. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const err = new ModelError('the encoder was released', 'E_MODEL');
    for (const j of this.queue.splice(0)) j.reject(err);
    await Promise.all(
      this.lanes.map(async (lane) => {
        if (lane.exited) return;
        const done = new Promise<void>((resolve) => {
          const onMessage = (m: LaneReply) => m.type === 'released' && resolve();
          lane.worker.on('message', onMessage);
          lane.worker.once('exit', () => resolve());
        });
        lane.worker.ref();
        lane.worker.postMessage({ type: 'release' } satisfies LaneRequest);
        await done;
        await lane.worker.terminate();
      }),
    );
  }
}

/**
 * The runner `plan` asks for. Lanes that cannot start (no thread, no lane
 * script) leave one session in this thread instead, slower but working, and
 * say so in its description; a graph no session can load still throws.
 */
export async function startRunner(graph: Uint8Array, plan: LanePlan, provider: ExecutionProvider, threads: number | undefined, name: string, script?: string): Promise<BatchRunner> {
  let note: string | undefined;
  if (plan.lanes > 1) {
    try {
      return await EncoderLanes.start(graph, plan, name, script);
    } catch (e) {
      note = `encoder lanes could not start: ${(e as Error).message}`;
      // the worker's stderr: the editor's output channel, the CLI's log kept for errors
      console.warn(`${note}; encoding in one session instead`);
    }
  }
  return new SessionRunner(await ort.InferenceSession.create(graph, sessionOptions(provider, threads)), note);
}
