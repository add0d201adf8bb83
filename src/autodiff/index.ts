export { buildBackward } from './backward.js';
export type { BackwardRequest, BackwardResult } from './backward.js';
export { GRADIENT_RULES, NON_DIFFERENTIABLE_OPS, gradientRule } from './registry.js';
export type { GradientRule, RuleContext } from './context.js';
export { upgradeOpset } from './opset.js';
export type { OpsetUpgrade } from './opset.js';
