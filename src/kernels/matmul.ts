// Launcher for the strided batched matmul (shaders/matmul.wgsl), f32 activations × f32 or packed-f16 weights.
// Not a general einsum: A is row-major with a row stride; W is [N,K] (transW, PyTorch Linear) or [K,N].

import { type Access, f32, type GpuContext } from "../gpu/context.ts";
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
  /** Schedule override (tests, benchmarks); default "auto" picks one from the shapes and the adapter. */
  variant?: MatmulVariant | "auto";
  /** false forces the scalar-load path of the register-tiled schedules (tests). */
  vec4?: boolean;
}

/**
 * Schedules of shaders/matmul.wgsl. "tiled": workgroup-memory tiles (GPUs, M > 8). "direct": register tiles read
 * straight from storage (CPU adapters such as lavapipe, M > 8). "gemv": M <= 8 (decode steps), K split over the
 * invocations of a workgroup and the partial tiles summed in workgroup memory.
 */
export type MatmulVariant = "tiled" | "direct" | "gemv";

/** How a matmul is launched: schedule, register tile (mb x nb blocks of 4x4) and workgroup shape. */
export interface MatmulPlan {
  variant: MatmulVariant;
  mb: number;
  nb: number;
  wgx: number;
  wgy: number;
  /** Output rows and columns covered by one workgroup. */
  rows: number;
  cols: number;
}

/** Picks the schedule for a shape on this adapter (exported for the benchmark and tests). */
export function planMatmul(
  ctx: GpuContext,
  s: {
    M: number;
    N: number;
    K: number;
    batch: number;
    transW: boolean;
    f16: boolean;
    variant?: MatmulVariant | "auto";
  },
): MatmulPlan {
  const small = s.M <= 8;
  const variant: MatmulVariant = s.variant && s.variant !== "auto"
    ? s.variant
    : small
    ? "gemv"
    : ctx.gpu.isFallback
    ? "direct"
    : "tiled";
  switch (variant) {
    case "tiled":
      return { variant, mb: 1, nb: 1, wgx: 16, wgy: 16, rows: 64, cols: 64 };
    case "gemv": {
      // K split over lid.x (adjacent invocations read adjacent K chunks of the same W rows: a few long
      // streams instead of one per column), column blocks over lid.y; one row block of 4 or 8 rows.
      const mb = s.M <= 4 ? 1 : 2;
      // CPU: one SIMD group of 8 splits K and each invocation keeps 8-16 columns (A loads amortised);
      // GPU: 32 invocations split K, 4 columns each, for many workgroups.
      const [wgx, wgy, nb] = ctx.gpu.isFallback ? [8, 8, mb === 1 ? 4 : 2] : [32, 4, 1];
      return { variant, mb, nb, wgx, wgy, rows: 4 * mb, cols: wgy * 4 * nb };
    }
    case "direct": {
      // 16x8 per invocation; 64 invocations as 8x8 (a 128x64 tile), or 64x1 when M is small. Two shapes only:
      // each is a separate pipeline, and lavapipe takes ~2 s to compile one.
      const mb = 4, nb = 2;
      const [wgx, wgy] = s.M <= 16 ? [64, 1] : [8, 8];
      return { variant, mb, nb, wgx, wgy, rows: wgy * 4 * mb, cols: wgx * 4 * nb };
    }
  }
}

/** The vec4 path needs every K-run to start on a multiple of 4 elements and whole vec4s inside W. */
function vec4Ok(
  o: {
    K: number;
    lda: number;
    aOff: number;
    aBs: number;
    ldw: number;
    wOff: number;
    wBs: number;
    wEnd: number;
    wSize: number;
  },
): boolean {
  const m4 = (x: number) => x % 4 === 0;
  return m4(o.K) && m4(o.lda) && m4(o.aOff) && m4(o.aBs) && m4(o.ldw) && m4(o.wOff) && m4(o.wBs) &&
    o.wEnd <= o.wSize;
}

/** What `matmul` launches for given operands: the plan, whether vec4 loads apply, and the shader defines. */
export interface MatmulLaunch {
  plan: MatmulPlan;
  vec4: boolean;
  name: string;
  defines: Record<string, boolean | number>;
}

/** Validates the operands and picks the schedule, load path and defines (tests and benchmarks inspect it). */
export function resolveMatmul(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): MatmulLaunch {
  const { M, N, K } = o;
  const transW = o.transW ?? true;
  const batch = o.batch ?? 1;
  check(a.dtype === "f32", "matmul", `A must be f32, got ${a.dtype}`);
  check(w.dtype === "f32" || w.dtype === "f16", "matmul", `W must be f32 or f16, got ${w.dtype}`);
  if (o.bias) {
    check(o.bias.dtype === w.dtype, "matmul", `bias dtype ${o.bias.dtype} differs from W's ${w.dtype}`);
  }
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N);
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0;
  const aOff = o.aOff ?? 0, wOff = o.wOff ?? 0;
  check(
    aOff + (batch - 1) * aBs + (M - 1) * lda + K <= a.size,
    "matmul",
    `A [${a.shape}] too small for M=${M} K=${K}`,
  );
  const wNeed = wOff + (batch - 1) * wBs + (transW ? (N - 1) * ldw + K : (K - 1) * ldw + N);
  check(wNeed <= w.size, "matmul", `W [${w.shape}] too small for N=${N} K=${K}`);
  const plan = planMatmul(ctx, { M, N, K, batch, transW, f16: w.dtype === "f16", variant: o.variant });
  const vec4 = plan.variant !== "tiled" && o.vec4 !== false && vec4Ok({
    K,
    lda,
    aOff,
    aBs: batch > 1 ? aBs : 0,
    ldw,
    wOff,
    wBs: batch > 1 ? wBs : 0,
    wEnd: transW ? 0 : wNeed + ((4 - N % 4) % 4),
    wSize: w.size,
  });
  const defines = {
    W_F16: w.dtype === "f16",
    TRANS_W: transW,
    BIAS: !!o.bias,
    RESID: !!o.resid,
    GELU: !!o.gelu,
    ...(plan.variant === "tiled" ? {} : {
      DIRECT: true,
      VEC4: vec4,
      SPLITK: plan.variant === "gemv",
      MB2: plan.mb >= 2,
      MB4: plan.mb === 4,
      NB2: plan.nb >= 2,
      NB4: plan.nb === 4,
      TM: 4 * plan.mb,
      TN: 4 * plan.nb,
      WGX: plan.wgx,
      WGY: plan.wgy,
    }),
  };
  return { plan, vec4, name: `matmul_${plan.variant}${vec4 ? "_vec4" : ""}`, defines };
}

/** C = alpha·A·op(W) (+bias) (GELU) (+resid). Returns C (a new [batch·M, N] tensor unless `out` is given). */
export function matmul(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  const { M, N, K } = o;
  const transW = o.transW ?? true;
  const batch = o.batch ?? 1;
  const { plan, name, defines } = resolveMatmul(ctx, a, w, o);
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N), ldc = o.ldc ?? N;
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0, cBs = o.cBatchStride ?? M * ldc;
  const ldr = o.ldr ?? ldc, rBs = o.rBatchStride ?? cBs;
  const c = o.out ?? ctx.empty([batch * M, N], "f32");
  check(c.dtype === "f32", "matmul", `C must be f32, got ${c.dtype}`);
  check(
    (o.cOff ?? 0) + (batch - 1) * cBs + (M - 1) * ldc + N <= c.size,
    "matmul",
    `C [${c.shape}] too small for M=${M} N=${N}`,
  );
  if (o.resid) {
    check(
      (o.rOff ?? 0) + (batch - 1) * rBs + (M - 1) * ldr + N <= o.resid.size,
      "matmul",
      `resid [${o.resid.shape}] too small for M=${M} N=${N}`,
    );
  }
  if (o.bias) {
    check((o.biasOff ?? 0) + N <= o.bias.size, "matmul", `bias [${o.bias.shape}] too small for N=${N}`);
  }
  const bindings: Access[] = [
    "read",
    "read",
    ...(o.bias ? ["read" as const] : []),
    ...(o.resid ? ["read" as const] : []),
    "write",
  ];
  const k = ctx.kernel({ name, shader: "matmul.wgsl", defines, bindings });
  const params = [
    M,
    N,
    K,
    lda,
    ldw,
    ldc,
    o.aOff ?? 0,
    o.wOff ?? 0,
    o.cOff ?? 0,
    aBs,
    wBs,
    cBs,
    f32(o.alpha ?? 1),
    o.biasOff ?? 0,
    o.rOff ?? 0,
    ldr,
    rBs,
  ];
  const bufs = [a, w, ...(o.bias ? [o.bias] : []), ...(o.resid ? [o.resid] : []), c];
  ctx.dispatch(k, params, bufs, [Math.ceil(N / plan.cols), Math.ceil(M / plan.rows), batch]);
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
