import * as assert from 'assert';
import { detectSpelling, firstWord, firstWordPrefixCounts, spellingLabel, spellingPrefixOf } from '../../src/core/explain/spelling';
import { isGrounded } from '../../src/core/explain/grounding';
import { termSet } from '../../src/core/explain/labels';

// a background of first words spread over the alphabet, as a dictionary's headwords are
const letters = 'abcdefghijklmnopqrstuvwxyz';
const background = firstWordPrefixCounts(Array.from({ length: 2600 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}x${i}: a word`));

describe('explain/spelling (word-piece features)', () => {
  it('a label names its piece and parses back; other labels are not pieces', () => {
    assert.strictEqual(spellingLabel('mo'), 'word piece "mo-"');
    assert.strictEqual(spellingPrefixOf(spellingLabel('auto')), 'auto');
    assert.strictEqual(spellingPrefixOf('mop'), undefined);
    assert.strictEqual(spellingPrefixOf('word piece'), undefined);
  });

  it('first words: lower-cased letters, accents folded, none under two letters', () => {
    assert.strictEqual(firstWord('Motty: Full of motes.'), 'motty');
    assert.strictEqual(firstWord('  Émeute: a riot'), 'emeute');
    assert.strictEqual(firstWord('A: the first letter'), undefined);
    assert.strictEqual(firstWord('42'), undefined);
  });

  it('headwords that share only a piece make a word-piece feature', () => {
    const texts = ['Motty: Full of, or consisting of, motes.', 'Molt: The act of changing feathers.', 'Moot: Of purely theoretical interest.', 'MO: abbreviation for modus operandi.', 'Motile: Exhibiting spontaneous movement.'];
    const strongest = Array.from({ length: 20 }, (_, i) => texts[i % texts.length].replace(':', ` ${i}:`));
    assert.strictEqual(detectSpelling(strongest, background), 'mo');
  });

  it('the longest shared piece is named', () => {
    const strongest = ['Automatic: self-acting', 'Automatism: a state', 'Autocracy: power', 'Autotype: a picture', 'autophagy', 'Autograph: a signature', 'Automaton: a machine', 'Autonomy: self rule', 'Autumn: a season', 'Autopsy: an examination'];
    assert.strictEqual(detectSpelling(strongest, background), 'auto');
  });

  it('no piece when a word is common to the texts (a word\'s feature), when the piece is common anyway, or with few texts', () => {
    const five = ['five, 5: one more than four', 'fifth: five notes away', 'fifthly: in the fifth place', 'take five: a break of five minutes', 'fivepence: a coin worth five cents', 'five-fold: five times', 'fiver: a five pound note', 'five-sided: with five sides', 'fifteen: ten and five', 'fifty: five tens'];
    assert.strictEqual(detectSpelling(five, background), undefined);
    // every background first word starts with "ab…" as these do: no lift
    const common = firstWordPrefixCounts(Array.from({ length: 100 }, (_, i) => `abx${i}: text`));
    const ab = Array.from({ length: 10 }, (_, i) => `Ab${letters[i]}${letters[i]}: thing ${i}`);
    assert.strictEqual(detectSpelling(ab, common), undefined);
    assert.strictEqual(detectSpelling(ab.slice(0, 5), background), undefined);
  });

  it('a word-piece label is grounded by a word starting with the piece, by nothing else', () => {
    const label = spellingLabel('mo');
    assert.ok(isGrounded(label, termSet('Upregulation of mosGCTL-1 upon infection')));
    assert.ok(!isGrounded(label, termSet('a word piece of the word')));
    // a word starting with the piece, not one holding it
    assert.ok(!isGrounded(label, termSet('an amoeba')));
  });
});
