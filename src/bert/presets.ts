import { ModtuneError } from '../errors.js';
import type { BertConfig } from './config.js';

export type PresetName = 'bert-tiny' | 'bert-mini' | 'bert-small' | 'bert-medium' | 'bert-base' | 'bert-large';

function bertPreset(numHiddenLayers: number, hiddenSize: number, numAttentionHeads: number): BertConfig {
  return {
    modelType: 'bert',
    vocabSize: 30522,
    hiddenSize,
    numHiddenLayers,
    numAttentionHeads,
    intermediateSize: 4 * hiddenSize,
    hiddenAct: 'gelu',
    hiddenDropoutProb: 0.1,
    attentionProbsDropoutProb: 0.1,
    classifierDropout: null,
    maxPositionEmbeddings: 512,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    padTokenId: 0,
  };
}

/** Google's BERT sizes: the Turc et al. (2019) miniatures, base and large (uncased vocabulary). */
export const PRESETS: Record<PresetName, BertConfig> = {
  'bert-tiny': bertPreset(2, 128, 2),
  'bert-mini': bertPreset(4, 256, 4),
  'bert-small': bertPreset(4, 512, 8),
  'bert-medium': bertPreset(8, 512, 8),
  'bert-base': bertPreset(12, 768, 12),
  'bert-large': bertPreset(24, 1024, 16),
};

/** A copy of a preset's config. */
export function presetConfig(name: string): BertConfig {
  if (!Object.prototype.hasOwnProperty.call(PRESETS, name)) {
    throw new ModtuneError(`unknown preset '${name}'; expected one of ${Object.keys(PRESETS).join(', ')}`);
  }
  return { ...PRESETS[name as PresetName] };
}
