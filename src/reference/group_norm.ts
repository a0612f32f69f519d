// Plain TypeScript twin of shaders/group_norm.wgsl: GroupNorm (+SiLU) of one NCHW image in float64.
// Not fast; the obvious two-pass mean/variance.
import { siluRef } from "./matmul.ts";

import { meanRstdRef } from "./layernorm.ts";

export function groupNormRef(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  o: { c: number; groups?: number; eps?: number; silu?: boolean },
): Float32Array {
  const groups = o.groups ?? 32, eps = o.eps ?? 1e-6;
  const hw = x.length / o.c, cpg = o.c / groups, n = cpg * hw;
  const out = new Float32Array(x.length);
  for (let g = 0; g < groups; g++) {
    const base = g * n;
    const { mean, rstd } = meanRstdRef(x, base, n, eps);
    for (let i = 0; i < n; i++) {
      const c = g * cpg + Math.floor(i / hw);
      const y = (x[base + i] - mean) * rstd * gamma[c] + beta[c];
      out[base + i] = o.silu ? siluRef(y) : y;
    }
  }
  return out;
}
