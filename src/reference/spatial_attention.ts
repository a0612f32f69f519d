// Plain TypeScript twin of src/kernels/spatial_attention.ts: single-head attention over positions, float64.
// Not batched; q, k, v are [c, n] (NCHW flattened).

export function spatialAttentionRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  o: { c: number; n: number },
): Float32Array {
  const { c, n } = o;
  const out = new Float32Array(c * n);
  const w = new Float64Array(n);
  const scale = c ** -0.5;
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += q[ch * n + i] * k[ch * n + j];
      w[j] = s * scale;
      m = Math.max(m, w[j]);
    }
    let t = 0;
    for (let j = 0; j < n; j++) t += w[j] = Math.exp(w[j] - m);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += v[ch * n + j] * w[j];
      out[ch * n + i] = s / t;
    }
  }
  return out;
}
