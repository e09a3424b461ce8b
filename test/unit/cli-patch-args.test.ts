import * as assert from 'assert';
import { parseGranularities, parseHeads } from '../../src/cli/program';
import { UsageError } from '../../src/cli/context';

describe('cli: patch arguments', () => {
  it('--granularity takes a comma-separated list of known granularities', () => {
    assert.deepStrictEqual(parseGranularities('block, heads'), ['block', 'heads']);
    assert.deepStrictEqual(parseGranularities('block-groups,heads-by-position'), ['block-groups', 'heads-by-position']);
    assert.throws(() => parseGranularities('block,neurons'), (e: unknown) => e instanceof UsageError && /--granularity/.test(e.message));
    assert.throws(() => parseGranularities(','), UsageError);
  });

  it('--heads takes layer.head pairs', () => {
    assert.deepStrictEqual(parseHeads('5.3, 0.11'), [
      { layer: 5, head: 3 },
      { layer: 0, head: 11 },
    ]);
    assert.throws(() => parseHeads('5'), (e: unknown) => e instanceof UsageError && /layer\.head/.test(e.message));
  });
});
