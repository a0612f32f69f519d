// Per-backend kernel choices: which variant of a kernel runs on which backend and adapter, decided by measurement
// (`deno task bench --compare-backends`, recorded under bench/results/). One table, read by the launchers; tests
// check each entry against the recorded figures (tests/kernels/choices_test.ts). Not a tuner: the figures are
// measured by the bench and written here by hand.

import type { GpuContext } from "../gpu/context.ts";
import type { GemmVariant } from "./gemm.ts";
import { readEnv } from "../gpu/env.ts";

/**
 * How the row kernels (softmax, logProb, layerNorm) reduce a row (shaders/row_reduce.wgsl). "regs" / "regs1024": the
 * layer norms hold their row in registers over "wide" reductions of 256 / 1024 invocations (1024 where the device
 * allows it, else 256); the other row kernels take them as "wide" of that width.
 */
export type RowReduce = "subgroup" | "narrow" | "workgroup" | "wide" | "regs" | "regs1024";
export const ROW_REDUCES: readonly RowReduce[] = [
  "workgroup",
  "narrow",
  "subgroup",
  "wide",
  "regs",
  "regs1024",
];
/** Rows up to which a row kernel counts as a decode step's (BackendChoices.rowReduceDecode). */
export const DECODE_ROWS = 8;

/** The matmul shape classes whose schedule CPU adapters choose per backend. */
export type CpuMatmulClass = "decode" | "narrowK" | "wideK";
/**
 * CPU adapters' matmul schedule per shape class: "windows" (src/kernels/matmul_windows.ts, where it applies),
 * "ubo" (A in uniform windows, M >= 32), "direct" (storage register tiles; M <= 8: the split-K "gemv").
 */
export type CpuMatmulSchedule = "windows" | "ubo" | "direct";

/** decode: M <= 8 rows (generation steps); narrowK: K <= 128 (the tiny fixture's widths, SR heads); wideK: the rest. */
export function cpuMatmulClass(M: number, K: number): CpuMatmulClass {
  return M <= 8 ? "decode" : K <= 128 ? "narrowK" : "wideK";
}

/**
 * The GPU GEMM shape classes (matmul() on real GPUs, M > 8): smallM: M <= 256 (CogLM's prompt, short batches);
 * narrowN: N <= 4096 (the SR dense and 4h→h projections, N 2560); wide: the rest (SR qkv 7680, h→4h 10240, 4096³).
 */
export type GpuGemmClass = "smallM" | "narrowN" | "wide";

export function gpuGemmClass(M: number, N: number): GpuGemmClass {
  return M <= 256 ? "smallM" : N <= 4096 ? "narrowN" : "wide";
}

/** Decode row classes of the GEMV choice: M = 1, 2-4, 5-8. */
export type GemvRows = "m1" | "m2_4" | "m5_8";

/** The GEMV variant the table names for M decode rows on this context. */
export function gemvChoice(ctx: GpuContext, M: number): string {
  const g = choices(ctx).gemv;
  return typeof g === "string" ? g : g[M <= 1 ? "m1" : M <= 4 ? "m2_4" : "m5_8"];
}

export interface BackendChoices {
  /**
   * "subgroup": one subgroup per row (subgroupAdd / subgroupMax, no barriers) where the device has `subgroups` with
   * a fixed size (else "workgroup"); "narrow": 8 invocations and a tree in workgroup memory; "workgroup": 64
   * invocations and the same tree; "wide": 256 invocations, subgroup sums then the partials through workgroup memory
   * where subgroups exist, else the tree (GPUs: the H200 profile showed the 64-wide layer norm of a decode step's rows
   * at ~69 µs per dispatch, latency-bound; "wide" is not measured on a GPU yet).
   */
  rowReduce: RowReduce;
  /**
   * The row reduction of row kernels over at most DECODE_ROWS rows (a decode step's layer norms); absent: rowReduce.
   * dawn/gpu: "regs1024", measured on the H200 (session 8, `bench --only choices`: fastest at every decode-row shape,
   * layernorm_resid_post 1 row × 3072 26.4 µs vs regs 28.9, wide 34.6, workgroup 61.5; the session-6 64-wide kernel
   * was ~69 µs per dispatch in the b8 profile). wgpu/gpu: "regs", not measured on wgpu. COGVIEW2_ROW_REDUCE overrides both entries, COGVIEW2_ROW_REDUCE_DECODE this one;
   * `bench --only choices` times every variant.
   */
  rowReduceDecode?: RowReduce;
  /** CPU adapters only (real GPUs take gemmTiles / gemvRows / tiled): the schedule per shape class. */
  cpuMatmul: Record<CpuMatmulClass, CpuMatmulSchedule>;
  /**
   * Real GPUs only (CPU adapters never take gemmTiles): the GEMM variant (src/kernels/gemm.ts GEMM_VARIANTS) per
   * shape class; COGVIEW2_GEMM overrides it. Chosen from `bench --only gemm` (gemm_variant_gflops per shape).
   */
  gpuGemm: Record<GpuGemmClass, GemmVariant>;
  /**
   * GPU adapters only (CPU adapters never route decode rows to it): the decode GEMV variant matmul() uses for M <= 8
   * (a name of GEMV_VARIANTS in src/kernels/gemv.ts; "rows8" is the original kernel), one for every M or one per
   * row class (m1: M = 1, batch-1 decode; m2_4; m5_8). Compare them with
   * `deno run -A --unstable-webgpu tools/bench.ts --gpu dawn --only gemv` (gemv_variant_gbps, gemv_step_ms).
   */
  gemv: string | Record<GemvRows, string>;
  /**
   * Real GPUs only: the SR local attention's schedule (src/kernels/local_attention.ts): "query" (one invocation per
   * query, K/V read per query; measured in the published runs so far) or "tiles" (a workgroup per 16×4 queries reads
   * each K/V cell once through workgroup memory). `bench --only local_attention` reports both side by side.
   */
  srAttention: "query" | "tiles";
  /**
   * Invocations per workgroup of the fused attention kernel (shaders/attention.wgsl: a CogLM decode step's attention,
   * one workgroup per (row, head, batch)); COGVIEW2_ATTENTION_WG overrides it. CPU adapters: 32 (10-25% faster than
   * 64 on lavapipe). GPUs: 256 — measured on the H200 with Dawn (session 8, `bench --only decode_attention`, 48 heads
   * × 64, f16 caches, K/V store fused): fastest of 32/64/128/256 at every key count and batch, e.g. batch 1, 420 keys
   * 57.3 µs vs 64-wide 2-4x slower; the CogLM b1 stage went 6.46 → 3.14 s with this and the decode rows' regs1024
   * (the session-6 settings vs session 8's, same call). wgpu/gpu: 256, not measured on wgpu.
   * `bench --only decode_attention` times each width with each key split (attentionSplit) at the published shapes.
   */
  attentionWg: 32 | 64 | 128 | 256;
  /**
   * Key splits of the fused attention's one-row decode (flash-decoding, shaders/attention.wgsl SPLIT + combine;
   * src/kernels/attention.ts attentionSplitFor); COGVIEW2_ATTENTION_SPLIT overrides it. CPU adapters: 1 (lavapipe
   * has 2 cores; more workgroups only add the combine dispatch). dawn/gpu: 1, measured on the H200 (session 8, 256
   * wide, µs per call at batch 1: 64 keys S=1 30.3 vs S=2..16 46-55; 200 keys 37.8 vs 48-55; 420 keys 57.3 vs best
   * S=6 53.9, 6% for 48 more dispatches per step while the b1 step is host-bound at ~20 µs of host time per
   * dispatch; batch 8: S=1 fastest everywhere). wgpu/gpu: 1 as well (the same WGSL; not measured on wgpu).
   * `bench --only decode_attention` times S = 1..16 side by side.
   */
  attentionSplit: number;
  /**
   * Real GPUs only (CPU adapters never take the GEMV): whether a batch-1-ish CogLM decode step folds its sandwich
   * layer-norm chains into the GEMV that consumes them (shaders/gemv_rows.wgsl LNPRO: third LN + residual +
   * post-attention LN into h→4h, fourth LN + residual + next input LN into the next layer's QKV, the last layer's
   * fourth + final LN into the logits GEMV), 96 fewer dispatches per 48-layer step (344 → 248; 244 with
   * clusterFused), where the rows fit workgroup memory (src/kernels/gemv.ts
   * gemvLnApplies: 1 row of 3072 at the WebGPU default 16 KiB). The H200 step is host-bound at ~19.5 µs of host
   * time per dispatch (session 8); every GEMV workgroup re-reads the rows (L2) instead. Not measured on a GPU yet:
   * COGVIEW2_LN_PROLOGUE=0|1 overrides it (the published CogLM b1 run with each).
   */
  lnPrologue: boolean;
  /**
   * Whether cluster sampling (CogLM's and DSR's strategy) runs its five passes as one dispatch (shaders/sampling.wgsl
   * CFUSED, a workgroup per row; the same ids): 4 fewer dispatches per CogLM decode step. CPU adapters: false (they
   * rank clusters with the serial pass). GPUs: true, not measured on a GPU (the five passes are one workgroup per
   * row already, except the draw; the b1 step is host-bound). COGVIEW2_SAMPLER_FUSED=0|1 overrides it.
   */
  clusterFused: boolean;
  /**
   * Whether kernels written with `#unroll VAR FROM TO if UNROLL` (shaders/README.md) expand those loops, so that their
   * register arrays are indexed by literals only: flash_attention.wgsl's q and acc, layernorm.wgsl's REGS row
   * (decode rows' layer norms with rowReduceDecode regs/regs1024), attention.wgsl's per-invocation output dims (a
   * decode step's attention), local_attention.wgsl's q, acc, kc (per-query route) and qv, av (tiles). wgpu/gpu:
   * true — naga emits loops
   * that NVIDIA's compiler does not unroll, and a register array indexed by such a loop's counter lives in local memory
   * (conv2d, converted unconditionally: 6659 -> 207 ms on the H200 with wgpu, Dawn 117; session 8). dawn/gpu: false —
   * Tint's loops unroll there (Dawn ran the rolled kernels at full speed); not measured either way for these kernels.
   * CPU adapters: false — Mesa 25's llvmpipe compiled the unrolled flash_attention (d = 64) in 15.9 s vs 1.6 s rolled
   * through Dawn (wgpu on Mesa 22.3: 1.25 vs 1.49 s). COGVIEW2_UNROLL=0|1 overrides it.
   */
  unroll: boolean;
}

/** The table, keyed by backend and adapter kind ("cpu": software adapters such as lavapipe; "gpu": the rest). */
const WINDOWS: Record<CpuMatmulClass, CpuMatmulSchedule> = {
  decode: "windows",
  narrowK: "windows",
  wideK: "windows",
};
/**
 * The GEMM measured on the H200 (Dawn 4096³ f16 W: gemm_tiles 22.6 / 22.7 TFLOP/s, gemm_tiles_1buf 24.7 / 22.9;
 * bench/results/2026-12-04-h200/); the other variants were not measured on a GPU yet. Unused on CPU adapters. The
 * subgroup variants (gemm_sg_*, A shared by subgroupShuffle) await a GPU measurement (`bench --gpu dawn --only
 * gemm`, then the published runs with COGVIEW2_GEMM) before any entry may name them.
 */
const GEMM_TILES: Record<GpuGemmClass, GemmVariant> = {
  smallM: "gemm_tiles",
  narrowN: "gemm_tiles",
  wide: "gemm_tiles",
};
/**
 * Measured on lavapipe (bench/results/2026-12-04-lavapipe/compare_backends_choices_run{1,2}.*, best of 7 interleaved
 * rounds, ms): wgpu (Mesa 22.3) row reductions narrow (layerNorm 4096x64: 5.3 / 10.2 vs workgroup 71.3 / 50.7);
 * windows for every class (1024³ f16: 155 / 135 vs ubo 362 / 239). Dawn (Mesa 25.0.7): subgroup rows (layerNorm
 * 4096x64: 2.4 / 3.0 vs narrow 12.8 / 11.6, workgroup 85.6 / 102.4); matmul windows for decode rows (24.2 / 11.0 vs
 * gemv 52.0 / 22.8), ubo for the others (3600x192x64: 9.2 / 12.2 vs windows 10.2 / 11.7; 1024³: 175 / 256 vs
 * windows 408 / 263): close on narrowK, ubo in sum. Real GPUs ("gpu" keys) were never measured here: they keep the
 * 64-wide reductions (their matmuls do not use the CPU schedules).
 */
export const CHOICES: Record<string, BackendChoices> = {
  "wgpu/cpu": {
    rowReduce: "narrow",
    cpuMatmul: WINDOWS,
    gpuGemm: GEMM_TILES,
    gemv: "rows8",
    srAttention: "query",
    attentionWg: 32,
    attentionSplit: 1,
    lnPrologue: false,
    clusterFused: false,
    unroll: false,
  },
  "wgpu/gpu": {
    rowReduce: "workgroup",
    rowReduceDecode: "regs", // not measured on a GPU: see BackendChoices.rowReduceDecode
    cpuMatmul: WINDOWS,
    gpuGemm: GEMM_TILES,
    gemv: "rows8",
    srAttention: "query",
    attentionWg: 256, // not measured on a GPU: see BackendChoices.attentionWg
    attentionSplit: 1, // measured on Dawn only: see BackendChoices.attentionSplit
    lnPrologue: true, // not measured on a GPU: see BackendChoices.lnPrologue
    clusterFused: true, // not measured on a GPU: see BackendChoices.clusterFused
    unroll: true, // not measured on a GPU: see BackendChoices.unroll
  },
  "dawn/cpu": {
    rowReduce: "subgroup",
    cpuMatmul: { decode: "windows", narrowK: "ubo", wideK: "ubo" },
    gpuGemm: GEMM_TILES,
    gemv: "rows8",
    srAttention: "query",
    attentionWg: 32,
    attentionSplit: 1,
    lnPrologue: false,
    clusterFused: false,
    unroll: false,
  },
  // Measured on an H200 (bench/results/2026-12-04-h200/, Dawn; tests/kernels/choices_test.ts checks each entry
  // against those records): GEMV l64c2u2 fastest at M = 1, 4, 8 (48-layer f16 decode step 3.67 / 5.45 / 10.06 ms vs
  // rows8 4.37 / 9.92 / 16.38); the SR stages' GEMMs gemm_tiles_bk16_pad_w8_1buf (published b8 DSR + iterative SR
  // 16.57 vs 24.17 s for gemm_tiles_il with 2 LoPAR rounds; 36.95 vs 49.19 s with 6), although the isolated `bench
  // --only gemm` ranks the two within 3% at those shapes; smallM (CogLM prompt rows) not measured: gemm_tiles; SR
  // attention tiles (published b8 calls DSR + iterative SR 15.93 vs 16.20 ms). Row reductions not measured.
  "dawn/gpu": {
    rowReduce: "workgroup",
    rowReduceDecode: "regs1024", // H200 (session 8): see BackendChoices.rowReduceDecode
    cpuMatmul: WINDOWS,
    gpuGemm: {
      smallM: "gemm_tiles",
      narrowN: "gemm_tiles_bk16_pad_w8_1buf",
      wide: "gemm_tiles_bk16_pad_w8_1buf",
    },
    gemv: "l64c2u2",
    srAttention: "tiles",
    attentionWg: 256, // H200 (session 8): see BackendChoices.attentionWg
    attentionSplit: 1, // H200 (session 8): see BackendChoices.attentionSplit
    lnPrologue: true, // not measured on a GPU: see BackendChoices.lnPrologue
    clusterFused: true, // not measured on a GPU: see BackendChoices.clusterFused
    unroll: false, // not measured on a GPU: see BackendChoices.unroll
  },
};

export function choicesKey(ctx: GpuContext): string {
  return `${ctx.gpu.backend}/${ctx.gpu.isFallback ? "cpu" : "gpu"}`;
}

export function choices(ctx: GpuContext): BackendChoices {
  return CHOICES[choicesKey(ctx)];
}

/** The schedule CPU adapters prefer for an M x K matmul on this backend (src/kernels/matmul.ts applies it). */
export function cpuMatmulSchedule(ctx: GpuContext, M: number, K: number): CpuMatmulSchedule {
  return choices(ctx).cpuMatmul[cpuMatmulClass(M, K)];
}

/** The GEMM variant the table names for an M x N weight product on this (GPU) adapter. */
export function gpuGemmVariant(ctx: GpuContext, M: number, N: number): GemmVariant {
  return choices(ctx).gpuGemm[gpuGemmClass(M, N)];
}

/**
 * The variant a row kernel over `rows` rows takes: `force`, else (at most DECODE_ROWS rows) COGVIEW2_ROW_REDUCE_DECODE,
 * else COGVIEW2_ROW_REDUCE, else the table's.
 */
export function rowReduceFor(ctx: GpuContext, rows: number, force?: RowReduce): RowReduce {
  const c = choices(ctx), decode = rows <= DECODE_ROWS;
  return force ??
    (decode ? rowReduceOverride(readEnv(ROW_REDUCE_DECODE_ENV), ROW_REDUCE_DECODE_ENV) : null) ??
    rowReduceOverride() ?? (decode && c.rowReduceDecode ? c.rowReduceDecode : c.rowReduce);
}

/**
 * The defines of a row kernel over `rows` rows (shaders/row_reduce.wgsl): SUBGROUPS and the subgroup size SG when the
 * table (or `force`, for tests and benchmarks) asks for subgroup reductions and the device can run them; WIDE with
 * its width WG (and REGS for the layer norms) for "wide" / "regs" / "regs1024".
 */
export function rowReduceDefines(
  ctx: GpuContext,
  force?: RowReduce,
  rows = Infinity,
): Record<string, number> {
  const want = rowReduceFor(ctx, rows, force);
  const sg = ctx.gpu.subgroupSize;
  if (want === "wide" || want === "regs" || want === "regs1024") {
    const l = ctx.gpu.limits;
    const WG =
      want === "regs1024" && Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX) >= 1024
        ? 1024
        : 256;
    const regs: Record<string, number> = want === "wide" ? {} : { REGS: 1 };
    return sg && WG % sg === 0 ? { WIDE: 1, WG, SUBGROUPS: 1, SG: sg, ...regs } : { WIDE: 1, WG, ...regs };
  }
  if (want === "subgroup" && sg) return { SUBGROUPS: 1, SG: sg };
  if (want === "narrow") return { NARROW: 1 };
  if (force === "subgroup") {
    throw new Error(
      `subgroup row reductions need the subgroups feature with a fixed subgroup size (${ctx.gpu.name})`,
    );
  }
  return {};
}

/**
 * `COGVIEW2_ROW_REDUCE=workgroup|narrow|subgroup|wide|regs|regs1024`: every row kernel takes that variant, decode
 * rows or not (benchmarks).
 */
export const ROW_REDUCE_ENV = "COGVIEW2_ROW_REDUCE";

/**
 * `COGVIEW2_ROW_REDUCE_DECODE=<variant>`: row kernels over at most DECODE_ROWS rows (decode steps) take it, other rows
 * keep theirs. tools/pick_variants.ts picks it from the decode rows of `bench --only choices`, so that the published
 * runs of a GPU session try the fastest decode-row variant without moving the SR stages' rows.
 */
export const ROW_REDUCE_DECODE_ENV = "COGVIEW2_ROW_REDUCE_DECODE";

/**
 * The variant COGVIEW2_ROW_REDUCE (or `variable`) names (`env` in tests), or null; another value is an error naming
 * the variable.
 */
export function rowReduceOverride(
  env = readEnv(ROW_REDUCE_ENV),
  variable = ROW_REDUCE_ENV,
): RowReduce | null {
  if (!env) return null;
  if (!(ROW_REDUCES as readonly string[]).includes(env)) {
    throw new Error(`${variable}=${env}: expected ${ROW_REDUCES.join(", ")}`);
  }
  return env as RowReduce;
}

/** The reduction a row kernel would use on this context (tests, benchmarks). */
export function rowReduceUsed(ctx: GpuContext, force?: RowReduce, rows = Infinity): RowReduce {
  const d = rowReduceDefines(ctx, force, rows);
  if ("REGS" in d) return d.WG === 1024 ? "regs1024" : "regs";
  return "WIDE" in d ? "wide" : "SUBGROUPS" in d ? "subgroup" : "NARROW" in d ? "narrow" : "workgroup";
}

/** A 0|1 switch: the variable's value where set (another value is an error naming it), else the table's `field`. */
function switchFor(
  ctx: GpuContext,
  variable: string,
  env: string | undefined,
  field: "lnPrologue" | "unroll" | "clusterFused",
): boolean {
  if (!env) return choices(ctx)[field];
  if (env !== "0" && env !== "1") throw new Error(`${variable}=${env}: expected 0 or 1`);
  return env === "1";
}

/** `COGVIEW2_LN_PROLOGUE=0|1`: a decode step's layer-norm chains in the GEMV prologues (1) or dispatches of their own (0). */
export const LN_PROLOGUE_ENV = "COGVIEW2_LN_PROLOGUE";

/** Whether decode steps fold their layer norms into the GEMVs on this context: COGVIEW2_LN_PROLOGUE, else the table. */
export function lnPrologueFor(ctx: GpuContext, env = readEnv(LN_PROLOGUE_ENV)): boolean {
  return switchFor(ctx, LN_PROLOGUE_ENV, env, "lnPrologue");
}

/** `COGVIEW2_UNROLL=0|1`: `#unroll .. if UNROLL` loops expanded (1) or rolled (0), whatever the table says. */
export const UNROLL_ENV = "COGVIEW2_UNROLL";

/** Whether `#unroll .. if UNROLL` loops expand on this context: COGVIEW2_UNROLL, else the table (BackendChoices.unroll). */
export function unrollFor(ctx: GpuContext, env = readEnv(UNROLL_ENV)): boolean {
  return switchFor(ctx, UNROLL_ENV, env, "unroll");
}

/** `COGVIEW2_SAMPLER_FUSED=0|1`: cluster sampling in one dispatch (1) or five (0). */
export const SAMPLER_FUSED_ENV = "COGVIEW2_SAMPLER_FUSED";

/** Whether cluster sampling runs as one dispatch on this context: COGVIEW2_SAMPLER_FUSED, else the table. */
export function clusterFusedFor(ctx: GpuContext, env = readEnv(SAMPLER_FUSED_ENV)): boolean {
  return switchFor(ctx, SAMPLER_FUSED_ENV, env, "clusterFused");
}
