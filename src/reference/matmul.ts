// Plain TypeScript twins of the matmul and elementwise kernels: slow, obvious, used as test references.

/** C[b,m,n] = alpha·Σk A[b,m,k]·W(b,k,n) (+bias[n]) with W [N,K] when transW else [K,N]; dense layouts. */
export function matmulRef(
  a: Float32Array,
  w: Float32Array,
  o: {
    M: number;
    N: number;
    K: number;
    batch?: number;
    transW?: boolean;
    alpha?: number;
    bias?: Float32Array;
    sharedW?: boolean;
  },
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

/** x·sigmoid(x) (also GroupNorm+SiLU's twin). */
export function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Layout and epilogue of one strided batched matmul (element strides/offsets, as the launcher takes them). */
export interface StridedMatmulRef {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transW?: boolean;
  lda?: number;
  ldw?: number;
  ldc?: number;
  aOff?: number;
  wOff?: number;
  cOff?: number;
  aBatchStride?: number;
  wBatchStride?: number;
  cBatchStride?: number;
  alpha?: number;
  bias?: Float32Array;
  biasOff?: number;
  gelu?: boolean;
  resid?: Float32Array;
  rOff?: number;
  ldr?: number;
  rBatchStride?: number;
}

/**
 * Writes C[b] = gelu?(alpha·A[b]·op(W[b]) + bias) + R[b] into `c` in place with the launcher's strides and offsets
 * (elements of `c` outside the written matrices keep their values); float64 accumulation.
 */
export function matmulStridedRef(
  a: Float32Array,
  w: Float32Array,
  c: Float32Array,
  o: StridedMatmulRef,
): Float32Array {
  const { M, N, K } = o;
  const transW = o.transW ?? true;
  const batch = o.batch ?? 1;
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N), ldc = o.ldc ?? N;
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0, cBs = o.cBatchStride ?? M * ldc;
  const ldr = o.ldr ?? ldc, rBs = o.rBatchStride ?? cBs;
  const alpha = o.alpha ?? 1;
  for (let b = 0; b < batch; b++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const wi = (o.wOff ?? 0) + b * wBs + (transW ? n * ldw + k : k * ldw + n);
          s += a[(o.aOff ?? 0) + b * aBs + m * lda + k] * w[wi];
        }
        let v = alpha * s + (o.bias ? o.bias[(o.biasOff ?? 0) + n] : 0);
        if (o.gelu) v = geluRef(v);
        if (o.resid) v += o.resid[(o.rOff ?? 0) + b * rBs + m * ldr + n];
        c[(o.cOff ?? 0) + b * cBs + m * ldc + n] = v;
      }
    }
  }
  return c;
}
