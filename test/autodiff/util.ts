import { expect } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Attr, Graph } from '../../src/onnx/graph.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { GradCheck, GradReport, ShapeMode, gradCheck, random } from './harness.js';

/** Add a node, return its first output. */
export function op(g: Graph, opType: string, inputs: string[], attrs?: Record<string, Attr>): string {
  return g.addNode({ opType, inputs, attrs }).outputs[0]!;
}

export const ints = (v: number[]): Attr => ({ type: 'ints', value: v });
export const int = (v: number): Attr => ({ type: 'int', value: v });
export const float = (v: number): Attr => ({ type: 'float', value: v });
export const str = (v: string): Attr => ({ type: 'string', value: v });

export function int64Init(g: Graph, name: string, v: number[], dims = [v.length]): string {
  return g.addInitializer(makeTensor(name, DataType.INT64, dims, v));
}

export function floatInit(g: Graph, name: string, v: number[], dims: number[], type: 'float32' | 'float64' = 'float64'): string {
  return g.addInitializer(makeTensor(name, type === 'float64' ? DataType.DOUBLE : DataType.FLOAT, dims, v));
}

/** A Constant node (rather than an initializer) holding int64s. */
export function int64Const(g: Graph, v: number[], dims = [v.length]): string {
  return op(g, 'Constant', [], { value: { type: 'tensor', value: makeTensor('', DataType.INT64, dims, v) } });
}

/** Values bounded away from 0 (for Div, Log, Sqrt, Relu kinks). */
export function awayFromZero(n: number, seed: number, min = 0.5, signed = true): number[] {
  const r = random(seed);
  return Array.from({ length: n }, () => (min + r.next()) * (signed && r.next() < 0.5 ? -1 : 1));
}

/** Run the check in each shape mode and expect every gradient entry within tolerance. */
export async function expectGradients(spec: GradCheck, modes: ShapeMode[] = ['static']): Promise<GradReport[]> {
  const reports: GradReport[] = [];
  const numericCache = new Map<string, number>();
  for (const shapes of modes) {
    const r = await gradCheck({ ...spec, shapes, numericCache });
    expect(r.failures, `shape mode ${shapes}`).toEqual([]);
    expect(r.checked, `shape mode ${shapes}`).toBeGreaterThan(0);
    reports.push(r);
  }
  return reports;
}

export const ALL_MODES: ShapeMode[] = ['static', 'symbolic', 'unknown', 'infer'];
