import type { Node } from '../../onnx/graph.js';
import type { ValueFacts } from '../facts.js';

/**
 * Exporters write GELU as x·½(1 + erf(x/√2)) in four or five elementwise nodes. Differentiating node
 * by node would make the backward read the intermediate values (x/√2, erf, 1 + erf, x·(1 + erf)),
 * and a value read outside the pattern stops ONNX Runtime from fusing the forward nodes into one
 * Gelu (or BiasGelu) kernel. Recognising the whole pattern lets the backward use x alone, through
 * the Gelu rule, so the forward stays fusable.
 */
export interface ErfGelu {
  /** The GELU's input. */
  x: string;
  /** The last node; its output is the GELU's output. */
  tail: Node;
  /** Every node of the pattern but the tail. */
  interior: Node[];
}

const close = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.abs(b);

/** The constant scalar among a binary node's inputs and the other input, if exactly one is a scalar constant. */
function scalarOperand(facts: ValueFacts, n: Node): { value: number; other: string } | undefined {
  for (const [i, j] of [[0, 1], [1, 0]] as const) {
    const c = facts.constNumbers(n.inputs[i] ?? '');
    if (c && c.length === 1 && !facts.constNumbers(n.inputs[j] ?? '')) return { value: c[0]!, other: n.inputs[j]! };
  }
  return undefined;
}

/**
 * Find erf-GELUs: D = x/√2 (Div, or Mul by 1/√2), E = Erf(D), A = E + 1, and either
 * y = (x·A)·½ or y = (x·½)·A. Interior values must be read only inside the pattern.
 */
export function findErfGelus(nodes: Node[], facts: ValueFacts, producers: Map<string, Node>, consumers: Map<string, Node[]>): ErfGelu[] {
  const only = (v: string, n: Node) => (consumers.get(v) ?? []).every((c) => c === n);
  const found: ErfGelu[] = [];
  for (const erf of nodes) {
    if (erf.opType !== 'Erf' || (erf.domain && erf.domain !== 'ai.onnx')) continue;
    const div = producers.get(erf.inputs[0]!);
    if (!div || (div.opType !== 'Div' && div.opType !== 'Mul')) continue;
    const scaled = div.opType === 'Div'
      ? (() => { const c = facts.constNumbers(div.inputs[1]!); return c?.length === 1 && close(c[0], Math.SQRT2) ? div.inputs[0]! : undefined; })()
      : (() => { const s = scalarOperand(facts, div); return s && close(s.value, Math.SQRT1_2) ? s.other : undefined; })();
    if (!scaled) continue;
    const x = scaled;
    const addUsers = consumers.get(erf.outputs[0]!) ?? [];
    if (addUsers.length !== 1 || addUsers[0]!.opType !== 'Add') continue;
    const add = addUsers[0]!;
    const one = scalarOperand(facts, add);
    if (!one || !close(one.value, 1)) continue;
    const mulUsers = consumers.get(add.outputs[0]!) ?? [];
    if (mulUsers.length !== 1 || mulUsers[0]!.opType !== 'Mul') continue;
    const m1 = mulUsers[0]!;
    const other = m1.inputs[0] === add.outputs[0] ? m1.inputs[1]! : m1.inputs[0]!;
    let interior: Node[];
    let tail: Node;
    if (other === x) {
      // y = (x·A)·½
      const users = consumers.get(m1.outputs[0]!) ?? [];
      if (users.length !== 1 || users[0]!.opType !== 'Mul') continue;
      const half = scalarOperand(facts, users[0]!);
      if (!half || !close(half.value, 0.5) || half.other !== m1.outputs[0]) continue;
      tail = users[0]!;
      interior = [div, erf, add, m1];
    } else {
      // y = (x·½)·A
      const h = producers.get(other);
      if (!h || h.opType !== 'Mul') continue;
      const half = scalarOperand(facts, h);
      if (!half || !close(half.value, 0.5) || half.other !== x) continue;
      tail = m1;
      interior = [div, erf, add, h];
    }
    const members = new Set([...interior, tail]);
    const sealed = interior.every((n) => n.outputs.every((o) => !o || (consumers.get(o) ?? []).every((c) => members.has(c))));
    if (!sealed || !only(erf.outputs[0]!, add)) continue;
    found.push({ x, tail, interior });
  }
  return found;
}
