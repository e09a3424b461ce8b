/**
 * The LLM side of feature labels, as in the paper (after Paulo et al. 2024,
 * "Automatically interpreting millions of features"): an explainer sees a
 * feature's activating texts with their activations and writes a label of 1–8
 * words; a judge, given only that label, says of each text in a shuffled,
 * balanced batch whether the feature fires on it. The paper's own prompts
 * were not released; these follow Paulo et al.'s. Pure: prompts in, parsed
 * answers out; the requests live in train/llmLabeller.
 */
import { ActivatingText } from './labels';

export const LABEL_MAX_WORDS = 8;
/** characters of each text shown to the LLM; abstracts are long and the gist is early */
export const PROMPT_TEXT_CHARS = 400;

const clip = (t: string) => {
  const s = t.replace(/\s+/g, ' ').trim();
  return s.length > PROMPT_TEXT_CHARS ? `${s.slice(0, PROMPT_TEXT_CHARS)}…` : s;
};

/**
 * Up to `n` examples for the explainer: the strongest half, then the rest
 * spread evenly over the remaining activations, so the label covers the weak
 * activations the judge will also be shown.
 */
export function labelExamples(activating: readonly ActivatingText[], n = 20): ActivatingText[] {
  if (activating.length <= n) return [...activating];
  const top = Math.ceil(n / 2);
  const out = activating.slice(0, top);
  const rest = activating.slice(top);
  const m = n - top;
  for (let i = 0; i < m; i++) out.push(rest[Math.floor(((i + 0.5) * rest.length) / m)]);
  return out;
}

export function labelPrompt(examples: readonly ActivatingText[]): string {
  const max = Math.max(...examples.map((e) => e.activation), 1e-12);
  const lines = examples.map((e, i) => `${i + 1}. (activation ${Math.round((10 * e.activation) / max)}) ${clip(e.text)}`);
  return [
    'You are interpreting one feature of a sparse autoencoder trained on the embeddings of a text retrieval model.',
    'Below are texts on which the feature is active, with its activation on each from 0 to 10 (10 = strongest).',
    `Name what these texts have in common that the feature detects, in a label of 1 to ${LABEL_MAX_WORDS} words.`,
    'Prefer the specific topic or concept over generic words such as "research" or "study".',
    'Answer with the label only, on one line.',
    '',
    ...lines,
  ].join('\n');
}

/** The label from an explainer's answer: first non-empty line, without a "Label:" prefix, quotes or a final period. */
export function parseLabel(answer: string): string | { problem: string } {
  const line = answer
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !/^```/.test(l));
  if (!line) return { problem: 'no label in the answer' };
  const label = line
    .replace(/^(\*\*)?(feature )?label(\*\*)?\s*[:：]\s*/i, '')
    .replace(/^["'“”*`]+|["'“”*`.。]+$/g, '')
    .replace(/[.。]+$/, '')
    .trim();
  if (!label) return { problem: 'an empty label' };
  const words = label.split(/\s+/);
  // a longer answer keeps its first words: the label is a name, not an essay
  return words.length > LABEL_MAX_WORDS ? words.slice(0, LABEL_MAX_WORDS).join(' ') : label;
}

export function judgePrompt(label: string, texts: readonly string[]): string {
  return [
    'A feature of a text retrieval model has been described with this label:',
    `"${label}"`,
    '',
    `For each of the ${texts.length} numbered texts below, decide from the label alone whether the feature is active on it.`,
    'About half of the texts activate the feature.',
    `Answer with a JSON array of ${texts.length} numbers, 1 for active and 0 for not active, in the order of the texts, and nothing else.`,
    '',
    ...texts.map((t, i) => `${i + 1}. ${clip(t)}`),
  ].join('\n');
}

/** The judge's verdicts: the first JSON array of n 0/1 (or true/false) values in the answer. */
export function parseJudgement(answer: string, n: number): boolean[] | { problem: string } {
  const m = answer.match(/\[[^\][]*\]/);
  if (!m) return { problem: `no JSON array in the answer: ${answer.slice(0, 120)}` };
  let arr: unknown;
  try {
    arr = JSON.parse(m[0]);
  } catch {
    return { problem: `not a JSON array: ${m[0].slice(0, 120)}` };
  }
  if (!Array.isArray(arr) || arr.length !== n) return { problem: `expected ${n} verdicts, got ${Array.isArray(arr) ? arr.length : 'none'}` };
  const out: boolean[] = [];
  for (const v of arr) {
    if (v === 1 || v === true || v === '1') out.push(true);
    else if (v === 0 || v === false || v === '0') out.push(false);
    else return { problem: `verdict ${JSON.stringify(v)} is not 0 or 1` };
  }
  return out;
}

/** Balanced accuracy of binary verdicts: the mean of the hit rate on activating and the rejection rate on non-activating texts. */
export function verdictBalancedAccuracy(onActivating: readonly boolean[], onNonActivating: readonly boolean[]): number {
  if (!onActivating.length || !onNonActivating.length) throw new RangeError('verdictBalancedAccuracy: need texts of both kinds');
  const tpr = onActivating.filter(Boolean).length / onActivating.length;
  const tnr = onNonActivating.filter((v) => !v).length / onNonActivating.length;
  return (tpr + tnr) / 2;
}
