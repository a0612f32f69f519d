// Kernel benchmarks: matmul GFLOP/s (square f32/f16, decode-shaped GEMV as weight GB/s), a memory-bound kernel's
// GB/s, a plain TypeScript CPU matmul measured in the same run, dispatch overhead and the queue round trip.
// Not a model benchmark (tools/bench/e2e.ts); medians of short bursts, so shared machines give noisy numbers.

import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { add, copy } from "../../src/kernels/elementwise.ts";
import { matmul, type MatmulOptions, resolveMatmul } from "../../src/kernels/matmul.ts";
import { quantizeInt8 } from "../../src/formats/int8.ts";
import {
  GEMM_VARIANTS,
  gemmTiles,
  type GemmTiling,
  type GemmVariant,
  gemmVariantUnsupported,
} from "../../src/kernels/gemm.ts";
import { fillUniform } from "../../src/kernels/fill.ts";
import { geluRef, matmulRef } from "../../src/reference/matmul.ts";
import { compareArrays } from "../../src/reference/compare.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";
import { median, timeBurst } from "./_timing.ts";

const CPU = "cpu_ts_matmul";

/** Values in [-0.5, 0.5) without a generator (only the speed matters here). */
function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 2654435761 + seed) % 1000) / 1000 - 0.5;
  return out;
}

/** The plain TypeScript baseline: C = A·Wᵀ with W [N,K], row-major Float32Arrays, dot products over K. */
export function cpuMatmul(
  a: Float32Array,
  w: Float32Array,
  c: Float32Array,
  M: number,
  N: number,
  K: number,
): void {
  for (let m = 0; m < M; m++) {
    const ao = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ao + k] * w[wo + k];
      c[m * N + n] = s;
    }
  }
}

/** One matmul shape timed with a weight W [N,K] as stored: f32, f16 or int8 (scale groups of `group`). */
export async function benchMatmul(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  s: {
    M: number;
    N: number;
    K: number;
    dtype: "f32" | "f16" | "int8";
    /** int8: the scale group along K (default 64). */
    group?: number;
    iters: number;
    variant?: MatmulOptions["variant"];
    baseline?: boolean;
  },
): Promise<number> {
  const { M, N, K, dtype } = s;
  const a = ctx.upload(filler(M * K, 1), [M, K]);
  const group = s.group ?? 64;
  const w = dtype === "int8"
    ? (() => {
      const { q, scales } = quantizeInt8(filler(N * K, 2), K, group);
      return ctx.uploadInt8(q, scales, [N, K], group);
    })()
    : ctx.upload(filler(N * K, 2), [N, K], dtype);
  const c = ctx.empty([M, N]);
  // W is a weight here (constantW): what linear layers pass; CPU adapters then use the repacked "windows" schedule
  // (the one-time repacking happens in the warm-up burst, outside the timing).
  const o: MatmulOptions = { M, N, K, out: c, variant: s.variant, constantW: true };
  const launch = resolveMatmul(ctx, a, w, o);
  // Enough calls per submit that the queue round trip (~12 ms on lavapipe) is a small share.
  // At least 2 (1024³ takes ~150 ms on lavapipe: one call per burst would carry a whole round trip).
  const reps = Math.max(2, Math.min(64, Math.round(4e9 / (2 * M * N * K))));
  const ms = await timeBurst(ctx, () => matmul(ctx, a, w, o), { reps, iters: s.iters });
  const gflops = 2 * M * N * K / ms / 1e6;
  const params = {
    M,
    N,
    K,
    w: dtype,
    ...(dtype === "int8" ? { group } : {}),
    transW: true,
    kernel: launch.name,
  };
  if (M <= 8) {
    // Bytes of the weight as stored (int8: the codes and the f32 scales).
    const bytes = N * K * (dtype === "f16" ? 2 : dtype === "int8" ? 1 + 4 / group : 4);
    report({ name: "matmul_decode_weight_gbps", params, value: bytes / ms / 1e6, unit: "GB/s" });
    report({ name: "matmul_decode_us", params, value: ms * 1000, unit: "µs" });
  } else {
    report({
      name: "matmul_gflops",
      params,
      value: gflops,
      unit: "GFLOP/s",
      ...(s.baseline ? { baseline: CPU } : {}),
    });
  }
  [a, w, c].forEach((t) => t.release());
  return gflops;
}

/** A GEMM shape of the variant benchmark: C [M, N] = A [M, K]·Wᵀ, W [N, K] f16; `shape` names it in the JSON. */
export interface GemmShape {
  shape: string;
  M: number;
  N: number;
  K: number;
}

/**
 * GPU GEMM variants (src/kernels/gemm.ts GEMM_VARIANTS, `variants` by name; f16Math: f16 arithmetic, adapters with
 * shader-f16 only, opt-in via COGVIEW2_F16_MATH=1) on f16-weight shapes, each reported as gemm_variant_gflops
 * {kernel, shape, M, N, K, w}. Operands are filled on the GPU (nothing large is uploaded); a variant the device
 * cannot run (workgroup memory, invocations) is reported as gemm_variant_skipped with the reason. Before any timing,
 * each variant computes a small odd product against the CPU twin (gemmVariantCheck: on a lent GPU no test has run
 * it); one that gets it wrong is reported as gemm_variant_skipped ("wrong result ...") and not timed, so
 * tools/pick_variants.ts cannot pick it. Returns the GFLOP/s per shape and kernel.
 */
export async function benchGemmVariants(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  shapes: GemmShape[],
  variants: { kernel: string; tiling: GemmVariant; f16Math: boolean }[],
  iters: number,
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  for (const v of variants) {
    const why = gemmVariantUnsupported(ctx, v.tiling, v.f16Math);
    if (why) {
      report({ name: "gemm_variant_skipped", params: { kernel: v.kernel, note: why }, value: 0, unit: "" });
    }
  }
  const run = [];
  for (const v of variants.filter((v) => !gemmVariantUnsupported(ctx, v.tiling, v.f16Math))) {
    // A variant that does not compile or run on this driver is skipped with the error, not the whole suite (the
    // compiler's messages surface at the next sync: drained here, so they are not blamed on the next variant).
    const wrong = await gemmVariantCheck(ctx, v).catch(async (e) => {
      const late = await ctx.sync().then(() => "", (e2) => `; ${(e2 as Error).message}`);
      return `${v.kernel} failed: ${(e as Error).message}${late}`;
    });
    if (wrong) {
      report({ name: "gemm_variant_skipped", params: { kernel: v.kernel, note: wrong }, value: 0, unit: "" });
    } else run.push(v);
  }
  for (const s of shapes) {
    const { M, N, K } = s;
    if (4 * Math.max(M * K, M * N) > ctx.maxBinding) {
      const note = `${
        4 * Math.max(M * K, M * N)
      } bytes of A or C above this adapter's ${ctx.maxBinding}-byte storage binding`;
      report({ name: "gemm_variant_skipped", params: { shape: s.shape, M, N, K, note }, value: 0, unit: "" });
      continue;
    }
    const a = ctx.empty([M, K]), w = ctx.empty([N, K], "f16"), c = ctx.empty([M, N]);
    fillUniform(ctx, a, { seed: 1, scale: 1, offset: 0 });
    fillUniform(ctx, w, { seed: 2, scale: 0.03, offset: 0 });
    const flops = 2 * M * N * K;
    // One call per burst from 0.5 TFLOP (the SR QKV shapes: ~50 ms each at 20 TFLOP/s), keeping a GPU run of every
    // variant at every shape near 20-30 s.
    const reps = flops >= 5e11 ? 1 : Math.max(2, Math.min(64, Math.round(4e10 / flops)));
    const byKernel = new Map<string, number>();
    for (const v of run) {
      const o = { M, N, K, out: c, tiling: v.tiling, f16Math: v.f16Math };
      const ms = await timeBurst(ctx, () => gemmTiles(ctx, a, w, o), { reps, iters });
      const gflops = flops / ms / 1e6;
      byKernel.set(v.kernel, gflops);
      report({
        name: "gemm_variant_gflops",
        params: { M, N, K, w: "f16", kernel: v.kernel, shape: s.shape },
        value: gflops,
        unit: "GFLOP/s",
      });
    }
    out.set(s.shape, byKernel);
    [a, w, c].forEach((t) => t.release());
  }
  return out;
}

/**
 * Null if the variant computes C = 0.5·A·Wᵀ + bias, GELU, + R on a 133×261×72 f16-W product (edge tiles both ways,
 * 4.5 slices of 16) within the tolerance of the CPU twin (f32 arithmetic: atol 1e-4 + rtol 1e-3, looser than
 * tests/kernels/gemm_test.ts for other GPUs' fused multiply-adds; the precise tensor-core variants 1e-4 + 1e-4;
 * f16Math and the plain tensor-core variants, which round A to f16: 2e-2 + 1e-2); else why not.
 */
export async function gemmVariantCheck(
  ctx: GpuContext,
  v: { kernel: string; tiling: GemmVariant; f16Math: boolean },
): Promise<string | null> {
  const M = 133, N = 261, K = 72;
  const a = filler(M * K, 7).map((x) => 2 * x), w = filler(N * K, 11).map((x) => 0.4 * x);
  const bias = filler(N, 13), resid = filler(M * N, 17);
  const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16"), bt = ctx.upload(bias, [N]);
  const rt = ctx.upload(resid, [M, N]);
  try {
    const o = { M, N, K, alpha: 0.5, bias: bt, gelu: true, resid: rt, tiling: v.tiling, f16Math: v.f16Math };
    const c = gemmTiles(ctx, at, wt, o);
    const got = await ctx.readF32(c);
    c.release();
    const want = matmulRef(a, f16BitsToF32(f32ToF16Bits(w)), { M, N, K, alpha: 0.5, bias })
      .map((x, i) => geluRef(x) + resid[i]);
    // The precise tensor-core variants (A split into f16 hi + lo) are held to 1e-4 + 1e-4 (A rounded to f16 errs by
    // ~1e-3 here): on a GPU, the check that the split survives the driver's compiler and the tensor cores' sums.
    const t = GEMM_VARIANTS[v.tiling] as GemmTiling;
    const f16 = v.f16Math || (!!t.sgmat && !t.precise);
    const r = compareArrays(
      got,
      want,
      f16 ? { atol: 2e-2, rtol: 1e-2 } : t.precise ? { atol: 1e-4, rtol: 1e-4 } : { atol: 1e-4, rtol: 1e-3 },
    );
    return r.ok ? null : `${v.kernel}: wrong result on ${M}x${N}x${K} vs the CPU twin: ${r.summary}`;
  } finally {
    [at, wt, bt, rt].forEach((t) => t.release());
  }
}

async function benchMemory(ctx: GpuContext, report: (r: BenchResult) => void, iters: number): Promise<void> {
  const n = 16 * 1024 * 1024; // 64 MiB of f32 per tensor
  const x = ctx.upload(filler(n, 3), [n]), y = ctx.upload(filler(n, 4), [n]), z = ctx.empty([n]);
  const mib = { MiB: 64 };
  const addMs = await timeBurst(ctx, () => add(ctx, x, y, z), { reps: 2, iters });
  report({ name: "elementwise_add_gbps", params: mib, value: 3 * 4 * n / addMs / 1e6, unit: "GB/s" });
  const copyMs = await timeBurst(ctx, () => copy(ctx, x, z), { reps: 2, iters });
  report({ name: "elementwise_copy_gbps", params: mib, value: 2 * 4 * n / copyMs / 1e6, unit: "GB/s" });
  const bufMs = await timeBurst(ctx, () => ctx.copy(x, z), { reps: 2, iters });
  report({ name: "copy_buffer_to_buffer_gbps", params: mib, value: 2 * 4 * n / bufMs / 1e6, unit: "GB/s" });
  [x, y, z].forEach((t) => t.release());
}

async function benchDispatch(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  count: number,
): Promise<void> {
  const x = ctx.upload(filler(64, 5), [64]), y = ctx.upload(filler(64, 6), [64]);
  const outs: Tensor[] = [ctx.empty([64]), ctx.empty([64])];
  const one = (i: number) => add(ctx, x, y, outs[i & 1]);
  one(0);
  await ctx.sync();
  // Recording only: JS-side cost of launcher + params arena + cached bind group + pass encoding.
  let t0 = performance.now();
  for (let i = 0; i < count; i++) one(i);
  const recordUs = (performance.now() - t0) * 1000 / count;
  await ctx.sync();
  t0 = performance.now();
  for (let i = 0; i < count; i++) one(i);
  await ctx.sync();
  const batchedUs = (performance.now() - t0) * 1000 / count;
  t0 = performance.now();
  for (let i = 0; i < count; i++) {
    one(i);
    ctx.flush();
  }
  await ctx.sync();
  const perSubmitUs = (performance.now() - t0) * 1000 / count;
  const params = { dispatches: count, elements: 64 };
  report({ name: "dispatch_record_us", params, value: recordUs, unit: "µs/dispatch" });
  report({ name: "dispatch_one_encoder_us", params, value: batchedUs, unit: "µs/dispatch" });
  report({ name: "dispatch_submit_each_us", params, value: perSubmitUs, unit: "µs/dispatch" });
  // The floor under every readback or sync: submit one tiny dispatch and wait for the queue.
  const rt: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    one(i);
    await ctx.sync();
    rt.push(performance.now() - t0);
  }
  report({ name: "queue_round_trip_ms", params: { dispatches: 1 }, value: median(rt), unit: "ms" });
  [x, y, ...outs].forEach((t) => t.release());
}

function benchCpu(report: (r: BenchResult) => void, n: number, iters: number): number {
  const a = filler(n * n, 7), w = filler(n * n, 8), c = new Float32Array(n * n);
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    cpuMatmul(a, w, c, n, n, n);
    times.push(performance.now() - t0);
  }
  const gflops = 2 * n ** 3 / median(times) / 1e6;
  report({ name: CPU, params: { M: n, N: n, K: n, w: "f32", transW: true }, value: gflops, unit: "GFLOP/s" });
  return gflops;
}

export const matmulSuite: BenchSuite = {
  name: "matmul",
  description:
    "matmul GFLOP/s (square, f32/f16 W), decode GEMV weight GB/s, memory-bound GB/s, CPU TS baseline, " +
    "dispatch overhead",
  async run(ctx, report, { quick }) {
    const iters = quick ? 3 : 5;
    const cpu = new Map<number, number>();
    for (const n of quick ? [256, 512] : [256, 512, 1024]) {
      cpu.set(n, benchCpu(report, n, n >= 1024 ? 1 : iters));
    }
    for (const n of quick ? [256, 512, 1024] : [256, 512, 1024, 2048]) {
      for (const dtype of ["f32", "f16"] as const) {
        const base = cpu.get(n);
        const g = await benchMatmul(ctx, report, {
          M: n,
          N: n,
          K: n,
          dtype,
          iters: n >= 2048 ? 3 : iters,
          baseline: !!base,
        });
        if (base && dtype === "f32") {
          report({
            name: "matmul_speedup_vs_cpu",
            params: { M: n, N: n, K: n, w: dtype },
            value: g / base,
            unit: "x",
            baseline: CPU,
          });
        }
      }
    }
    // The workgroup-memory schedule (what GPUs get) on this adapter, for comparison.
    await benchMatmul(ctx, report, {
      M: 1024,
      N: 1024,
      K: 1024,
      dtype: "f32",
      iters: quick ? 1 : 3,
      variant: "tiled",
    });
    // The GPU GEMM's variants: 4096³ on GPUs (#13's target: ≥ 25 TFLOP/s with f16 weights), 256³ on CPU adapters
    // (where matmul() never routes to it; the run only shows the variants work here).
    // (Every variant at the SR shapes: the gemm suite, tools/bench/gemm.ts.)
    const base = [
      { kernel: "gemm_tiles", tiling: "gemm_tiles" as const, f16Math: false },
      { kernel: "gemm_tiles_1buf", tiling: "gemm_tiles_1buf" as const, f16Math: false },
      ...(ctx.gpu.hasF16
        ? [{ kernel: "gemm_tiles_f16math", tiling: "gemm_tiles" as const, f16Math: true }]
        : []),
    ];
    const sq = (n: number) => ({ shape: `${n}^3`, M: n, N: n, K: n });
    if (ctx.gpu.isFallback) await benchGemmVariants(ctx, report, [sq(256)], base, 1);
    else await benchGemmVariants(ctx, report, (quick ? [4096] : [2048, 4096]).map(sq), base, iters);
    // Before/after on CPU adapters: the earlier schedules ("direct": storage only; "ubo": A in uniform windows,
    // W from storage) beside what auto picks for weights ("windows"), and model shapes: CogLM logits (K=64,
    // N=20000) and an SR projection.
    if (ctx.gpu.isFallback) {
      for (const variant of ["direct", "ubo"] as const) {
        await benchMatmul(ctx, report, { M: 1024, N: 1024, K: 1024, dtype: "f32", iters: 1, variant });
      }
    }
    for (
      const [M, N, K] of quick
        ? [[3600, 192, 64]]
        : [[1, 20000, 64], [8, 20000, 64], [30, 20000, 64], [3600, 192, 64]]
    ) {
      await benchMatmul(ctx, report, { M, N, K, dtype: "f16", iters: quick ? 1 : iters });
      if (ctx.gpu.isFallback && M > 8) {
        await benchMatmul(ctx, report, {
          M,
          N,
          K,
          dtype: "f16",
          iters: quick ? 1 : iters,
          variant: "direct",
        });
      }
    }
    for (const M of quick ? [4] : [1, 4, 8]) {
      await benchMatmul(ctx, report, { M, N: 3072, K: 3072, dtype: "f16", iters });
      // int8 weights (weight-only quantisation, dequantised in registers): groups of 64 and 128 along K.
      for (const group of quick ? [64] : [64, 128]) {
        await benchMatmul(ctx, report, { M, N: 3072, K: 3072, dtype: "int8", group, iters });
      }
    }
    for (const group of quick ? [64] : [64, 128]) {
      await benchMatmul(ctx, report, {
        M: 1024,
        N: 1024,
        K: 1024,
        dtype: "int8",
        group,
        iters: quick ? 1 : 3,
      });
    }
    if (!quick) await benchMatmul(ctx, report, { M: 4, N: 3072, K: 3072, dtype: "f32", iters });
    await benchMemory(ctx, report, iters);
    await benchDispatch(ctx, report, 1000);
  },
};
