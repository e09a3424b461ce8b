import * as assert from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readCheckpointSpec } from '../../src/engine/bert/config';
import { buildBertGraph } from '../../src/engine/bert/graph';
import { GRAPH_FORMAT, graphKey, readCachedGraph, writeCachedGraph } from '../../src/engine/bert/graphCache';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { tempTinyBert } from '../integration/tinyBert';

describe('engine/bert graph cache', () => {
  let dir: string;
  let cacheDir: string;

  before(() => {
    dir = tempTinyBert('xetrieval-graph-');
    cacheDir = path.join(path.dirname(dir), 'graphs');
  });

  const build = () => {
    const spec = readCheckpointSpec(dir);
    return { spec, graph: buildBertGraph(spec, SafetensorsFile.open(path.join(dir, 'model.safetensors'))) };
  };

  it('the builder output is pinned to GRAPH_FORMAT', () => {
    // If this fails, buildBertGraph's output changed: bump GRAPH_FORMAT (so saved
    // graphs of the old builder are not reused) and record the new hash here.
    const sha = createHash('sha256').update(build().graph).digest('hex');
    assert.deepStrictEqual({ format: GRAPH_FORMAT, sha }, { format: 'xetrieval-bert-graph/1', sha: PINNED });
  });

  it('saves a graph, reads it back verified, and keys it by weights and spec', async () => {
    const { spec, graph } = build();
    const ref = { dir: cacheDir, name: 'tiny', weightsSha256: 'a'.repeat(64) };
    assert.strictEqual(readCachedGraph(ref, spec), undefined);
    await writeCachedGraph(ref, spec, graph);
    const got = readCachedGraph(ref, spec)!;
    assert.ok(Buffer.from(got.bytes).equals(Buffer.from(graph)));
    await got.verified;
    assert.strictEqual(readCachedGraph({ ...ref, weightsSha256: 'b'.repeat(64) }, spec), undefined, 'other weights, other key');
    assert.notStrictEqual(graphKey(spec, ref.weightsSha256), graphKey({ ...spec, maxTokens: spec.maxTokens - 1 }, ref.weightsSha256));
    assert.strictEqual(graphKey(spec, ref.weightsSha256), graphKey({ ...spec, dir: '/elsewhere' }, ref.weightsSha256), 'the folder is not part of the key');
    // a newer graph of the same model replaces the older one
    await writeCachedGraph({ ...ref, weightsSha256: 'c'.repeat(64) }, spec, graph);
    assert.strictEqual(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.onnx')).length, 1);
  });

  it('a saved graph changed on disk fails verification and is removed', async () => {
    const { spec, graph } = build();
    const ref = { dir: cacheDir, name: 'tiny', weightsSha256: 'd'.repeat(64) };
    await writeCachedGraph(ref, spec, graph);
    const file = fs.readdirSync(cacheDir).find((f) => f.endsWith('.onnx'))!;
    const bytes = fs.readFileSync(path.join(cacheDir, file));
    bytes[bytes.length - 5] ^= 0xff;
    fs.writeFileSync(path.join(cacheDir, file), bytes);
    await assert.rejects(readCachedGraph(ref, spec)!.verified, /does not match/);
    assert.deepStrictEqual(fs.readdirSync(cacheDir), []);
    assert.strictEqual(readCachedGraph(ref, spec), undefined);
  });
});

const PINNED = '898ee36d1bea1a20057560346a805e23ec21529dd5c2f57e34e37afce64feef3';
