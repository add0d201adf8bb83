import { describe, expect, it } from 'vitest';
import { buildBert } from '../../src/bert/build.js';
import { presetConfig } from '../../src/bert/presets.js';
import { discoverParameters } from '../../src/modules/discover.js';
import { selectParameters } from '../../src/modules/select.js';
import { describeTrainable, formatShare } from '../../src/modules/summary.js';
import { bertHfNames } from './helpers.js';

/** The paper's reference point: bert-base (12 layers, hidden 768, 12 heads) with pooler, no head. */
describe('bert-base preset counts', () => {
  const model = buildBert({ config: presetConfig('bert-base'), init: 'zeros' });
  const s = discoverParameters(model);

  it('discovers the whole model', () => {
    expect([s.family, s.numLayers, s.hiddenSize, s.numHeads, s.vocabSize, s.intermediateSize]).toEqual(['bert', 12, 768, 12, 30522, 3072]);
    expect(s.parameters.map((p) => p.hfName)).toEqual(bertHfNames({ layers: 12, pooler: true }));
    expect(s.unplaced).toEqual([]);
    expect(s.totalCount).toBe(109_482_240);
  });

  it('layernorm trains 38,400 parameters (0.035%), layernorm@11 3,072 (0.003%)', () => {
    const ln = selectParameters(s, 'layernorm');
    expect(ln.trainableCount).toBe(38_400);
    expect(describeTrainable(ln)).toBe('trainable: 38,400 of 109,482,240 (0.035%)');
    const last = selectParameters(s, 'layernorm@11');
    expect(last.trainableCount).toBe(3_072);
    expect(formatShare(last.trainableCount, last.totalCount)).toBe('0.003%');
    expect(selectParameters(s, 'layernorm@last').parameters).toEqual(last.parameters);
  });

  it('other reference selections', () => {
    expect(selectParameters(s, 'bias').trainableCount).toBe(102_912);
    expect(selectParameters(s, 'attention@0-5').trainableCount).toBe(6 * 4 * (768 * 768 + 768));
    expect(selectParameters(s, 'layernorm:top=5%').trainableCount).toBe(1_920);
    expect(selectParameters(s, 'full').trainableCount).toBe(109_482_240);
  });
});
