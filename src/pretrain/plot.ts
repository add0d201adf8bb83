/**
 * The pre-training curves (training loss, held-out MLM loss and masked-token accuracy, by tokens seen)
 * as an SVG and its Vega-Lite spec, from `training/metrics.jsonl`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VEGA_LITE_SCHEMA, writePlot, type TopLevelSpec } from '../util/plot.js';

interface Record_ { type: 'train' | 'eval'; step: number; tokens: number; loss: number; accuracy?: number }

export function pretrainCurvesSpec(records: Record_[], title: string): TopLevelSpec {
  const mtok = (r: Record_) => +(r.tokens / 1e6).toFixed(3);
  const loss = records.map((r) => ({ tokens: mtok(r), loss: r.loss, kind: r.type === 'train' ? 'training (masked tokens)' : 'held-out' }));
  const accuracy = records.filter((r) => r.type === 'eval').map((r) => ({ tokens: mtok(r), accuracy: r.accuracy }));
  const x = { field: 'tokens', type: 'quantitative' as const, title: 'tokens seen (millions)' };
  return {
    $schema: VEGA_LITE_SCHEMA, title,
    vconcat: [
      { width: 480, height: 180, title: 'masked-LM loss', data: { values: loss }, mark: { type: 'line', point: true, strokeWidth: 1 },
        encoding: { x, y: { field: 'loss', type: 'quantitative', scale: { zero: false } }, color: { field: 'kind', type: 'nominal', title: null } } },
      { width: 480, height: 140, title: 'held-out masked-token accuracy', data: { values: accuracy }, mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'accuracy', type: 'quantitative', axis: { format: '%' } } } },
    ],
  };
}

/** Write `loss-curve.svg` (+ `.vl.json`) into `out` from the run's metrics; returns the SVG path. */
export async function writePretrainCurves(out: string, title: string): Promise<string> {
  const file = path.join(out, 'training', 'metrics.jsonl');
  const records = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record_);
  return writePlot(out, 'loss-curve', pretrainCurvesSpec(records, title));
}
