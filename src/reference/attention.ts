// Plain TypeScript twin of SAT's standard_attention (transformer_defaults.py, v0.2.12) in float64, with an explicit
// 0/1 mask and additive log-weights, literally: s = (q/√d)·kᵀ + logw; s = s·mask − 10000·(1 − mask); softmax; ·v.
// Not fast; no cache (a cache is just more key rows).

/**
 * q: [rows, heads·d], k/v: [keys, heads·d] (one batch entry), mask/logw: [rows, keys] (or undefined).
 * Returns [rows, heads·d].
 */
export function standardAttentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: {
    heads: number;
    d: number;
    rows: number;
    keys: number;
    mask?: ArrayLike<number>;
    logw?: ArrayLike<number>;
  },
): Float32Array {
  const { heads, d, rows, keys } = o, w = heads * d;
  const out = new Float32Array(rows * w);
  const s = new Float64Array(keys);
  const scale = Math.sqrt(d);
  // SAT skips masking when there is one query row and every key is visible; the formula is the same then.
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < rows; i++) {
      let m = -Infinity;
      for (let j = 0; j < keys; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += (q[i * w + h * d + c] / scale) * k[j * w + h * d + c];
        if (o.logw) dot += o.logw[i * keys + j];
        if (o.mask) {
          const mk = o.mask[i * keys + j];
          dot = dot * mk - 10000 * (1 - mk);
        }
        s[j] = dot;
        m = Math.max(m, dot);
      }
      let sum = 0;
      for (let j = 0; j < keys; j++) sum += s[j] = Math.exp(s[j] - m);
      for (let c = 0; c < d; c++) {
        let a = 0;
        for (let j = 0; j < keys; j++) a += s[j] * v[j * w + h * d + c];
        out[i * w + h * d + c] = a / sum;
      }
    }
  }
  return out;
}

/** The CogLM mask as a dense 0/1 [rows, keys] array: row i sees j < ctxCols or j <= i + causalOffset. */
export function coglmMaskRef(
  rows: number,
  keys: number,
  ctxCols: number,
  causalOffset: number,
): Float32Array {
  const m = new Float32Array(rows * keys);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < keys; j++) m[i * keys + j] = j < ctxCols || j <= i + causalOffset ? 1 : 0;
  }
  return m;
}

/** log_attention_weights as the original builds them: `value` on columns < cols. */
export function logWeightsRef(rows: number, keys: number, cols: number, value: number): Float32Array {
  const m = new Float32Array(rows * keys);
  for (let i = 0; i < rows; i++) for (let j = 0; j < Math.min(cols, keys); j++) m[i * keys + j] = value;
  return m;
}
