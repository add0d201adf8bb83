/** Child process: build a preset BERT (random init, perturbed LayerNorms) and save it. */
import { buildBert, presetConfig } from '../../src/bert/index.js';
import { saveModel } from '../../src/onnx/io.js';

const [preset, out] = process.argv.slice(2);
saveModel(buildBert({ config: presetConfig(preset!), seed: 0, perturbLayerNorm: true }), out!);
process.stdout.write(JSON.stringify({ preset, out }) + "\n");
