/**
 * One encoder lane: a worker thread with its own onnxruntime session of the
 * encoder graph, running the batches its encoder hands it (protocol/lane.ts).
 * Its own entry point (dist/lane.js), started by encoderLanes.ts.
 */
import * as ort from 'onnxruntime-node';
import { parentPort, workerData } from 'worker_threads';
import type { LaneData, LaneReply, LaneRequest } from '../protocol/lane';
import { sessionOptions } from './sessionOptions';

const port = parentPort;
if (port) {
  const data = workerData as LaneData;
  const send = (m: LaneReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const ready = ort.InferenceSession.create(data.graph, sessionOptions('cpu', data.threads));
  ready.then(
    () => {
      // the session holds the weights now: the graph's bytes can go
      data.graph = new Uint8Array(0);
      send({ type: 'ready' });
    },
    (e: unknown) => send({ type: 'failed', message: e instanceof Error ? e.message : String(e) }),
  );
  // one message at a time: a release waits for the run before it, and no run starts on a released session
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (m: LaneRequest) => {
    queue = queue.then(async () => {
      const session = await ready.catch(() => undefined);
      if (m.type === 'release') {
        await session?.release().catch(() => undefined);
        send({ type: 'released' });
        return;
      }
      if (!session) return send({ type: 'error', id: m.id, message: 'the lane has no session' });
      try {
        const feeds = {
          input_ids: new ort.Tensor('int64', m.inputIds, [m.batch, m.seq]),
          attention_mask: new ort.Tensor('int64', m.attentionMask, [m.batch, m.seq]),
        };
        const out = await session.run(feeds, m.fetches);
        const outputs: Record<string, Float32Array> = {};
        for (const name of m.fetches) outputs[name] = (out[name].data as Float32Array).slice();
        for (const t of Object.values(out)) t.dispose?.();
        send({ type: 'result', id: m.id, outputs }, Object.values(outputs).map((a) => a.buffer as ArrayBuffer));
      } catch (e) {
        send({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
      }
    });
  });
}
