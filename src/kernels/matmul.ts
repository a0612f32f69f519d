// Launcher for the strided batched matmul (shaders/matmul.wgsl), f32 activations × f32 or packed-f16 weights.
// Not a general einsum: A is row-major with a row stride; W is [N,K] (transW, PyTorch Linear) or [K,N].

import { type Access, f32, type GpuContext } from "../gpu/context.ts";
import { type RowChunkedTensor, type Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import { epilogueBindings, layoutParams, type MatmulLayout, matmulOutput } from "./_epilogue.ts";
import { matmulWindows, planWindows, windowBudget, windowsApplies } from "./matmul_windows.ts";
import { type GemvLnPrologue, gemvRows, gemvRowsApplies } from "./gemv.ts";
import {
  emulatedTensorCores,
  gemmF16Math,
  gemmTiles,
  gemmTilesApplies,
  type GemmVariant,
  gemmVariantOverride,
  gemmVariantUnsupported,
} from "./gemm.ts";
import { cpuMatmulSchedule, gpuGemmClass, gpuGemmVariant } from "./choices.ts";
import { type TensorCoreMode, tensorCoreMode } from "../gpu/env.ts";

export interface MatmulOptions extends MatmulLayout {
  /** W is [N,K] (true: y = x·Wᵀ as nn.Linear) or [K,N]. Default true. */
  transW?: boolean;
  /** Schedule override (tests, benchmarks); default "auto" picks one from the shapes and the adapter. */
  variant?: MatmulVariant | "auto";
  /** false forces the scalar-load path of the register-tiled schedules (tests). */
  vec4?: boolean;
  /**
   * W is a constant weight (a model parameter that is never rewritten): CPU adapters may then keep a repacked
   * copy of it for the "windows" schedule (src/kernels/matmul_windows.ts). Never set it for activations.
   */
  constantW?: boolean;
  /** GPU decode rows (M <= 8): the GEMV variant by name (src/kernels/gemv.ts); default: the backend's choice. */
  gemv?: string;
}

/**
 * Schedules of shaders/matmul.wgsl. "tiled": workgroup-memory tiles (GPUs, M > 8). "direct": register tiles read
 * straight from storage (CPU adapters such as lavapipe, M > 8). "gemv": M <= 8 (decode steps), K split over the
 * invocations of a workgroup and the partial tiles summed in workgroup memory. "ubo": CPU adapters, M >= 32,
 * W [N,K], K <= 1024 and a multiple of 4, batch 1: A is copied into 64 KiB uniform windows (lavapipe reads uniform
 * buffers with a branchless gather and storage buffers with a per-lane loop), 16x4 outputs per invocation.
 * "windows": CPU adapters, weights (options.constantW: W repacked once and cached) and activations from M = 64
 * (W repacked per call, [K,N]-stored f32 W too); both operands read from uniform windows, a 3-16 x 8-12 register
 * tile per invocation, one launch per batch element (src/kernels/matmul_windows.ts).
 */
export type MatmulVariant = "tiled" | "direct" | "gemv" | "ubo" | "windows";

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
    /** int8 W: its scale group (0 or absent otherwise). */
    group?: number;
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
    case "ubo":
      return { variant, mb: 4, nb: 1, wgx: 8, wgy: 1, rows: 16, cols: 32 };
    case "windows": {
      const w = planWindows(s.M, s.N, s.K, s.f16, s.group ?? 0, windowBudget(ctx));
      const nb = Math.ceil((w.nw * w.cpl) / 4);
      return { variant, mb: Math.ceil(w.r / 4), nb, wgx: 8, wgy: 1, rows: w.ra, cols: w.nw * w.gw * 8 };
    }
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
  check(a.dtype === "f32", "matmul", () => `A must be f32, got ${a.dtype}`);
  check(
    w.dtype === "f32" || w.dtype === "f16" || w.dtype === "i8",
    "matmul",
    () => `W must be f32, f16 or i8, got ${w.dtype}`,
  );
  if (o.bias) {
    check(
      o.bias.dtype === "f32" || o.bias.dtype === "f16",
      "matmul",
      () => `bias must be f32 or f16, got ${o.bias!.dtype}`,
    );
  }
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N);
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0;
  const aOff = o.aOff ?? 0, wOff = o.wOff ?? 0;
  const i8 = w.dtype === "i8";
  if (i8) {
    const g = w.quant?.group ?? 0;
    check(!!w.quant, "matmul", () => `i8 W [${w.shape}] has no scales`);
    check(transW, "matmul", "i8 W must be [N,K] (transW)");
    check(
      K % g === 0 && ldw % g === 0 && wOff % g === 0 && wBs % g === 0,
      "matmul",
      () => `i8 W: K=${K}, ldw=${ldw}, wOff=${wOff} and the batch stride must be multiples of its group ${g}`,
    );
  }
  check(
    aOff + (batch - 1) * aBs + (M - 1) * lda + K <= a.size,
    "matmul",
    () => `A [${a.shape}] too small for M=${M} K=${K}`,
  );
  const wNeed = wOff + (batch - 1) * wBs + (transW ? (N - 1) * ldw + K : (K - 1) * ldw + N);
  check(wNeed <= w.size, "matmul", () => `W [${w.shape}] too small for N=${N} K=${K}`);
  const f16 = w.dtype === "f16";
  // Windows: a batch runs as one launch per batch element. A constant W (shared by the batch) is packed once and
  // cached; any other W is packed for the call (worth it from M = 64 rows on: the packing reads each W element
  // once, the matmul M times), [K,N]-stored W included (f32 only).
  const group = w.quant?.group ?? 0;
  const windowsOk = windowsApplies({ K, ldw, wOff, f16, group }) &&
    (o.constantW ? transW && (batch === 1 || wBs === 0) : transW || !f16);
  const auto = (o.variant ?? "auto") === "auto";
  // CPU adapters: the schedule this backend measured fastest for the shape class (src/kernels/choices.ts).
  // "ubo" where it cannot run (M < 32, batched, unaligned) falls back to "windows" as if that were the pick.
  const cpuPick = ctx.gpu.isFallback ? cpuMatmulSchedule(ctx, M, K) : null;
  const m4 = (x: number) => x % 4 === 0;
  const uboOk = transW && batch === 1 && m4(K) && K <= UBO_MAX_K && m4(lda) && m4(aOff) && m4(ldw) &&
    m4(wOff) &&
    o.vec4 !== false;
  const windowsPick = cpuPick === "windows" || (cpuPick === "ubo" && !(uboOk && M >= 32));
  if (
    o.variant === "windows" || (auto && windowsOk && windowsPick && (o.constantW || M >= 64))
  ) {
    check(
      windowsOk,
      "matmul",
      () => `the windows schedule cannot take this W (K=${K}, transW=${transW}, ${w.dtype})`,
    );
    const plan = planMatmul(ctx, { M, N, K, batch, transW, f16, group, variant: "windows" });
    return { plan, vec4: true, name: "matmul_windows", defines: {} };
  }
  let plan = planMatmul(ctx, { M, N, K, batch, transW, f16, variant: o.variant });
  if (plan.variant === "ubo" && !uboOk) {
    plan = planMatmul(ctx, { M, N, K, batch, transW, f16: false, variant: "direct" });
  } else if (
    plan.variant === "direct" && auto && uboOk && M >= 32 && cpuPick !== null && cpuPick !== "direct"
  ) {
    plan = planMatmul(ctx, { M, N, K, batch, transW, f16: false, variant: "ubo" });
  }
  const bindingDefines = operandDefines(w, o);
  if (plan.variant === "ubo") {
    return {
      plan,
      vec4: true,
      name: "matmul_ubo",
      defines: {
        ...bindingDefines,
        TRANS_W: true,
        GELU: !!o.gelu,
        VEC4: true,
        UBO_A: true,
      },
    };
  }
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
    ...bindingDefines,
    TRANS_W: transW,
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

/**
 * Weight dtype, epilogue operands and their binding numbers (W at 2, then the i8 scales, bias, residual, C), as
 * shaders/matmul.wgsl declares them.
 */
function operandDefines(w: Tensor, o: MatmulOptions): Record<string, boolean | number> {
  const i8 = w.dtype === "i8";
  const d: Record<string, boolean | number> = {
    W_F16: w.dtype === "f16",
    W_I8: i8,
    ...epilogueBindings(o, i8 ? [w.quant!.scales] : []).defines,
  };
  if (i8) {
    d.QG = w.quant!.group;
    d.B_WS = 3;
  }
  return d;
}

/** C = alpha·A·op(W) (+bias) (GELU) (+resid). Returns C (a new [batch·M, N] tensor unless `out` is given). */
export function matmul(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  const big = (t?: Tensor) => !!t && t.byteLength > ctx.maxBinding;
  if (big(a) || big(o.out) || big(o.resid) || (!o.out && (o.batch ?? 1) * o.M * o.N * 4 > ctx.maxBinding)) {
    return matmulRowBlocks(ctx, a, w, o);
  }
  return matmulWhole(ctx, a, w, o);
}

/**
 * A matmul whose A, C or residual exceeds the max storage binding: one launch per batch element and block of output
 * rows, each binding only the rows of A / C / R it touches (views at the storage offset alignment). W is bound whole.
 */
function matmulRowBlocks(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  const { M, N, K } = o;
  const batch = o.batch ?? 1, transW = o.transW ?? true;
  const lda = o.lda ?? K, ldw = o.ldw ?? (transW ? K : N), ldc = o.ldc ?? N, ldr = o.ldr ?? ldc;
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0, cBs = o.cBatchStride ?? M * ldc;
  const rBs = o.rBatchStride ?? cBs;
  const c = matmulOutput(ctx, "matmul", o);
  check(
    (o.aOff ?? 0) + (batch - 1) * aBs + (M - 1) * lda + K <= a.size,
    "matmul",
    () => `A [${a.shape}] too small for M=${M} K=${K}`,
  );
  // Elements a view may span: the limit less one alignment of slack (a view starts up to that much early).
  const span = Math.floor(ctx.maxBinding / 4) - ctx.gpu.limits.minStorageBufferOffsetAlignment / 4;
  const fit = (ld: number, width: number) => ld === 0 ? M : Math.floor((span - width) / ld) + 1;
  const rows = Math.min(M, fit(lda, K), fit(ldc, N), o.resid ? fit(ldr, N) : M);
  check(
    rows >= 1,
    "matmul",
    () =>
      `one row of A (K=${K}) or C (N=${N}) exceeds this adapter's max storage binding (${ctx.maxBinding} bytes)`,
  );
  for (let b = 0; b < batch; b++) {
    for (let r0 = 0; r0 < M; r0 += rows) {
      const m = Math.min(rows, M - r0);
      const a0 = (o.aOff ?? 0) + b * aBs + r0 * lda, c0 = (o.cOff ?? 0) + b * cBs + r0 * ldc;
      const av = ctx.alignedView(a, a0, a0 + (m - 1) * lda + K);
      const cv = ctx.alignedView(c, c0, c0 + (m - 1) * ldc + N);
      const sub: MatmulOptions = {
        ...o,
        M: m,
        batch: 1,
        lda,
        ldw,
        ldc,
        aOff: av.off,
        wOff: (o.wOff ?? 0) + b * wBs,
        cOff: cv.off,
        aBatchStride: undefined,
        wBatchStride: undefined,
        cBatchStride: undefined,
        rBatchStride: undefined,
        out: cv.t,
      };
      if (o.resid) {
        const r0e = (o.rOff ?? 0) + b * rBs + r0 * ldr;
        const rv = ctx.alignedView(o.resid, r0e, r0e + (m - 1) * ldr + N);
        Object.assign(sub, { resid: rv.t, rOff: rv.off, ldr });
      }
      matmulWhole(ctx, av.t, w, sub);
    }
  }
  return c;
}

/**
 * The tensor-core GEMMs COGVIEW2_TENSOR_CORES selects, the first one this device can run with the weights' dtype:
 * "1" (precise) A split into f16 hi + lo (and f32 W likewise), which holds the golden tolerances (`deno task
 * conformance --tensor-cores-emulated`); 128×256 tiles first (f32 W needs more workgroup memory than they leave:
 * the 128×128 one then); "fast": A rounded to f16, the variant fastest at the published SR shapes on an H200
 * (session 8, `bench --only gemm` with the toggles: 32-35 TFLOP/s vs 30-32 for the f32-FMA tiles; the whole batch-8
 * pipeline 31.87 s vs 46.5; bench/results/2026-12-04-h200/README.md), which misses the golden tolerances by a hair
 * (CogLM hidden 2.15e-3 vs 2e-3). The precise ones are not measured on a GPU yet.
 */
export const TENSOR_CORE_GEMMS: Record<Exclude<TensorCoreMode, "off">, readonly GemmVariant[]> = {
  precise: ["gemm_sgmat_128x256_v4_precise", "gemm_sgmat_v4_precise"],
  fast: ["gemm_sgmat_128x256_v4", "gemm_sgmat_v4"],
};
/** The tensor-core GEMM COGVIEW2_TENSOR_CORES=1 takes with f16 weights (TENSOR_CORE_GEMMS.precise[0]). */
export const TENSOR_CORE_GEMM: GemmVariant = TENSOR_CORE_GEMMS.precise[0];

/**
 * The GEMM variant matmul() runs for an M×N weight product (W of `wDtype`) on a GPU, and whether COGVIEW2_GEMM
 * forced it: that variable's; else, with COGVIEW2_TENSOR_CORES (`mode`; a context of withEmulatedTensorCores: its
 * own), the first of TENSOR_CORE_GEMMS[mode] this
 * device can run for the SR-sized classes (narrowN, wide); else the table's (choices.ts gpuGemm).
 */
export function gpuGemmPick(
  ctx: GpuContext,
  M: number,
  N: number,
  mode: TensorCoreMode = emulatedTensorCores(ctx)?.mode ?? tensorCoreMode(),
  wDtype: "f16" | "f32" = "f16",
): { variant: GemmVariant; forced: boolean } {
  const forced = gemmVariantOverride();
  if (forced) return { variant: forced, forced: true };
  if (mode !== "off" && gpuGemmClass(M, N) !== "smallM") {
    const tc = TENSOR_CORE_GEMMS[mode].find((v) => !gemmVariantUnsupported(ctx, v, false, wDtype));
    if (tc) return { variant: tc, forced: false };
  }
  return { variant: gpuGemmVariant(ctx, M, N), forced: false };
}

function matmulWhole(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  // GPUs: decode rows (M <= 8) read each weight once in coalesced loads (src/kernels/gemv.ts).
  const gemv = (o.variant ?? "auto") === "auto" && !ctx.gpu.isFallback && gemvRowsApplies(w, o);
  if (gemv) return gemvRows(ctx, a, w, o);
  // GPUs: weight products (W [N, K]) take the register-blocked tiles (src/kernels/gemm.ts).
  if ((o.variant ?? "auto") === "auto" && !ctx.gpu.isFallback && o.M > 8) {
    // gpuGemmPick's variant; the default tiling where it does not fit the layout or the device.
    const f16Math = gemmF16Math(ctx, w);
    const wDtype = w.dtype === "f32" ? "f32" : "f16";
    const { variant: pick, forced } = gpuGemmPick(ctx, o.M, o.N, undefined, wDtype);
    const fits = gemmTilesApplies(w, o, pick) &&
      (forced || !gemmVariantUnsupported(ctx, pick, f16Math, wDtype));
    const tiling = fits ? pick : "gemm_tiles";
    if (gemmTilesApplies(w, o, tiling)) return gemmTiles(ctx, a, w, { ...o, tiling, f16Math });
  }
  const { M, N, K } = o;
  const transW = o.transW ?? true;
  const batch = o.batch ?? 1;
  const { plan, name, defines } = resolveMatmul(ctx, a, w, o);
  if (plan.variant === "ubo") return matmulUbo(ctx, a, w, o, defines);
  if (plan.variant === "windows") return launchWindows(ctx, a, w, o);
  const ldw = o.ldw ?? (transW ? K : N);
  const c = matmulOutput(ctx, "matmul", o);
  const scales = w.quant?.scales;
  const ep = epilogueBindings(o, scales ? [scales] : []);
  const bindings = ep.access;
  const k = ctx.kernel({ name, shader: "matmul.wgsl", defines, bindings });
  const params = layoutParams({ ...o, ldw });
  const bufs = ep.tensors(a, w, c);
  ctx.dispatch(k, params, bufs, [Math.ceil(N / plan.cols), Math.ceil(M / plan.rows), batch]);
  return c;
}

/** The "windows" schedule: checks C/bias/resid like the other schedules, then src/kernels/matmul_windows.ts. */
function launchWindows(ctx: GpuContext, a: Tensor, w: Tensor, o: MatmulOptions): Tensor {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  const transW = o.transW ?? true;
  const lda = o.lda ?? K, ldc = o.ldc ?? N, ldr = o.ldr ?? ldc;
  const aBs = o.aBatchStride ?? M * lda, cBs = o.cBatchStride ?? M * ldc, rBs = o.rBatchStride ?? cBs;
  const wBs = o.wBatchStride ?? 0;
  const c = matmulOutput(ctx, "matmul", o);
  for (let b = 0; b < batch; b++) {
    matmulWindows(ctx, a, w, c, {
      M,
      N,
      K,
      lda,
      aOff: (o.aOff ?? 0) + b * aBs,
      ldw: o.ldw ?? (transW ? K : N),
      wOff: (o.wOff ?? 0) + b * wBs,
      wKN: !transW,
      ldc,
      cOff: (o.cOff ?? 0) + b * cBs,
      alpha: o.alpha ?? 1,
      bias: o.bias,
      biasOff: o.biasOff ?? 0,
      gelu: !!o.gelu,
      resid: o.resid,
      rOff: (o.rOff ?? 0) + b * rBs,
      ldr,
      constantW: !!o.constantW,
    });
  }
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
  o: {
    M: number;
    cols?: number;
    lda?: number;
    aOff?: number;
    out?: Tensor;
    constantW?: boolean;
    variant?: MatmulVariant;
    /** The rows made in the GEMV's prologue (gemvRows `ln`; decode rows, every chunk a GEMV layout). */
    ln?: GemvLnPrologue;
  },
): Tensor {
  const N = o.cols ?? w.rows;
  const K = w.cols;
  const c = o.out ?? ctx.empty([o.M, N], "f32");
  // A row-chunked weight is a vocabulary table (logits). On CPU adapters, where the windows schedule cannot take it,
  // the register-tiled schedule beats split-K GEMV for narrow rows (K < 256: 1.7-3x on lavapipe, measured with
  // tools/bench); from K≈768 on GEMV wins. Real GPUs keep the matmul's own choice.
  const narrowOnCpu = ctx.gpu.isFallback && o.constantW && K < 256 &&
    !windowsApplies({ K, ldw: K, wOff: 0, f16: w.dtype === "f16" });
  const variant = o.variant ?? (narrowOnCpu ? "direct" : undefined);
  for (const ch of w.chunks) {
    if (ch.row0 >= N) break;
    const n = Math.min(ch.rows, N - ch.row0);
    if (o.ln) {
      gemvRows(ctx, a, ch.tensor, { M: o.M, N: n, K, ldc: N, cOff: ch.row0, out: c, ln: o.ln });
      continue;
    }
    matmul(ctx, a, ch.tensor, {
      M: o.M,
      N: n,
      K,
      lda: o.lda,
      aOff: o.aOff,
      ldc: N,
      cOff: ch.row0,
      out: c,
      constantW: o.constantW,
      variant,
    });
  }
  return c;
}

// ------------------------------------------------------------------ "ubo" schedule (CPU adapters)

const UBO_WINDOW = 65536; // WebGPU's default maxUniformBufferBindingSize; Au in the shader is 4096 vec4
const UBO_MAX_K = 1024; // a window holds at least one 16-row block

/**
 * The "ubo" schedule: copies A's rows into a pooled buffer bound as a uniform window, then one dispatch per
 * 64 KiB window of A rows (the window placed by the dispatch's dynamic offset).
 */
function matmulUbo(
  ctx: GpuContext,
  a: Tensor,
  w: Tensor,
  o: MatmulOptions,
  defines: Record<string, boolean | number>,
): Tensor {
  const { M, N, K } = o;
  const ldc = o.ldc ?? N, ldr = o.ldr ?? ldc;
  const c = matmulOutput(ctx, "matmul", o);
  const rowBytes = K * 4;
  const rw = Math.floor(UBO_WINDOW / rowBytes / 16) * 16; // rows per window, a multiple of 16
  const windows = Math.ceil(M / rw);
  // A rows, contiguous, in a pooled buffer bound as a uniform window (dynamic offset per window of rows).
  const scratch = ctx.empty([((windows - 1) * rw * rowBytes + UBO_WINDOW) / 4], "f32");
  const lda = o.lda ?? K, aOff = o.aOff ?? 0;
  if (lda === K) {
    const bytes = M * rowBytes;
    ctx.copy({ buffer: a.buffer, offset: a.byteOffset + aOff * 4, size: bytes }, scratch, bytes);
  } else {
    for (let m = 0; m < M; m++) {
      ctx.copy(
        { buffer: a.buffer, offset: a.byteOffset + (aOff + m * lda) * 4, size: rowBytes },
        { buffer: scratch.buffer, offset: scratch.byteOffset + m * rowBytes, size: rowBytes },
        rowBytes,
      );
    }
  }
  const bindings: Access[] = ["uniform", "read"];
  if (w.quant) bindings.push("read");
  if (defines.BIAS) bindings.push("read");
  if (defines.RESID) bindings.push("read");
  bindings.push("write");
  const kernel = ctx.kernel({ name: "matmul_ubo", shader: "matmul.wgsl", defines, bindings });
  const buffers = [
    ctx.uniformWindow(scratch, UBO_WINDOW),
    w,
    ...(w.quant ? [w.quant.scales] : []),
    ...(o.bias ? [o.bias] : []),
    ...(o.resid ? [o.resid] : []),
    c,
  ];
  for (let i = 0; i < windows; i++) {
    ctx.dispatch(
      kernel,
      [
        M,
        N,
        K,
        K,
        o.ldw ?? K,
        ldc,
        0,
        o.wOff ?? 0,
        o.cOff ?? 0,
        0,
        0,
        0,
        f32(o.alpha ?? 1),
        o.biasOff ?? 0,
        o.rOff ?? 0,
        ldr,
        0,
        i * rw,
      ],
      buffers,
      [Math.ceil(N / 32), Math.ceil(Math.min(rw, M - i * rw) / 16), 1],
      [scratch.byteOffset + i * rw * rowBytes],
    );
  }
  scratch.release();
  return c;
}
