import type { GradientRule } from '../context.js';

// Binary ops broadcast their inputs; each input gradient is summed back to that input's shape.

export const addGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const yShape = ctx.shape(ctx.output(0));
  return [0, 1].map((i) => (ctx.needs(i) ? ctx.sumToShape(dy, yShape, ctx.input(i)) : undefined));
};

export const subGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const yShape = ctx.shape(ctx.output(0));
  return [
    ctx.needs(0) ? ctx.sumToShape(dy, yShape, ctx.input(0)) : undefined,
    ctx.needs(1) ? ctx.neg(ctx.sumToShape(dy, yShape, ctx.input(1))) : undefined,
  ];
};

export const mulGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const yShape = ctx.shape(ctx.output(0));
  return [
    ctx.needs(0) ? ctx.sumToShape(ctx.mul(dy, b), yShape, a) : undefined,
    ctx.needs(1) ? ctx.sumToShape(ctx.mul(dy, a), yShape, b) : undefined,
  ];
};

/** y = a / b: da = dy / b, db = -dy · y / b (reusing the forward output). */
export const divGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [a, b, y] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const yShape = ctx.shape(y);
  return [
    ctx.needs(0) ? ctx.sumToShape(ctx.div(dy, b), yShape, a) : undefined,
    ctx.needs(1) ? ctx.sumToShape(ctx.neg(ctx.div(ctx.mul(dy, y), b)), yShape, b) : undefined,
  ];
};

export const negGrad: GradientRule = (ctx) => [ctx.needs(0) ? ctx.neg(ctx.requireDy()) : undefined];

/** Variadic Sum: every input receives the (un-broadcast) output gradient. */
export const sumGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const yShape = ctx.shape(ctx.output(0));
  return ctx.node.inputs.map((x, i) => (ctx.needs(i) ? ctx.sumToShape(dy, yShape, x) : undefined));
};
