import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aggregate, layerOf, sampleStd, subsetOf } from '../../src/sweep/aggregate.js';
import { completeGrid, expandCells, formatLr, parseLr, parseSeeds, parseSelections, readGridFile } from '../../src/sweep/grid.js';
import { autoRates, defaultRate, LR_GRIDS } from '../../src/sweep/lr.js';
import { crashLine, threadsPerWorker } from '../../src/sweep/pool.js';
import { presetGrid } from '../../src/sweep/presets.js';
import type { CellResult } from '../../src/sweep/results.js';
import { GLUE, tmpDir } from '../helpers/paths.js';

const result = (o: Partial<CellResult>): CellResult => ({
  id: 'x', task: 'RTE', selection: 'layernorm', seed: 42, lr: 1e-3, trainableCount: 10, totalCount: 1000, metrics: {}, mainMetric: 0.5,
  status: 'done', run: 'runs/x', steps: 1, bestStep: 1, wallSeconds: 1, worker: 'local', finishedAt: '', ...o,
});

describe('sweep grid', () => {
  it('splits selections on commas that do not continue a layer list', () => {
    expect(parseSelections('layernorm,bias,full')).toEqual(['layernorm', 'bias', 'full']);
    expect(parseSelections('query@0,3,layernorm')).toEqual(['query@0,3', 'layernorm']);
    expect(parseSelections('query@0,3;key@last layernorm:top=10%')).toEqual(['query@0,3', 'key@last', 'layernorm:top=10%']);
    expect(() => parseSelections('layernorm,,bias')).toThrow(/empty selection/);
  });

  it('reads seeds as a count from 42 or as a list, rates as a list, auto or default', () => {
    expect(parseSeeds('3')).toEqual([42, 43, 44]);
    expect(parseSeeds('1,7')).toEqual([1, 7]);
    expect(() => parseSeeds('0')).toThrow(/count ≥ 1/);
    expect(() => parseSeeds('1,x')).toThrow(/--seeds: seeds must be integers/);
    expect(parseLr('1e-4,3e-4')).toEqual([1e-4, 3e-4]);
    expect(parseLr('auto')).toBe('auto');
    expect(parseLr('default')).toBe('default');
    expect(() => parseLr('fast')).toThrow(/--lr: 'fast' is not a number; expected auto, default/);
    expect(() => parseLr('-1e-3')).toThrow(/positive numbers/);
    expect(formatLr(1e-3)).toBe('1e-3');
    expect(formatLr(3e-5)).toBe('3e-5');
    expect(formatLr(2.5e-4)).toBe('2.5e-4');
  });

  it('expands selection × task × rate × seed into cells with folder-safe, unique ids', () => {
    const grid = completeGrid({ model: 'm.onnx', tasks: ['rte', 'stsb'], train: ['layernorm', 'layernorm:top=10%'], seeds: [1, 2], lr: [1e-3] });
    expect(grid.tasks).toEqual(['RTE', 'STS-B']);
    const cells = expandCells(grid, () => [1e-3, 1e-2]);
    expect(cells).toHaveLength(2 * 2 * 2 * 2);
    expect(cells[0]).toEqual({ id: 'RTE-layernorm-s1-lr1e-3', task: 'RTE', selection: 'layernorm', seed: 1, lr: 1e-3 });
    expect(cells.map((c) => c.id)).toContain('STS-B-layernorm_top=10-s2-lr1e-2');
    expect(new Set(cells.map((c) => c.id)).size).toBe(cells.length);
    for (const c of cells) expect(c.id).toMatch(/^[A-Za-z0-9._@=-]+$/);
    expect(() => expandCells(completeGrid({ model: 'm', tasks: ['rte'], train: ['a:top=1%', 'a:top=1'] }), () => [1])).toThrow(/would share the folder name/);
  });

  it('refuses an unknown task, a repeated entry and bad shared options, naming them', () => {
    expect(() => completeGrid({ model: 'm', tasks: ['rte', 'glue9'], train: ['bias'] })).toThrow(/unknown GLUE task 'glue9'/);
    expect(() => completeGrid({ model: 'm', tasks: ['rte', 'RTE'], train: ['bias'] })).toThrow(/task RTE is listed twice/);
    expect(() => completeGrid({ model: 'm', tasks: ['rte'], train: ['bias', 'bias'] })).toThrow(/selection 'bias' is listed twice/);
    expect(() => completeGrid({ model: 'm', tasks: ['rte'], train: ['bias'], epochs: 0 })).toThrow(/--epochs must be a positive integer/);
    expect(() => completeGrid({ tasks: ['rte'], train: ['bias'] })).toThrow(/needs a base model/);
  });

  it('reads grid.json with the flags\' fields, paths relative to the file, and refuses unknown fields', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'grid.json');
    fs.writeFileSync(file, JSON.stringify({ model: 'm/model.onnx', tasks: ['rte', 'mrpc'], train: 'layernorm,bias', seeds: 2, lr: 'auto', epochs: 2, dropout: 0 }));
    expect(readGridFile(file)).toEqual({ model: path.join(dir, 'm/model.onnx'), tasks: ['rte', 'mrpc'], train: ['layernorm', 'bias'], seeds: [42, 43], lr: 'auto', epochs: 2, dropout: 0 });
    fs.writeFileSync(file, JSON.stringify({ tasks: ['rte'], learningRate: 1 }));
    expect(() => readGridFile(file)).toThrow(/grid.json: unknown field 'learningRate'/);
    fs.writeFileSync(file, JSON.stringify({ epochs: '3' }));
    expect(() => readGridFile(file)).toThrow(/field 'epochs': expected a number, got "3"/);
    fs.writeFileSync(file, '{');
    expect(() => readGridFile(file)).toThrow(/not valid JSON/);
  });

  it('--lr auto picks a grid by the share of parameters a selection trains; default is its middle rate', () => {
    expect(autoRates(100_000_000, 110_000_000)).toEqual([1e-5, 3e-5, 1e-4]); // full
    expect(autoRates(590_000, 110_000_000)).toEqual([1e-4, 3e-4, 1e-3]); // one 768×768 matrix
    expect(autoRates(38_400, 110_000_000)).toEqual([1e-3, 3e-3, 1e-2]); // every LayerNorm of bert-base
    expect(defaultRate(38_400, 110_000_000)).toBe(3e-3);
    for (const g of LR_GRIDS) expect([...g.rates].sort((a, b) => a - b)).toEqual(g.rates);
  });

  it('paper preset: every module, each layer\'s LayerNorms, top vs random, on the tasks with data', () => {
    const g = presetGrid('paper', { numLayers: 4, data: GLUE });
    expect(g.train).toEqual(expect.arrayContaining(['full', 'classifier', 'bias', 'layernorm', 'query', 'layernorm@0', 'layernorm@3', 'layernorm:top=10%', 'layernorm:random=10%']));
    expect(g.train).not.toContain('layernorm@4');
    expect(g.tasks).toEqual(expect.arrayContaining(['RTE', 'MRPC', 'SST-2', 'STS-B']));
    expect(g.tasks).not.toContain('WNLI');
    expect(g.lr).toBe('auto');
    expect(() => presetGrid('huge', { numLayers: 2 })).toThrow(/unknown --preset 'huge': expected one of paper, quick/);
  });

  it('chooses the rate with the best mean over seeds, and reports mean ± sample std there', () => {
    const rs = [
      result({ id: 'a', lr: 1e-3, seed: 1, mainMetric: 0.6 }), result({ id: 'b', lr: 1e-3, seed: 2, mainMetric: 0.7 }),
      result({ id: 'c', lr: 1e-2, seed: 1, mainMetric: 0.9 }), result({ id: 'd', lr: 1e-2, seed: 2, mainMetric: 0.5 }),
      result({ id: 'e', lr: 1e-4, seed: 1, mainMetric: 0.66 }), result({ id: 'f', lr: 1e-4, seed: 2, status: 'failed', mainMetric: null }),
    ];
    const [s] = aggregate(rs);
    expect(s!.lr).toBe(1e-2);
    expect(s!.mean).toBeCloseTo(0.7, 12);
    expect(s!.std).toBeCloseTo(Math.sqrt(0.08), 12);
    expect(s!.byLr.map((b) => [b.lr, b.seeds])).toEqual([[1e-4, 1], [1e-3, 2], [1e-2, 2]]);
    expect(sampleStd([1])).toBe(0);
    expect(layerOf('layernorm@11', 12)).toBe(11);
    // The quick preset's `layernorm@last` belongs in the layer-wise table, at the model's last layer.
    expect(layerOf('layernorm@last', 4)).toBe(3);
    expect(layerOf('layernorm@0-3', 12)).toBeNull();
    expect(subsetOf('layernorm:random=5%')).toEqual({ target: 'layernorm', kind: 'random', amount: '5%' });
  });

  it('shares the cores among worker processes, and names what killed a crashed one', () => {
    expect(threadsPerWorker(1, 2)).toBe(2);
    expect(threadsPerWorker(2, 2)).toBe(1);
    expect(threadsPerWorker(3, 2)).toBe(1);
    expect(threadsPerWorker(2, 8)).toBe(4);
    const stderr = 'file:///x/cell.js:10\n  throw e;\n  ^\n\nRangeError: Array buffer allocation failed\n    at new ArrayBuffer (<anonymous>)\n\nNode.js v20.20.2\n';
    expect(crashLine(stderr)).toBe('RangeError: Array buffer allocation failed');
    expect(crashLine('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\nNode.js v20.20.2\n')).toBe('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory');
    expect(crashLine('')).toBeUndefined();
  });
});
