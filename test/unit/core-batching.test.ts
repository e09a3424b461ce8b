import * as assert from 'assert';
import { batchSizes } from '../../src/core/batching';

describe('core/batching', () => {
  it('without a budget: batches of batchSize, the last one shorter', () => {
    assert.deepEqual(batchSizes([9, 8, 7, 6, 5], 2), [2, 2, 1]);
    assert.deepEqual(batchSizes([], 32), []);
  });

  it('with a budget: long texts in small batches, short ones in large ones, never above batchSize', () => {
    // 1,000 tokens at most per batch: 256-token texts go 3 at a time, 20-token ones up to batchSize
    const lengths = [256, 256, 256, 256, 120, 20, 20, 20, 20, 20];
    assert.deepEqual(batchSizes(lengths, 32, 1000), [3, 3, 4]);
    assert.deepEqual(batchSizes(lengths, 2, 1000), [2, 2, 2, 2, 2]);
    // the sizes cover every text once
    assert.equal(batchSizes(lengths, 32, 1000).reduce((a, b) => a + b, 0), lengths.length);
  });

  it('a text longer than the budget still goes, alone', () => {
    assert.deepEqual(batchSizes([600, 500, 10], 32, 512), [1, 1, 1]);
  });
});
