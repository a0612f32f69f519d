// Plain TypeScript twins of shaders/softmax.wgsl (float64): softmax with an additive row term, per-row target
// log-probability, row argmax. Not fast.

/** Softmax of each row of `n` values of x·scale + add[r % addRows]. */
export function softmaxRef(
  x: ArrayLike<number>,
  n: number,
  o: { scale?: number; add?: ArrayLike<number> } = {},
): Float32Array {
  const rows = x.length / n, scale = o.scale ?? 1;
  const aRows = o.add ? o.add.length / n : 1;
  const out = new Float32Array(x.length);
  const v = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) {
      v[i] = x[r * n + i] * scale + (o.add ? o.add[(r % aRows) * n + i] : 0);
      m = Math.max(m, v[i]);
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += v[i] = Math.exp(v[i] - m);
    for (let i = 0; i < n; i++) out[r * n + i] = v[i] / s;
  }
  return out;
}

/** [logsumexp, x[target] − logsumexp] per row (0 for a negative target). */
export function logProbRef(x: ArrayLike<number>, n: number, targets: ArrayLike<number>): Float32Array {
  const rows = x.length / n;
  const out = new Float32Array(2 * rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[r * n + i]);
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(x[r * n + i] - m);
    const lse = m + Math.log(s);
    out[2 * r] = lse;
    out[2 * r + 1] = targets[r] >= 0 ? x[r * n + targets[r]] - lse : 0;
  }
  return out;
}

/** First index of each row's maximum. */
export function argmaxRef(x: ArrayLike<number>, n: number): Int32Array {
  const rows = x.length / n;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let bi = 0;
    for (let i = 1; i < n; i++) if (x[r * n + i] > x[r * n + bi]) bi = i;
    out[r] = bi;
  }
  return out;
}
