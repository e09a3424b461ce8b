import * as assert from 'assert';
import { planLanes } from '../../src/engine/encoderLanes';
import { encoderLanesSetting } from '../../src/engine/engine';

describe('encoder lanes: the plan', () => {
  it('auto: fp32 and fp16 keep one session', () => {
    assert.deepStrictEqual(planLanes('cpu', 'fp32', undefined, 'auto', 16), { lanes: 1, threadsPerLane: 0 });
    assert.deepStrictEqual(planLanes('cuda', 'fp16', undefined, 'auto', 16), { lanes: 1, threadsPerLane: 0 });
    assert.deepStrictEqual(planLanes('cpu', 'fp32', undefined, 2, 2), { lanes: 2, threadsPerLane: 1 });
  });

  it('auto: int8 in two lanes sharing the cores on a CPU with two or more', () => {
    assert.deepStrictEqual(planLanes('cpu', 'int8', undefined, 'auto', 2), { lanes: 2, threadsPerLane: 1 });
    assert.deepStrictEqual(planLanes('cpu', 'int8', 0, 'auto', 16), { lanes: 2, threadsPerLane: 8 });
    assert.deepStrictEqual(planLanes('cpu', 'int8', 5, 'auto', 16), { lanes: 2, threadsPerLane: 2 });
  });

  it('none (one session in the calling thread) with one core, one thread asked for, or on CUDA', () => {
    assert.deepStrictEqual(planLanes('cpu', 'int8', undefined, 'auto', 1), { lanes: 1, threadsPerLane: 0 });
    assert.deepStrictEqual(planLanes('cpu', 'int8', 1, 'auto', 8), { lanes: 1, threadsPerLane: 1 });
    assert.deepStrictEqual(planLanes('cuda', 'int8', undefined, 'auto', 8), { lanes: 1, threadsPerLane: 0 });
    assert.deepStrictEqual(planLanes('cuda', 'int8', undefined, 3, 8), { lanes: 1, threadsPerLane: 0 });
  });

  it('a number of lanes asked for, each with at least one thread', () => {
    assert.deepStrictEqual(planLanes('cpu', 'int8', undefined, 1, 8), { lanes: 1, threadsPerLane: 0 });
    assert.deepStrictEqual(planLanes('cpu', 'int8', undefined, 3, 8), { lanes: 3, threadsPerLane: 2 });
    assert.deepStrictEqual(planLanes('cpu', 'int8', undefined, 4, 2), { lanes: 4, threadsPerLane: 1 });
  });

  it('XETRIEVAL_ENCODER_LANES: a positive whole number, else auto', () => {
    assert.strictEqual(encoderLanesSetting({}), 'auto');
    assert.strictEqual(encoderLanesSetting({ XETRIEVAL_ENCODER_LANES: '1' }), 1);
    assert.strictEqual(encoderLanesSetting({ XETRIEVAL_ENCODER_LANES: '0' }), 'auto');
    assert.strictEqual(encoderLanesSetting({ XETRIEVAL_ENCODER_LANES: 'two' }), 'auto');
  });
});
