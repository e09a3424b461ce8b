/**
 * Encoder lanes with the real all-MiniLM-L6-v2: the same vectors as one
 * session in the calling thread, cancellation, release, and a graph a lane
 * cannot load.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CancelledError, ModelError } from '../../src/core/errors';
import type { Worker } from 'worker_threads';
import { Encoder } from '../../src/engine/encoder';
import { availableCores, EncoderLanes, startRunner } from '../../src/engine/encoderLanes';
import { readCheckpointSpec } from '../../src/engine/bert/config';
import { buildBertGraph } from '../../src/engine/bert/graph';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { Engine } from '../../src/engine/engine';
import { FIXTURES, minilm, testCacheDir } from './helpers';

/** A lane's thread, reached past the encoder's private fields: the tests kill one as a crash would. */
function laneThread(enc: Encoder, i: number): Worker {
  return (enc as unknown as { runner: { lanes: { worker: Worker }[] } }).runner.lanes[i].worker;
}

const texts: string[] = fs
  .readFileSync(path.join(FIXTURES, 'parity', 'texts.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { text: string }).text);

describe('encoder lanes (real all-MiniLM-L6-v2)', function () {
  this.timeout(600_000);
  let dir: string;
  before(async () => {
    dir = (await minilm()).dir;
  });

  for (const precision of ['fp32', 'int8'] as const) {
    it(`${precision}: two lanes give bit for bit the vectors of one session, in input order, with progress per batch`, async () => {
      const one = await Encoder.load(dir, { provider: 'cpu', precision });
      const two = await Encoder.load(dir, { provider: 'cpu', precision, lanes: 2 });
      try {
        assert.strictEqual(one.runs, '1 session');
        assert.strictEqual(two.runs, '2 lanes × 1 thread');
        const a = await one.encode(texts, { kind: 'document' });
        const seen: number[] = [];
        const b = await two.encode(texts, { kind: 'document', onBatch: (done, total) => seen.push(done / total) });
        assert.deepStrictEqual(b.embeddings, a.embeddings);
        assert.deepStrictEqual(b.truncated, a.truncated);
        assert.deepStrictEqual(b.tokenCounts, a.tokenCounts);
        assert.ok(seen.length > 1 && seen.every((x, i) => i === 0 || x > seen[i - 1]), `progress ${seen}`);
        assert.strictEqual(seen[seen.length - 1], 1);
        // per-layer tools go through the lanes too
        const h1 = await one.hiddenStates(texts[0], 'query');
        const h2 = await two.hiddenStates(texts[0], 'query');
        assert.deepStrictEqual(h2.layers, h1.layers);
      } finally {
        await Promise.all([one.release(), two.release()]);
      }
    });
  }

  it('a cancelled encode stops handing out batches and throws CancelledError; the lanes keep working', async () => {
    const enc = await Encoder.load(dir, { provider: 'cpu', precision: 'int8', lanes: 2 });
    try {
      const ac = new AbortController();
      let batches = 0;
      await assert.rejects(
        enc.encode(texts, {
          kind: 'document',
          batchSize: 4,
          signal: ac.signal,
          onBatch: () => {
            if (++batches === 2) ac.abort();
          },
        }),
        CancelledError,
      );
      assert.ok(batches < texts.length / 4, `${batches} batches ran after the abort`);
      const r = await enc.encode(texts.slice(0, 3), { kind: 'query' });
      assert.strictEqual(r.embeddings.length, 3 * 384);
    } finally {
      await enc.release();
    }
  });

  it('after release, a run is refused with a clear error', async () => {
    const enc = await Encoder.load(dir, { provider: 'cpu', precision: 'int8', lanes: 2 });
    await enc.release();
    await assert.rejects(enc.encode(['x'], { kind: 'query' }), (e: unknown) => e instanceof ModelError && /released/.test(e.message));
  });

  it('a lane thread that dies with a batch in it: that encode and the ones queued fail with a clear error, the pool says it is broken, release completes', async () => {
    // a stand-in lane that loads nothing and exits on its first batch, as a crash would (killing a real lane inside onnxruntime aborts the process)
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xetrieval-lane-')), 'dies.js');
    fs.writeFileSync(script, "const { parentPort } = require('worker_threads'); parentPort.postMessage({ type: 'ready' }); parentPort.on('message', (m) => { if (m.type === 'run') process.exit(3); });");
    const pool = await EncoderLanes.start(new Uint8Array(0), { lanes: 1, threadsPerLane: 1 }, 'all-MiniLM-L6-v2', script);
    const seq = 2;
    const batch = () => pool.run({ inputIds: new BigInt64Array(seq), attentionMask: new BigInt64Array(seq).fill(1n), batch: 1, seq }, ['sentence_embedding']);
    const [first, queued] = [batch(), batch()];
    const stopped = (e: unknown) => e instanceof ModelError && /an encoder lane stopped \(exit code 3\); the encoder is rebuilt for the next request/.test(e.message);
    await assert.rejects(first, stopped);
    await assert.rejects(queued, stopped);
    assert.strictEqual(pool.broken, true);
    await assert.rejects(batch(), stopped);
    await pool.release();
  });

  it('a lane thread that died while idle: the next encode fails with a clear error and the encoder says it is broken', async () => {
    const enc = await Encoder.load(dir, { provider: 'cpu', precision: 'int8', lanes: 2 });
    try {
      await enc.encode(texts.slice(0, 4), { kind: 'document' });
      assert.strictEqual(enc.broken, false);
      await laneThread(enc, 1).terminate();
      assert.strictEqual(enc.broken, true);
      await assert.rejects(enc.encode(['x'], { kind: 'query' }), (e: unknown) => e instanceof ModelError && /an encoder lane stopped \(exit code 1\)/.test(e.message));
    } finally {
      await enc.release();
    }
  });

  it('the engine replaces an int8 encoder whose lane died: the next request is answered', async function () {
    // the engine runs int8 in lanes only where there are two cores
    if (availableCores() < 2) this.skip();
    const engine = new Engine();
    await engine.init('cpu');
    const ctx = { signal: new AbortController().signal, progress: () => undefined };
    const ref = { model: 'all-MiniLM-L6-v2', cacheDir: testCacheDir(), precision: 'int8' as const };
    const encoders = (engine as unknown as { encoders: Map<string, Promise<{ encoder: Encoder }>> }).encoders;
    try {
      const first = await engine.embed({ ref, texts: texts.slice(0, 8), kind: 'document' }, ctx);
      const [held] = [...encoders.values()];
      const enc = (await held).encoder;
      assert.strictEqual(enc.runs, '2 lanes × 1 thread');
      await laneThread(enc, 0).terminate();
      assert.strictEqual(enc.broken, true);
      const again = await engine.embed({ ref, texts: texts.slice(0, 8), kind: 'document' }, ctx);
      assert.deepStrictEqual(again.embeddings, first.embeddings);
      const [now] = [...encoders.values()];
      assert.notStrictEqual((await now).encoder, enc);
    } finally {
      for (const p of encoders.values()) await (await p).encoder.release();
    }
  });

  it('lanes that cannot start (here: no lane script) leave one working session that says why; a graph no session loads still throws', async () => {
    const graph = buildBertGraph(readCheckpointSpec(dir), SafetensorsFile.open(path.join(dir, 'model.safetensors')), { precision: 'int8' });
    const missing = path.join(testCacheDir(), 'no-such-lane.js');
    const r = await startRunner(graph, { lanes: 2, threadsPerLane: 1 }, 'cpu', undefined, 'all-MiniLM-L6-v2', missing);
    try {
      assert.match(r.description, /^1 session \(encoder lanes could not start: all-MiniLM-L6-v2: an encoder lane failed to start: .*no-such-lane\.js/);
      const seq = 4;
      const out = await r.run({ inputIds: BigInt64Array.from([101n, 7592n, 2088n, 102n]), attentionMask: new BigInt64Array(seq).fill(1n), batch: 1, seq }, ['sentence_embedding']);
      assert.strictEqual(out.sentence_embedding.length, 384);
    } finally {
      await r.release();
    }
    await assert.rejects(startRunner(new Uint8Array([1, 2, 3]), { lanes: 2, threadsPerLane: 1 }, 'cpu', undefined, 'x', missing));
  });

  it('a graph a lane cannot load: ModelError naming the model', async () => {
    await assert.rejects(EncoderLanes.start(new Uint8Array([1, 2, 3, 4]), { lanes: 2, threadsPerLane: 1 }, 'broken-model'), (e: unknown) => e instanceof ModelError && /broken-model: an encoder lane could not load the graph/.test(e.message));
  });
});
