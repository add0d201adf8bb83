import { upgradeOpset } from '../autodiff/opset.js';
import { ModtuneError } from '../errors.js';
import { Model, opsetVersion } from '../onnx/graph.js';

/** SoftmaxCrossEntropyLoss and the input-form Dropout appear in opset 12. */
export const MIN_HEAD_OPSET = 12;

/**
 * Raise a model below opset 12 (the first with SoftmaxCrossEntropyLoss) to 12, rewriting the nodes
 * whose signature changed on the way (Dropout's ratio; Pad/Clip/Slice for older exports). Squeeze/
 * Unsqueeze/Split/ReduceSum keep their attribute forms until 13, so an 11 → 12 raise leaves them be.
 */
export function ensureHeadOpset(model: Model, label: string): void {
  const v = opsetVersion(model);
  if (v === undefined) throw new ModtuneError(`${label}: the model imports no default-domain opset`);
  if (v >= MIN_HEAD_OPSET) return;
  upgradeOpset(model, MIN_HEAD_OPSET);
  // Opset 12 is defined from IR version 7 on.
  if (model.irVersion < 7) model.irVersion = 7;
}
