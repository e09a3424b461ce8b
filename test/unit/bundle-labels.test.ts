import * as assert from 'assert';
import { LabelTable } from '../../src/engine/bundle';

describe('engine/bundle label table', () => {
  const line = (id: number, label: string) => JSON.stringify({ id, label, terms: label.split(', '), detection: 0.8, examples: [{ text: 'é ✓ ünïcode', activation: 0.5, source: 's' }] });

  it('finds labels by id without parsing the others, across blank lines and multi-byte text', () => {
    const text = [line(3, 'ice, water'), '', line(0, 'eclipse, moon'), line(12, 'vitamin, deficiency')].join('\n') + '\n';
    const t = new LabelTable('labels.jsonl', Buffer.from(text));
    assert.strictEqual(t.size, 3);
    assert.strictEqual(t.get(0)?.label, 'eclipse, moon');
    assert.strictEqual(t.get(12)?.examples[0].text, 'é ✓ ünïcode');
    assert.strictEqual(t.get(7), undefined);
    assert.deepStrictEqual([...t.values()].map((l) => l.id), [3, 0, 12]);
  });

  it('names file and line for a line without an id, and for broken JSON when it is read', () => {
    assert.throws(() => new LabelTable('b.jsonl', Buffer.from(`${line(1, 'a')}\n{"label":"x"}\n`)), /b\.jsonl:2: field "id"/);
    const t = new LabelTable('c.jsonl', Buffer.from(`${line(1, 'a')}\n{"id":2, oops\n`));
    assert.strictEqual(t.get(1)?.label, 'a');
    assert.throws(() => t.get(2), /c\.jsonl:2: not valid JSON/);
  });
});
