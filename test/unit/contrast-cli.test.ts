import * as assert from 'assert';
import { groupPairs } from '../../src/cli/contrast';

describe('cli/contrast', () => {
  it('groups pair lines by query in order of first appearance, wherever the lines are', () => {
    const p = (query_id: string, doc_id: string, label?: number) => ({ query_id, doc_id, query: `q ${query_id}`, doc: `d ${doc_id}`, ...(label !== undefined ? { label } : {}) });
    const g = groupPairs([p('b', '1', 0), p('a', '2', 1), p('b', '3', 1), p('a', '4')]);
    assert.deepStrictEqual(g, [
      { query_id: 'b', query: 'q b', candidates: [{ doc_id: '1', doc: 'd 1', label: 0 }, { doc_id: '3', doc: 'd 3', label: 1 }] },
      { query_id: 'a', query: 'q a', candidates: [{ doc_id: '2', doc: 'd 2', label: 1 }, { doc_id: '4', doc: 'd 4' }] },
    ]);
  });
});
