import * as assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { SparseCode, judgePrompt, labelExamples, labelPrompt, parseJudgement, parseLabel, verdictBalancedAccuracy } from '../../src/core/explain';
import { mulberry32 } from '../../src/core/explain/rng';
import { SaeEncoder } from '../../src/engine/explainer';
import { LLM_LABEL_METHOD, labelFeatures } from '../../src/engine/train/labelling';
import { llmLabeller } from '../../src/train/llmLabeller';
import { FakeLlm, Seen } from './helpers/fakeLlm';

// Three topics in a 3-d "embedding" (one axis each). The trained SAE's feature t fires on
// topic t; the random one's features fire on texts regardless of topic.
const TOPICS = [
  ['insulin', 'obese', 'glucose'],
  ['tumour', 'chemotherapy', 'cancer'],
  ['heart', 'failure', 'cardiac'],
];
const FILLER = 'study results patients group effect data method analysis level change'.split(' ');

function fakeSae(featureOf: (i: number) => number, activationOf: (i: number) => number): SaeEncoder {
  return {
    dim: 3,
    dictSize: 3,
    k: 1,
    wDec: new Float32Array(9),
    bDec: new Float32Array(3),
    async encode(_x: Float32Array, n: number): Promise<SparseCode[]> {
      return Array.from({ length: n }, (_, i) => ({ indices: Int32Array.of(featureOf(i)), values: Float32Array.of(activationOf(i)) }));
    },
  };
}

/** 600 toy texts of three topics; the trained SAE's feature t fires on topic t, the random one's at random. */
function toy() {
  const rng = mulberry32(9);
  const n = 600;
  const topic = Array.from({ length: n }, (_, i) => i % 3);
  const texts = topic.map((t, i) => {
    const words = [...Array.from({ length: 4 }, () => FILLER[Math.floor(rng() * FILLER.length)]), ...TOPICS[t].filter(() => rng() < 0.8)];
    return `${words.join(' ')} ${i}`;
  });
  const X = new Float32Array(n * 3);
  topic.forEach((t, i) => (X[i * 3 + t] = 1));
  const acts = Array.from({ length: n }, () => 0.5 + rng());
  const randomFeature = Array.from({ length: n }, () => Math.floor(rng() * 3));
  // a label's embedding: its topic words counted per axis (a filler-only label points nowhere in particular)
  const embedLabels = async (labels: string[]) => {
    const out = new Float32Array(labels.length * 3);
    labels.forEach((l, k) => {
      const v = [0.01, 0.01, 0.01];
      for (const w of l.split(/[ ,]+/)) TOPICS.forEach((ws, t) => ws.includes(w) && (v[t] += 1));
      const norm = Math.hypot(...v);
      v.forEach((x, d) => (out[k * 3 + d] = x / norm));
    });
    return out;
  };
  return {
    n,
    texts,
    X,
    embedLabels,
    trained: fakeSae((i) => topic[i], (i) => acts[i]),
    random: fakeSae((i) => randomFeature[i], (i) => acts[i]),
    sources: texts.map((_, i) => `toy:${i}`),
  };
}

/**
 * A loopback endpoint standing in for an LLM, deterministic: as explainer it
 * names the two topic words commonest in the examples (in a chatty "Label:"
 * format); as judge it calls a text active when it holds a word of the label.
 */
function toyLlmHandler(s: Seen, res: http.ServerResponse): void {
  const numbered = [...s.prompt.matchAll(/^\d+\. (?:\(activation (\d+)\) )?(.*)$/gm)].map((m) => m[2]);
  if (s.prompt.startsWith('You are interpreting')) {
    const counts = new Map<string, number>();
    for (const t of numbered) for (const w of t.split(' ')) if (TOPICS.flat().includes(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 2);
    return FakeLlm.answer(res, `Label: "${top.map((x) => x[0]).join(' ')}".`);
  }
  const label = s.prompt.split('\n')[1].replace(/"/g, '').split(' ');
  const verdicts = numbered.map((t) => (t.split(' ').some((w) => label.includes(w)) ? 1 : 0));
  FakeLlm.answer(res, '```json\n' + JSON.stringify(verdicts) + '\n```');
}

describe('train/labelling', () => {
  it('labels each feature with its topic from labelling texts; detection ≈ 1 for the trained SAE and ≈ 0.5 for the random one', async () => {
    const { n, texts, X, embedLabels, trained, random, sources } = toy();
    const seen: string[][] = [];
    const r = await labelFeatures(trained, random, X, texts, sources, { seed: 13, embedLabels: async (l) => (seen.push(l), embedLabels(l)) });
    assert.strictEqual(r.labeller, 'terms');
    assert.strictEqual(r.llm, undefined);
    assert.strictEqual(r.liveFeatures, 3);
    assert.strictEqual(r.labels.length, 3);
    for (const l of r.labels) {
      assert.ok(l.terms.length >= 2 && l.terms.every((w) => TOPICS[l.id].includes(w)), `feature ${l.id}: ${l.label}`);
      assert.strictEqual(l.examples.length, 5);
      assert.ok(l.detection !== null && l.detection > 0.95, `${l.detection}`);
    }
    assert.strictEqual(r.scored, 3);
    assert.ok(r.meanDetection > 0.95 && r.meanDetectionTerms > 0.9, `${r.meanDetection} ${r.meanDetectionTerms}`);
    assert.ok(Math.abs(r.meanDetectionRandom - 0.5) < 0.2 && Math.abs(r.meanDetectionTermsRandom - 0.5) < 0.2, `${r.meanDetectionRandom} ${r.meanDetectionTermsRandom}`);
    assert.ok(r.labellingTexts > 0.6 * n && r.labellingTexts < 0.73 * n, `${r.labellingTexts}`);
    assert.strictEqual(r.byDecile.trained.encoder.tpr.length, 10);
    assert.ok(r.byDecile.trained.encoder.tnr > 0.95);
    // the side-by-side sample: the same seeded draw from either SAE's labelled features
    assert.strictEqual(r.sample.trained.length, 3);
    assert.deepStrictEqual(
      r.sample.trained.map((x) => x.label),
      r.labels.map((l) => l.label),
    );
    assert.ok(r.sample.random.length > 0 && r.sample.random.every((x) => x.label.length > 0 && x.activeTexts > 0));
    assert.ok(r.labels.every((l) => l.activeTexts! > 0));
    // words are embedded once (candidate words), then the labels
    assert.ok(seen[0].includes('insulin') && seen[1].some((l) => l.includes(', ')));
  });

  describe('with an LLM endpoint (the paper’s labeller and judge)', function () {
    this.timeout(30_000);
    let llm: FakeLlm;
    let dir: string;
    beforeEach(async () => {
      llm = new FakeLlm();
      llm.handler = toyLlmHandler;
      await llm.start();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xet-labels-'));
    });
    afterEach(async () => {
      await llm.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('labels every trained feature through the endpoint, judges a sample of each SAE, and a rerun asks nothing again', async () => {
      const { texts, X, embedLabels, trained, random, sources } = toy();
      const cacheFile = path.join(dir, 'llm-cache.jsonl');
      const run = () =>
        labelFeatures(trained, random, X, texts, sources, {
          seed: 13,
          embedLabels,
          llm: { labeller: llmLabeller({ endpoint: llm.url, model: 'toy-llm', env: {}, cacheFile, concurrency: 3, judgeBatch: 10 }), sample: 2, textsPerSide: 20 },
        });
      const r = await run();
      assert.strictEqual(r.labeller, 'llm:toy-llm');
      assert.strictEqual(r.method, LLM_LABEL_METHOD);
      assert.strictEqual(r.labels.length, 3);
      for (const l of r.labels) {
        // the chatty answer is cleaned to the label itself
        const words = l.label.split(' ');
        assert.strictEqual(words.length, 2, l.label);
        assert.ok(words.every((w) => TOPICS[l.id].includes(w)), `feature ${l.id}: ${l.label}`);
        assert.deepStrictEqual(l.terms, words);
        assert.ok(l.detection !== null && l.detection > 0.95, `encoder judge on the LLM label: ${l.detection}`);
      }
      const llmStudy = r.llm!;
      assert.strictEqual(llmStudy.model, 'toy-llm');
      assert.strictEqual(llmStudy.endpoint, `${llm.url}/chat/completions`);
      // 2 features judged per SAE, 20 + 20 texts each in batches of 10
      assert.strictEqual(llmStudy.scored, 2);
      assert.strictEqual(llmStudy.randomScored, 2);
      assert.strictEqual(r.labels.filter((l) => l.detectionLlm !== undefined).length, 2);
      assert.ok(llmStudy.meanDetection > 0.95, `${llmStudy.meanDetection}`);
      assert.ok(Math.abs(llmStudy.meanDetectionRandom - 0.5) < 0.2, `${llmStudy.meanDetectionRandom}`);
      assert.strictEqual(llmStudy.byDecile.trained.tpr.length, 10);
      const labelAsks = llm.seen.filter((x) => x.prompt.startsWith('You are interpreting'));
      const judgeAsks = llm.seen.filter((x) => !x.prompt.startsWith('You are interpreting'));
      assert.strictEqual(labelAsks.length, 3 + 2, 'every trained feature, and the sampled random ones');
      assert.strictEqual(judgeAsks.length, 2 * 2 * 4);
      assert.ok(labelAsks.every((x) => (x.prompt.match(/^\d+\. \(activation \d+\)/gm) ?? []).length === 20), 'twenty examples with activations');
      assert.ok(judgeAsks.every((x) => !/activation/.test(x.prompt.split('\n').slice(2).join('\n'))), 'the judge sees no activations');
      assert.strictEqual(llmStudy.requests, llm.seen.length);
      assert.strictEqual(llmStudy.fromCache, 0);
      assert.ok(llm.maxInFlight <= 3);

      const again = await run();
      assert.strictEqual(llm.seen.length, labelAsks.length + judgeAsks.length, 'a rerun is answered from the cache file');
      assert.strictEqual(again.llm!.requests, 0);
      assert.strictEqual(again.llm!.fromCache, labelAsks.length + judgeAsks.length);
      assert.deepStrictEqual(again.labels, r.labels);
    });

    it('asks again when an answer cannot be parsed, then fails naming the feature; answers already given stay cached', async () => {
      const { texts, X, embedLabels, trained, random, sources } = toy();
      const cacheFile = path.join(dir, 'llm-cache.jsonl');
      let garbled = 0;
      llm.handler = (s, res) => {
        // the first judge request gets prose instead of verdicts once
        if (!s.prompt.startsWith('You are interpreting') && garbled++ === 0) return FakeLlm.answer(res, 'I think most of them are active.');
        toyLlmHandler(s, res);
      };
      const labeller = () => llmLabeller({ endpoint: llm.url, model: 'toy-llm', env: {}, cacheFile, concurrency: 1 });
      const r = await labelFeatures(trained, random, X, texts, sources, { seed: 13, embedLabels, llm: { labeller: labeller(), sample: 1 } });
      assert.ok(r.llm!.meanDetection > 0.95);
      assert.strictEqual(r.llm!.requests, 3 + 1 + 2 * 4 + 1, 'one extra request for the garbled answer');

      fs.rmSync(cacheFile);
      llm.seen.length = 0;
      llm.handler = (s, res) => (s.prompt.startsWith('You are interpreting') ? toyLlmHandler(s, res) : FakeLlm.answer(res, '[1, 0]'));
      await assert.rejects(labelFeatures(trained, random, X, texts, sources, { seed: 13, embedLabels, llm: { labeller: labeller(), sample: 1 } }), (e: Error) => {
        assert.match(e.message, /^feature \d of the trained SAE: judge texts 1–10: http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions gave no usable answer in 3 attempts: expected 10 verdicts, got 2$/);
        return true;
      });
      const cached = fs.readFileSync(cacheFile, 'utf8').trim().split('\n');
      assert.strictEqual(cached.length, 3, 'the three labels written before the failure are kept');
    });
  });

  it('label prompts and answers: examples spread over the activations, chatty labels cleaned, verdicts parsed strictly', () => {
    const acts = Array.from({ length: 50 }, (_, i) => ({ text: `t${i}`, activation: 50 - i }));
    const ex = labelExamples(acts);
    assert.strictEqual(ex.length, 20);
    assert.deepStrictEqual(ex.slice(0, 10).map((e) => e.text), acts.slice(0, 10).map((e) => e.text));
    assert.deepStrictEqual(ex.slice(10).map((e) => e.text), ['t12', 't16', 't20', 't24', 't28', 't32', 't36', 't40', 't44', 't48']);
    assert.strictEqual(labelExamples(acts.slice(0, 5)).length, 5);
    const p = labelPrompt([{ text: 'big  one', activation: 4 }, { text: 'small', activation: 1 }]);
    assert.ok(p.includes('1. (activation 10) big one\n2. (activation 3) small'), p);

    assert.strictEqual(parseLabel('Label: "Vitamin D and bone health".'), 'Vitamin D and bone health');
    assert.strictEqual(parseLabel('**Label:** insulin resistance\nBecause the texts…'), 'insulin resistance');
    assert.strictEqual(parseLabel('```\nsea ice\n```'), 'sea ice');
    assert.strictEqual(parseLabel('one two three four five six seven eight nine ten'), 'one two three four five six seven eight');
    assert.deepStrictEqual(parseLabel('  \n '), { problem: 'no label in the answer' });

    assert.deepStrictEqual(parseJudgement('Sure: [1, 0, true, "0"]', 4), [true, false, true, false]);
    assert.deepStrictEqual(parseJudgement('[1, 0]', 3), { problem: 'expected 3 verdicts, got 2' });
    assert.deepStrictEqual(parseJudgement('[1, 2]', 2), { problem: 'verdict 2 is not 0 or 1' });
    assert.ok('problem' in (parseJudgement('yes, all of them', 2) as object));
    const jp = judgePrompt('sea ice', ['a', 'b']);
    assert.ok(jp.includes('"sea ice"') && jp.includes('JSON array of 2 numbers') && jp.endsWith('1. a\n2. b'), jp);

    assert.strictEqual(verdictBalancedAccuracy([true, true, false, true], [false, true]), (0.75 + 0.5) / 2);
    assert.throws(() => verdictBalancedAccuracy([], [true]), RangeError);
  });
});
