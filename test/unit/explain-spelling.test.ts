import * as assert from 'assert';
import { detectSpelling, detectWordPiece, firstWord, firstWordPrefixCounts, spellingLabel, spellingPieceOf } from '../../src/core/explain/spelling';
import { isGrounded } from '../../src/core/explain/grounding';
import { termSet } from '../../src/core/explain/labels';

// a background of first words spread over the alphabet, as a dictionary's headwords are
const letters = 'abcdefghijklmnopqrstuvwxyz';
const background = firstWordPrefixCounts(Array.from({ length: 2600 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}x${i}: a word`));

describe('explain/spelling (word-piece features)', () => {
  it('a label names its piece and parses back; other labels are not pieces', () => {
    assert.strictEqual(spellingLabel('mo'), 'word piece "mo-"');
    assert.deepStrictEqual(spellingPieceOf(spellingLabel('auto')), { piece: 'auto', at: 'start' });
    assert.strictEqual(spellingPieceOf('mop'), undefined);
    assert.strictEqual(spellingPieceOf('word piece'), undefined);
    assert.strictEqual(spellingLabel('x', 'end'), 'word piece "-x"');
    assert.deepStrictEqual(spellingPieceOf('word piece "-x"'), { piece: 'x', at: 'end' });
    assert.deepStrictEqual(spellingPieceOf('word piece "mo-"'), { piece: 'mo', at: 'start' });
    assert.strictEqual(spellingPieceOf('word piece "-x"')?.at, 'end', 'an end piece is no prefix');
    assert.strictEqual(spellingPieceOf('word piece "-mo-"'), undefined);
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

  it('headwords that share only their last piece make an end-piece feature, named by the longest shared ending', () => {
    // the strongest texts of a feature the software docs had named "ctx"
    const texts = ['Manx cat: A breed of domestic cats.', 'lox', 'RUNX1 is downregulated in T-ALL.', 'Vex: To make angry.', 'RUNX is not expressed in skin.', 'Flax: a plant.', 'Hoax: a trick.', 'Annex: to add.', 'Lynx: a wild cat.', 'Sphinx: a monster.'];
    const strongest = texts.map((t, i) => t.replace(/[.:]/, ` ${i}$&`));
    // background first words end in "x" about as often as dictionary headwords do (0.3%)
    const bg = firstWordPrefixCounts([...Array.from({ length: 2600 }, (_, i) => `${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}e${i}: a word`), ...Array.from({ length: 8 }, (_, i) => `box${i}: a word`)]);
    assert.deepStrictEqual(detectWordPiece(strongest, bg), { piece: 'x', at: 'end' });
    // "-nx" ends only 3 of the 10 (manx, lynx, sphinx): the longest ending most of them share is "-x"
    assert.strictEqual(detectSpelling(strongest, bg), undefined, 'no shared first piece');
    // a start piece wins when both hold
    const mo = ['Motty: x', 'Molt: x', 'Moot: x', 'Mox: x', 'Motile: x', 'Mojo: x', 'Mold: x', 'Mope: x', 'Moss: x', 'Moan: x'].map((t, i) => `${t} ${i}`);
    assert.deepStrictEqual(detectWordPiece(mo, bg), { piece: 'mo', at: 'start' });
  });

  it('no end piece when the ending is common among headwords, when a word is common to the texts, or with few texts', () => {
    const ion = ['Motion: x', 'Nation: y', 'Lotion: z', 'Potion: a', 'Ration: b', 'Station: c', 'Action: d', 'Fiction: e', 'Notion: f', 'Option: g'];
    // a fifth of the background ends in "-tion": no share of the texts reaches 10 × 0.2
    const bg = firstWordPrefixCounts(Array.from({ length: 1000 }, (_, i) => (i % 5 === 0 ? `xmotion${i}` : `${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}e${i}`) + ': a word'));
    assert.strictEqual(detectWordPiece(ion, bg), undefined);
    const lynx = Array.from({ length: 10 }, (_, i) => `${['Manx', 'Lynx', 'Flax'][i % 3]}: the cat ${i}`);
    assert.strictEqual(detectWordPiece(lynx, background), undefined, '"cat" is in every text');
    assert.strictEqual(detectWordPiece(['Manx: a', 'Lox: b', 'Vex: c'], background), undefined);
  });

  it('an end-piece label is grounded by a longer word ending with the piece, by nothing else', () => {
    const label = spellingLabel('x', 'end');
    assert.ok(isGrounded(label, termSet('The difference between a lynx and a bobcat')));
    assert.ok(!isGrounded(label, termSet('an axe on the table')), 'a word holding the piece elsewhere');
    assert.ok(!isGrounded(label, termSet('plain text')));
  });
});
