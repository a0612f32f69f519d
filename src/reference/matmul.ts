// Plain TypeScript twins of the matmul and elementwise kernels: slow, obvious, used as test references.

/** C[b,m,n] = alpha·Σk A[b,m,k]·W(b,k,n) (+bias[n]) with W [N,K] when transW else [K,N]; dense layouts. */
export function matmulRef(
  a: Float32Array,
  w: Float32Array,
  o: { M: number; N: number; K: number; batch?: number; transW?: boolean; alpha?: number; bias?: Float32Array; sharedW?: boolean },
): Float32Array {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  const transW = o.transW ?? true;
  const alpha = o.alpha ?? 1;
  const c = new Float32Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const wb = o.sharedW === false ? b * N * K : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const wv = transW ? w[wb + n * K + k] : w[wb + k * N + n];
          s += a[b * M * K + m * K + k] * wv;
        }
        c[b * M * N + m * N + n] = alpha * s + (o.bias ? o.bias[n] : 0);
      }
    }
  }
  return c;
}

/** SwissArmyTransformer v0.2 gelu (tanh approximation), in float64. */
export function geluRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)));
}

export function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}
