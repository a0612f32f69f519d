// Plain TypeScript twin of shaders/layernorm.wgsl: LayerNorm over the last dimension in float64 (PyTorch
// semantics), plus the sandwich residual form. Not fast.

/** LayerNorm of each row of `n` values. */
export function layerNormRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  n: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += n) {
    const { mean, rstd } = meanRstdRef(x, base, n, eps);
    for (let i = 0; i < n; i++) out[base + i] = (x[base + i] - mean) * rstd * gamma[i] + beta[i];
  }
  return out;
}

/** Mean and 1/√(biased variance + eps) of x[base, base + n), two-pass in float64 (LayerNorm and GroupNorm twins). */
export function meanRstdRef(
  x: ArrayLike<number>,
  base: number,
  n: number,
  eps: number,
): { mean: number; rstd: number } {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[base + i];
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (x[base + i] - mean) ** 2;
  return { mean, rstd: 1 / Math.sqrt(q / n + eps) };
}

/** resid + LN(x), elementwise. */
export function layerNormResidualRef(
  x: ArrayLike<number>,
  resid: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  n: number,
  eps: number,
): Float32Array {
  const y = layerNormRef(x, gamma, beta, n, eps);
  for (let i = 0; i < y.length; i++) y[i] += resid[i];
  return y;
}
