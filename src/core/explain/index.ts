/** Explanation and steering math over a TopK SAE: pure TypeScript, no encoder, no VS Code. */
export * from './sparse';
export * from './overlap';
export * from './attribution';
export * from './erasure';
export * from './steering';
export * from './labels';
export * from './rng';
export * from './labelPrompts';
export * from './steeringBasis';
export * from './concepts';
export * from './grounding';
export * from './families';
export * from './occlusion';
export * from './contrast';
export * from './deletion';
export * from './spelling';
