// Launcher for the strided batched matmul (shaders/matmul.wgsl), f32 activations × f32 or packed-f16 weights.
// Not a general einsum: A is row-major with a row stride; W is [N,K] (transW, PyTorch Linear) or [K,N].

import { type GpuContext, f32 } from "../gpu/context.ts";
import { type RowChunkedTensor, type Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";

export interface MatmulOptions {
  M: number;
  N: number;
  K: number;
  /** W is [N,K] (true: y = x·Wᵀ as nn.Linear) or [K,N]. Default true. */
  transW?: boolean;
  batch?: number;
  /** Row strides in elements (default: K for A, K or N for W, N for C). */
  lda?: number;
  ldw?: number;
  ldc?: number;
  /** Element offsets of the first matrix. */
  aOff?: number;
  wOff?: number;
  cOff?: number;
  /** Batch strides in elements (default: dense; W defaults to 0 = shared across the batch). */
  aBatchStride?: number;
  wBatchStride?: number;
  cBatchStride?: number;
  alpha?: number;
  bias?: Tensor;
  biasOff?: number;
  gelu?: boolean;
  /** Residual: C = R + result, R laid out like C (same ldc/batch stride unless given). */
  resid?: Tensor;
  rOff?: number;
  ldr?: number;
  rBatchStride?: number;
  out?: Tensor;
}

/** C = alpha·A·op(W) (+bias) (GELU) (+resid). Returns C (a new [batch·M, N] tensor unless `out` is given). */
export function matmul(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  const { M, N, K } = o;
  const transW = o.transW ?? true;
  const batch = o.batch ?? 1;
  check(a.dtype === "f32", "matmul", `A must be f32, got ${a.dtype}`);
  check(w.dtype === "f32" || w.dtype === "f16", "matmul", `W must be f32 or f16, got ${w.dtype}`);
  if (o.bias) check(o.bias.dtype === w.dtype, "matmul", `bias dtype ${o.bias.dtype} differs from W's ${w.dtype}`);
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N), ldc = o.ldc ?? N;
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0, cBs = o.cBatchStride ?? M * ldc;
  const aOff = o.aOff ?? 0, wOff = o.wOff ?? 0, cOff = o.cOff ?? 0;
  check(aOff + (batch - 1) * aBs + (M - 1) * lda + K <= a.size, "matmul", `A [${a.shape}] too small for M=${M} K=${K}`);
  const wNeed = wOff + (batch - 1) * wBs + (transW ? (N - 1) * ldw + K : (K - 1) * ldw + N);
  check(wNeed <= w.size, "matmul", `W [${w.shape}] too small for N=${N} K=${K}`);
  const c = o.out ?? ctx.empty([batch * M, N], "f32");
  check(cOff + (batch - 1) * cBs + (M - 1) * ldc + N <= c.size, "matmul", `C [${c.shape}] too small for M=${M} N=${N}`);
  const defines = { W_F16: w.dtype === "f16", TRANS_W: transW, BIAS: !!o.bias, RESID: !!o.resid, GELU: !!o.gelu };
  const bindings = ["read", "read", ...(o.bias ? ["read"] : []), ...(o.resid ? ["read"] : []), "write"] as const;
  const k = ctx.kernel({ name: "matmul", shader: "matmul.wgsl", defines, bindings: bindings as unknown as ("read" | "write")[] });
  const ldr = o.ldr ?? ldc, rBs = o.rBatchStride ?? cBs;
  const params = [M, N, K, lda, ldw, ldc, aOff, wOff, cOff, aBs, wBs, cBs, f32(o.alpha ?? 1), o.biasOff ?? 0, o.rOff ?? 0, ldr, rBs];
  const bufs = [a, w, ...(o.bias ? [o.bias] : []), ...(o.resid ? [o.resid] : []), c];
  ctx.dispatch(k, params, bufs, [Math.ceil(N / 64), Math.ceil(M / 64), batch]);
  return c;
}

/**
 * y = x·Wᵀ for a row-chunked W [N,K] (e.g. an embedding table used as the output projection):
 * each chunk writes its column block of C [M,N]. `cols` limits the output to the first `cols` rows of W.
 */
export function matmulChunked(
  ctx: GpuContext,
  a: Tensor,
  w: RowChunkedTensor,
  o: { M: number; cols?: number; lda?: number; aOff?: number; out?: Tensor },
): Tensor {
  const N = o.cols ?? w.rows;
  const K = w.cols;
  const c = o.out ?? ctx.empty([o.M, N], "f32");
  for (const ch of w.chunks) {
    if (ch.row0 >= N) break;
    const n = Math.min(ch.rows, N - ch.row0);
    matmul(ctx, a, ch.tensor, { M: o.M, N: n, K, lda: o.lda, aOff: o.aOff, ldc: N, cOff: ch.row0, out: c });
  }
  return c;
}
