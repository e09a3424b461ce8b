/**
 * How the encoder groups texts into batches. Texts come longest first, so a
 * batch's first text sets its padded length; a token budget then bounds the
 * padded tokens of a batch (always at least one text), so long texts go in
 * small batches and short ones in large ones.
 */

/** Batch sizes, in order, for token lengths sorted longest first. */
export function batchSizes(lengthsDesc: readonly number[], batchSize: number, tokenBudget?: number): number[] {
  const bs = Math.max(1, Math.floor(batchSize));
  const sizes: number[] = [];
  for (let start = 0; start < lengthsDesc.length; ) {
    const seq = Math.max(1, lengthsDesc[start]);
    const size = Math.min(lengthsDesc.length - start, tokenBudget ? Math.max(1, Math.min(bs, Math.floor(tokenBudget / seq))) : bs);
    sizes.push(size);
    start += size;
  }
  return sizes;
}
