import * as assert from 'assert';
import { sentences } from '../../src/core/sentences';

describe('core/sentences', () => {
  it('splits at sentence ends, joins abbreviation cuts and short pieces', () => {
    const text = 'Ice is less dense (e.g. about 0.92 g/cm3) than liquid water. Dr. Smith et al. showed this in a study in 1998! Why? Because water expands when it freezes.';
    assert.deepEqual(sentences(text), [
      'Ice is less dense (e.g. about 0.92 g/cm3) than liquid water.',
      'Dr. Smith et al. showed this in a study in 1998!',
      'Why? Because water expands when it freezes.',
    ]);
  });

  it('a short tail joins the sentence before; a short text alone gives nothing', () => {
    assert.deepEqual(sentences('The moon passes between the Earth and the Sun. It is dark.'), ['The moon passes between the Earth and the Sun. It is dark.']);
    assert.deepEqual(sentences('Too short.'), []);
    assert.deepEqual(sentences(''), []);
  });

  it('cuts a piece over maxWords into windows; a short last window joins the one before', () => {
    const long = Array.from({ length: 130 }, (_, i) => `w${i}`);
    const out = sentences(`${long.join(' ')}. A normal sentence with enough words here.`);
    assert.deepEqual(
      out.map((s) => s.split(' ').length),
      [64, 66, 7],
    );
    assert.equal(out.slice(0, 2).join(' '), long.join(' ') + '.');
    assert.deepEqual(sentences('One two three. Four five six.', { minWords: 3 }), ['One two three.', 'Four five six.']);
    assert.deepEqual(sentences('One two three four five. Six seven.', { minWords: 2, maxWords: 2 }), ['One two', 'three four five.', 'Six seven.']);
  });
});
