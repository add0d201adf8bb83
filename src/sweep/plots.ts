/**
 * The sweep's plots as Vega-Lite specs with their data inline; src/util/plot.ts renders them to SVG
 * and writes the spec beside it (NAME.vl.json), so they open in any Vega-Lite tool and can be restyled.
 */
import { VEGA_LITE_SCHEMA as SCHEMA, type TopLevelSpec } from '../util/plot.js';
import type { MetricsRecord } from '../train/run-folder.js';
import { layerOf, subsetOf, type Score } from './aggregate.js';
import type { ModuleMagnitude } from './magnitude.js';

/** Dev score against the share of trainable parameters (log x), one colour per task. */
export function scoreVsShareSpec(scores: Score[]): TopLevelSpec {
  const values = scores.map((s) => ({ selection: s.selection, task: s.task, share: (100 * s.trainableCount) / s.totalCount, score: s.mean, std: s.std, lr: s.lr }));
  return {
    $schema: SCHEMA, title: 'Dev score vs share of trainable parameters', width: 520, height: 320,
    data: { values },
    layer: [
      { mark: { type: 'point', filled: true, size: 60 }, encoding: {
        x: { field: 'share', type: 'quantitative', scale: { type: 'log' }, title: 'trainable parameters, % of the model (log)', axis: { format: '~g' } },
        y: { field: 'score', type: 'quantitative', title: 'dev score (main metric, mean over seeds)', scale: { zero: false } },
        color: { field: 'task', type: 'nominal' },
        tooltip: [{ field: 'selection' }, { field: 'task' }, { field: 'score', format: '.4f' }, { field: 'std', format: '.4f' }, { field: 'share', format: '.3~g' }, { field: 'lr' }],
      } },
      { mark: { type: 'text', align: 'left', dx: 5, dy: -5, fontSize: 9 }, encoding: {
        x: { field: 'share', type: 'quantitative', scale: { type: 'log' } },
        y: { field: 'score', type: 'quantitative' },
        text: { field: 'selection' }, color: { field: 'task', type: 'nominal' },
      } },
    ],
  };
}

/** The layer-wise LayerNorm experiment: score by layer, one line per task. */
export function layerwiseSpec(scores: Score[], numLayers: number): TopLevelSpec {
  const values = scores.filter((s) => layerOf(s.selection, numLayers) !== null).map((s) => ({ layer: layerOf(s.selection, numLayers), task: s.task, score: s.mean, std: s.std }));
  return {
    $schema: SCHEMA, title: 'LayerNorms of one layer trained alone', width: 420, height: 280,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'layer', type: 'ordinal', title: 'layer' },
      y: { field: 'score', type: 'quantitative', title: 'dev score (mean over seeds)', scale: { zero: false } },
      color: { field: 'task', type: 'nominal' },
      tooltip: [{ field: 'layer' }, { field: 'task' }, { field: 'score', format: '.4f' }, { field: 'std', format: '.4f' }],
    },
  };
}

/** Largest-magnitude entries against as many random ones, per share and task. */
export function topVsRandomSpec(scores: Score[]): TopLevelSpec {
  const values = scores.flatMap((s) => {
    const sub = subsetOf(s.selection);
    return sub ? [{ subset: `${sub.target} ${sub.amount}`, kind: sub.kind, task: s.task, score: s.mean, std: s.std }] : [];
  });
  return {
    $schema: SCHEMA, title: 'Top-magnitude vs random entries', data: { values },
    facet: { column: { field: 'task', type: 'nominal', title: null } },
    spec: {
      width: 160, height: 240, mark: 'bar',
      encoding: {
        x: { field: 'subset', type: 'nominal', title: null },
        xOffset: { field: 'kind', type: 'nominal' },
        y: { field: 'score', type: 'quantitative', title: 'dev score (mean over seeds)' },
        color: { field: 'kind', type: 'nominal', title: 'entries', scale: { domain: ['top', 'random'] } },
        tooltip: [{ field: 'subset' }, { field: 'kind' }, { field: 'score', format: '.4f' }, { field: 'std', format: '.4f' }],
      },
    },
  };
}

/** Mean |w| of the base model per module (weights and biases), log scale. */
export function magnitudeSpec(mags: ModuleMagnitude[]): TopLevelSpec {
  // A log axis has no place for 0 (a freshly initialised bias): those bars are left out.
  const values = mags.filter((m) => m.meanAbs > 0).map((m) => ({ module: m.module, role: m.role, meanAbs: m.meanAbs }));
  // Bars on a log axis need a floor to start from (0 has no place there): the decade below the smallest.
  const floor = values.length ? 10 ** Math.floor(Math.log10(Math.min(...values.map((v) => v.meanAbs)))) : 1e-3;
  return {
    $schema: SCHEMA, title: 'Base model: mean |w| per module', width: 420, height: 260, data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'module', type: 'nominal', sort: null, title: null },
      xOffset: { field: 'role', type: 'nominal' },
      y: { field: 'meanAbs', type: 'quantitative', scale: { type: 'log', domainMin: floor }, title: 'mean |w| (log)' },
      y2: { datum: floor },
      color: { field: 'role', type: 'nominal' },
      tooltip: [{ field: 'module' }, { field: 'role' }, { field: 'meanAbs', format: '.4g' }],
    },
  };
}

/** Mean |w| of the weights per module and layer, as a heat map. */
export function magnitudeLayersSpec(mags: ModuleMagnitude[]): TopLevelSpec {
  const values = mags.filter((m) => m.role === 'weight').flatMap((m) => m.perLayer.map((v, layer) => ({ module: m.module, layer, meanAbs: v })).filter((x) => x.meanAbs !== null && x.meanAbs > 0));
  return {
    $schema: SCHEMA, title: 'Base model: mean |w| of the weights per layer', data: { values },
    mark: 'rect',
    encoding: {
      x: { field: 'layer', type: 'ordinal' },
      y: { field: 'module', type: 'nominal', sort: null, title: null },
      color: { field: 'meanAbs', type: 'quantitative', scale: { type: 'log', scheme: 'viridis' }, title: 'mean |w|' },
      tooltip: [{ field: 'module' }, { field: 'layer' }, { field: 'meanAbs', format: '.4g' }],
    },
  };
}

/** A run's training loss and dev metrics by step (metrics.jsonl). */
export function runCurvesSpec(records: MetricsRecord[], title: string): TopLevelSpec {
  const loss = records.filter((r) => r.type === 'train').map((r) => ({ step: r.step, loss: r.loss }));
  const evals = records.flatMap((r) => (r.type === 'eval'
    ? Object.entries(r.metrics).map(([metric, value]) => ({ step: r.step, metric: r.split === 'dev' || r.split === 'dev_matched' ? metric : `${r.split}/${metric}`, value }))
    : []));
  const evalLoss = records.flatMap((r) => (r.type === 'eval' ? [{ step: r.step, loss: r.loss, split: r.split }] : []));
  return {
    $schema: SCHEMA, title,
    resolve: { scale: { color: 'independent' } },
    vconcat: [
      { width: 480, height: 180, title: 'loss', layer: [
        { data: { values: loss }, mark: { type: 'line', strokeWidth: 1 }, encoding: {
          x: { field: 'step', type: 'quantitative' }, y: { field: 'loss', type: 'quantitative', scale: { zero: false } }, color: { datum: 'train', title: 'loss' },
        } },
        { data: { values: evalLoss }, mark: { type: 'line', point: true }, encoding: {
          x: { field: 'step', type: 'quantitative' }, y: { field: 'loss', type: 'quantitative' }, color: { datum: 'dev' },
        } },
      ] },
      { width: 480, height: 180, title: 'dev metrics', data: { values: evals }, mark: { type: 'line', point: true }, encoding: {
        x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative', scale: { zero: false } }, color: { field: 'metric', type: 'nominal' },
      } },
    ],
  };
}
