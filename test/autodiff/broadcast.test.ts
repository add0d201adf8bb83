import { describe, expect, it } from 'vitest';
import { planSumToShape } from '../../src/autodiff/broadcast.js';

describe('planSumToShape (undoing broadcasting from static shapes)', () => {
  it('emits nothing for provably equal shapes, numeric or symbolic', () => {
    expect(planSumToShape([2, 3], [2, 3])).toEqual({ kind: 'same' });
    expect(planSumToShape(['batch', 'seq', 8], ['batch', 'seq', 8])).toEqual({ kind: 'same' });
    expect(planSumToShape(['batch*seq', 8], ['seq*batch', 8])).toEqual({ kind: 'same' });
  });

  it('reduces a bias over symbolic leading axes without run-time work', () => {
    expect(planSumToShape(['batch', 'seq', 8], [8])).toEqual({ kind: 'reduce', axes: [0, 1], drop: 2 });
    expect(planSumToShape([null, null, 8], [8])).toEqual({ kind: 'reduce', axes: [0, 1], drop: 2 });
  });

  it('reduces kept size-1 axes and drops leading ones', () => {
    expect(planSumToShape([4, 'seq', 8], ['seq', 1])).toEqual({ kind: 'reduce', axes: [0, 2], drop: 1 });
    expect(planSumToShape([1, 3, 8], [3, 8])).toEqual({ kind: 'reduce', axes: [], drop: 1 });
  });

  it('falls back to run time when a symbolic or unknown target dim might be 1', () => {
    expect(planSumToShape([2, 3], ['n', 3])).toEqual({ kind: 'dynamic' });
    expect(planSumToShape(['batch', 3], ['other', 3])).toEqual({ kind: 'dynamic' });
    expect(planSumToShape([null, 3], [null, 3])).toEqual({ kind: 'dynamic' });
    expect(planSumToShape(undefined, [3])).toEqual({ kind: 'dynamic' });
    expect(planSumToShape([3], [2, 3])).toEqual({ kind: 'dynamic' });
  });

  it('a result dim of 1 proves the target dim was 1', () => {
    expect(planSumToShape([1, 3], ['n', 3])).toEqual({ kind: 'same' });
  });
});
