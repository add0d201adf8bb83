import { expect } from 'vitest';

/** Every entry within `rel` of the reference, relative to max(1e-3, |reference|). */
export function expectClose(got: ArrayLike<number>, want: number[], rel: number): void {
  for (let i = 0; i < want.length; i++) {
    const tol = rel * Math.max(1e-3, Math.abs(want[i]!));
    expect(Math.abs(got[i]! - want[i]!), `entry ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
  }
}
