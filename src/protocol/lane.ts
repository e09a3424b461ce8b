/**
 * The protocol between an encoder and its lanes: worker threads of the engine
 * worker that each hold an onnxruntime session of the same graph and run the
 * batches handed to them (src/engine/encoderLanes.ts, src/engine/lane.ts).
 * Both sides import this module.
 *
 * Flow: the lane starts with `LaneData`, builds its session and sends `ready`
 * (or `failed`); then each `run` is answered by one `result` or `error` with
 * the same id; `release` frees the session and is answered by `released`.
 */

export interface LaneData {
  /** the ONNX graph (a copy per lane) */
  graph: Uint8Array;
  /** onnxruntime intra-op threads of this lane's session */
  threads: number;
}

export interface LaneRun {
  type: 'run';
  id: number;
  /** int64 [batch, seq] */
  inputIds: BigInt64Array;
  /** int64 [batch, seq] */
  attentionMask: BigInt64Array;
  batch: number;
  seq: number;
  /** float32 outputs to fetch, by name */
  fetches: string[];
}

export type LaneRequest = LaneRun | { type: 'release' };

export type LaneReply =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, Float32Array> }
  | { type: 'error'; id: number; message: string }
  | { type: 'released' };
