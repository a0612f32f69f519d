// Launcher of shaders/gemm_tiles.wgsl: the register-blocked GEMM for GPUs (default 128×128 tiles, 8×8 per invocation,
// K slices prefetched into registers and double-buffered in workgroup memory; other tilings by name in
// GEMM_VARIANTS), C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with
// f16 or f32 W [N, K] and f32 accumulation, strided batches; with `f16Math` (adapters with shader-f16) the products of
// each 8-wide K slice are formed and summed in f16 and accumulated in f32. matmul() routes weight-shaped products
// (M > 8, W [N, K]) here off CPU adapters when the layout allows (gemmTilesApplies), f16 arithmetic only when asked
// (COGVIEW2_F16_MATH=1, gemmF16Math: it does not hold the golden tolerances). Never timed on a GPU yet: tools/device_bench.sh measures the
// variants (`bench --only matmul`) where a GPU is lent. CPU twin: src/reference/matmul.ts.
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import {
  checkInputsNK,
  epilogueBindings,
  layoutParams,
  type MatmulLayout,
  matmulOutput,
} from "./_epilogue.ts";
import { readEnv, type TensorCoreMode } from "../gpu/env.ts";
import {
  formatSubgroupMatrixConfig,
  SUBGROUP_MATRIX_FEATURE,
  type SubgroupMatrixConfig,
} from "../gpu/device.ts";

/** One tiling of shaders/gemm_tiles.wgsl (its defines BM, BN, TN, BK, PAD, W8, DBUF). */
export interface GemmTiling {
  /** Rows and columns of C per workgroup (8 rows and `tn` columns per invocation: (bn/tn)×(bm/8) invocations). */
  bm: number;
  bn: number;
  tn: 8 | 16;
  /** K per slice (a multiple of 8). */
  bk: number;
  /** vec4 of padding after each k row of the workgroup tiles (against bank conflicts of the k-major scatter). */
  pad: number;
  /** 16-byte W loads (8 f16 weights per vec4<u32>; f16 W with K, ldw and W offsets multiples of 8). */
  w8: boolean;
  /** Two workgroup buffers, one barrier per K slice; false: one buffer, two barriers per slice. */
  dbuf: boolean;
  /**
   * Interleaved blocks: an invocation owns row vec4 ty, ty + BM/8 and column vec4 tx, tx + BN/TN, ... (so a
   * subgroup's W-tile reads are consecutive 16-byte words) instead of 8 contiguous rows and TN contiguous columns.
   */
  il?: boolean;
  /**
   * A through subgroup shuffles (define SGA; needs the `subgroups` feature with subgroups of at least 4 invocations):
   * the invocations of a group of G (gemmSgGroup: 8, or 4 where subgroups are 4 wide) that own the same 8 rows of C
   * each load 8/G of those rows of A into registers and share them by subgroupShuffle; only W goes through workgroup
   * memory. f32 arithmetic only.
   */
  sg?: boolean;
  /**
   * Tensor cores through Dawn's `chromium-experimental-subgroup-matrix` (shaders/gemm_sgmat.wgsl): f16 left/right
   * matrices (A rounded to f16 when staged) and f32 result matrices of the adapter's configuration (sgmatPlan; f16
   * ones summed per K slice and folded into f32 where it has no f32 result), a
   * bm×bn workgroup tile of 4 × bn/64 subgroups, each holding a 32×64 block of C in result matrices, K slices of bk.
   * Refused where the feature, shader-f16 or a usable f16 configuration is missing (gemmVariantUnsupported).
   */
  sgmat?: boolean;
  /**
   * Tensor-core variants: workgroup tiles of vec4<f16> (one 8-byte store per 4 halves instead of four 2-byte ones;
   * define V4), which needs Tint's relaxed array-element rule for subgroupMatrixLoad (a Dawn build from Aug 2026 on).
   */
  v4?: boolean;
  /**
   * Tensor-core variants, precise (define SPLIT): A staged as hi = f16(a) and lo = f16(a - hi), both multiplied into
   * the same f32 result (2 multiply-accumulates per step; A exact to ~2⁻²² relative); f32 W split likewise (define
   * WSPLIT: 3 per step, hi·hi + lo·hi + hi·lo); f16 W is exact. Needs an f16->f32 configuration. What
   * COGVIEW2_TENSOR_CORES=1 runs: it holds the golden tolerances, which the plain variants miss by a hair.
   */
  precise?: boolean;
  /**
   * Tensor-core variants: the block of C each subgroup holds in result matrices (rows, columns; default 32×64), so
   * (bm/rows)·(bn/columns) subgroups per workgroup. 64×64: per 16-deep step 4 left + 4 right loads feed 16
   * multiply-accumulates (32×64: 2 + 4 feed 8). With `dbuf` the tensor-core variants double-buffer their workgroup
   * tiles (define DBUF: the next slice stored while this one is multiplied, one barrier per slice instead of two).
   */
  sgBlock?: readonly [number, number];
  /**
   * Tensor-core variants: every loop over the result matrices expanded by the preprocessor (define UNROLL: #unroll,
   * literal indices into acc, a, al), so that keeping them in registers does not depend on the driver unrolling.
   */
  unroll?: boolean;
}

const BASE: GemmTiling = { bm: 128, bn: 128, tn: 8, bk: 8, pad: 0, w8: false, dbuf: true };
/**
 * The named GEMM variants (`bench --only gemm` reports each; src/kernels/choices.ts names the one matmul() uses per
 * backend and shape class; COGVIEW2_GEMM overrides it). "gemm_tiles" is the kernel measured on the H200 (Dawn,
 * 4096³ f16 W: 22.6-22.7 TFLOP/s; "gemm_tiles_1buf" 24.7 / 22.9): bench/results/2026-12-04-h200/.
 */
export const GEMM_VARIANTS = {
  gemm_tiles: BASE,
  gemm_tiles_1buf: { ...BASE, dbuf: false },
  gemm_tiles_pad: { ...BASE, pad: 1 },
  gemm_tiles_w8: { ...BASE, w8: true },
  gemm_tiles_pad_w8: { ...BASE, pad: 1, w8: true },
  gemm_tiles_bk16: { ...BASE, bk: 16 },
  gemm_tiles_bk16_w8: { ...BASE, bk: 16, w8: true },
  gemm_tiles_bk16_pad_w8_1buf: { ...BASE, bk: 16, pad: 1, w8: true, dbuf: false },
  gemm_tiles_bk32_1buf: { ...BASE, bk: 32, dbuf: false },
  gemm_tiles_128x256: { ...BASE, bn: 256, tn: 16 },
  gemm_tiles_128x256_w8: { ...BASE, bn: 256, tn: 16, w8: true },
  gemm_tiles_256x128: { ...BASE, bm: 256 },
  gemm_tiles_64x128: { ...BASE, bm: 64 },
  gemm_tiles_64x128_bk16_w8: { ...BASE, bm: 64, bk: 16, w8: true },
  gemm_tiles_il: { ...BASE, il: true },
  gemm_tiles_il_1buf: { ...BASE, il: true, dbuf: false },
  gemm_tiles_il_bk16_w8: { ...BASE, il: true, bk: 16, w8: true },
  gemm_tiles_128x256_il: { ...BASE, bn: 256, tn: 16, il: true },
  gemm_tiles_il_bk16: { ...BASE, il: true, bk: 16 },
  gemm_tiles_128x256_il_w8: { ...BASE, bn: 256, tn: 16, il: true, w8: true },
  gemm_tiles_128x256_il_bk16_1buf: { ...BASE, bn: 256, tn: 16, il: true, bk: 16, dbuf: false },
  // Subgroup variants (A shared by subgroupShuffle from registers, W through workgroup memory): the three best
  // tilings on the H200 (il, il_1buf, bk16_pad_w8_1buf) and the 128×256 one, whose 16 columns per invocation give
  // each shuffled A value 16 multiply-adds. Refused where the device lacks `subgroups` (gemmVariantUnsupported).
  // Not measured on a GPU yet.
  gemm_sg_il: { ...BASE, il: true, sg: true },
  gemm_sg_il_1buf: { ...BASE, il: true, dbuf: false, sg: true },
  gemm_sg_il_bk16_pad_w8_1buf: { ...BASE, il: true, bk: 16, pad: 1, w8: true, dbuf: false, sg: true },
  gemm_sg_128x256_il: { ...BASE, bn: 256, tn: 16, il: true, sg: true },
  // Tensor cores (subgroup matrices, f16 inputs, f32 accumulation): 128×128 (8 subgroups) and 128×256 (16) tiles, K
  // slices of 32 (64: half the barriers per K, 44 KiB of workgroup memory); _v4: vec4<f16> workgroup tiles. Refused
  // without chromium-experimental-subgroup-matrix (everywhere but Dawn on a GPU with COGVIEW2_TENSOR_CORES=1, or
  // COGVIEW2_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia,allow_unsafe_apis). Measured on an H200 in session 8: correct
  // (its CPU-twin test), 32-35 TFLOP/s at the SR shapes; matmul.ts TENSOR_CORE_GEMM names the one
  // COGVIEW2_TENSOR_CORES=1 takes.
  gemm_sgmat: { ...BASE, bk: 32, dbuf: false, sgmat: true },
  gemm_sgmat_128x256: { ...BASE, bn: 256, tn: 16, bk: 32, dbuf: false, sgmat: true },
  gemm_sgmat_v4: { ...BASE, bk: 32, dbuf: false, sgmat: true, v4: true },
  gemm_sgmat_128x256_v4: { ...BASE, bn: 256, tn: 16, bk: 32, dbuf: false, sgmat: true, v4: true },
  gemm_sgmat_bk64_v4: { ...BASE, bk: 64, dbuf: false, sgmat: true, v4: true },
  // Precise tensor cores (A split into f16 hi + lo, f32 W too; see GemmTiling.precise): K slices of 16 so that the
  // extra lo tiles fit (128×128: 26 KiB with f16 W, 32 KiB with f32 W; 128×256: 40 KiB with f16 W, f32 W refused),
  // and a 128×128 one with slices of 32 (38 / 48 KiB). Not measured on a GPU yet (`bench --only gemm`).
  gemm_sgmat_precise: { ...BASE, bk: 16, dbuf: false, sgmat: true, precise: true },
  gemm_sgmat_v4_precise: { ...BASE, bk: 16, dbuf: false, sgmat: true, v4: true, precise: true },
  gemm_sgmat_bk32_v4_precise: { ...BASE, bk: 32, dbuf: false, sgmat: true, v4: true, precise: true },
  gemm_sgmat_128x256_v4_precise: {
    ...BASE,
    bn: 256,
    tn: 16,
    bk: 16,
    dbuf: false,
    sgmat: true,
    v4: true,
    precise: true,
  },
  // Tensor cores, 64×64 of C per subgroup (4×4 result matrices: twice the multiply-accumulates per workgroup-memory
  // load of the 32×64 blocks; 4 subgroups per 128×128 tile, 8 per 128×256), some double-buffered (one barrier per K
  // slice): against the staging bound measured in session 8 (32-35 TFLOP/s, ~4% of the tensor peak). Not measured on
  // a GPU yet; bytes of workgroup memory with f16 W: b64 24576, b64_db 45056, b64_db_bk16 28672, b64_precise 22528
  // (f32 W 28672), 128x256_b64_precise 32768 (f32 W 45056), b64_db_precise 40960 (f32 W refused).
  gemm_sgmat_b64_v4: { ...BASE, bk: 32, dbuf: false, sgmat: true, v4: true, sgBlock: [64, 64] },
  gemm_sgmat_b64_db_v4: { ...BASE, bk: 32, dbuf: true, sgmat: true, v4: true, sgBlock: [64, 64] },
  gemm_sgmat_b64_db_bk16_v4: { ...BASE, bk: 16, dbuf: true, sgmat: true, v4: true, sgBlock: [64, 64] },
  gemm_sgmat_b64_v4_precise: {
    ...BASE,
    bk: 16,
    dbuf: false,
    sgmat: true,
    v4: true,
    precise: true,
    sgBlock: [64, 64],
  },
  gemm_sgmat_128x256_b64_v4_precise: {
    ...BASE,
    bn: 256,
    tn: 16,
    bk: 16,
    dbuf: false,
    sgmat: true,
    v4: true,
    precise: true,
    sgBlock: [64, 64],
  },
  gemm_sgmat_b64_db_v4_precise: {
    ...BASE,
    bk: 16,
    dbuf: true,
    sgmat: true,
    v4: true,
    precise: true,
    sgBlock: [64, 64],
  },
  // The same kernels with the loops over result matrices expanded by the preprocessor (GemmTiling.unroll): side by
  // side with gemm_sgmat_128x256_v4 (session 8's fastest), the precise one COGVIEW2_TENSOR_CORES=1 takes, and b64_db.
  gemm_sgmat_128x256_v4_unroll: {
    ...BASE,
    bn: 256,
    tn: 16,
    bk: 32,
    dbuf: false,
    sgmat: true,
    v4: true,
    unroll: true,
  },
  gemm_sgmat_128x256_v4_precise_unroll: {
    ...BASE,
    bn: 256,
    tn: 16,
    bk: 16,
    dbuf: false,
    sgmat: true,
    v4: true,
    precise: true,
    unroll: true,
  },
  gemm_sgmat_b64_db_bk16_v4_unroll: {
    ...BASE,
    bk: 16,
    dbuf: true,
    sgmat: true,
    v4: true,
    sgBlock: [64, 64],
    unroll: true,
  },
} satisfies Record<string, GemmTiling>;
export type GemmVariant = keyof typeof GEMM_VARIANTS;
export const GEMM_VARIANT_NAMES = Object.keys(GEMM_VARIANTS) as GemmVariant[];

/** `COGVIEW2_GEMM=<variant>`: matmul() runs every GPU GEMM with this variant instead of the table's choice. */
export const GEMM_ENV = "COGVIEW2_GEMM";

/** The variant named by COGVIEW2_GEMM (`env` in tests), or null; an unknown name is an error naming the variable. */
export function gemmVariantOverride(env = readEnv(GEMM_ENV)): GemmVariant | null {
  if (env === undefined || env === "") return null;
  if (!(env in GEMM_VARIANTS)) {
    throw new Error(
      `${GEMM_ENV}=${env}: unknown GEMM variant; expected one of ${GEMM_VARIANT_NAMES.join(", ")}`,
    );
  }
  return env as GemmVariant;
}

/** Workgroup bytes of a tiling (f32 tiles; f16 tiles with f16Math take half; subgroup variants hold no A tile). */
export function gemmWorkgroupBytes(t: GemmTiling, f16Math = false): number {
  if (t.sgmat) return 0; // sgmatPlan counts its own (it depends on the configuration)
  const slice = (t.sg ? 0 : t.bk * (t.bm / 4 + t.pad)) + t.bk * (t.bn / 4 + t.pad);
  return slice * (t.dbuf ? 2 : 1) * 4 * (f16Math ? 2 : 4);
}

/**
 * How many invocations share A in the subgroup variants (define G): 8, or 4 where the adapter's smallest subgroup is
 * 4 wide (lavapipe with LP_NATIVE_VECTOR_WIDTH=128, as in CI); null where they cannot run (no `subgroups`, subgroups
 * under 4 or of unreported size). Any subgroup size that is a multiple of G works (every shuffle stays in the group).
 */
export function gemmSgGroup(ctx: GpuContext): 4 | 8 | null {
  const min = ctx.gpu.hasSubgroups ? ctx.gpu.subgroupMinSize : null;
  return !min ? null : min >= 8 ? 8 : min >= 4 ? 4 : null;
}

/** The block of C each subgroup of a tensor-core tiling owns by default (GemmTiling.sgBlock). */
const SGMAT_BLOCK: readonly [number, number] = [32, 64];

/**
 * The subgroup-matrix configuration the tensor-core variants use from an adapter's list, or null: f16 left/right
 * matrices, M and N dividing the subgroup's `block` of C (default 32×64) and K dividing the slice depth `bk`; an f32 result if any (else an f16
 * one: per-slice f16 sums folded into f32, define ACC16, unless `f32Only`: the precise variants); then the most
 * multiply-adds per operation (M·N·K), then the widest N.
 */
export function pickSubgroupMatrixConfig(
  configs: readonly SubgroupMatrixConfig[],
  bk = 32,
  f32Only = false,
  block: readonly [number, number] = SGMAT_BLOCK,
): SubgroupMatrixConfig | null {
  const fits = configs.filter((c) =>
    c.componentType === "f16" && block[0] % c.M === 0 && block[1] % c.N === 0 && bk % c.K === 0
  );
  const f32 = fits.filter((c) => c.resultComponentType === "f32");
  const ok = f32.length || f32Only ? f32 : fits.filter((c) => c.resultComponentType === "f16");
  return ok.reduce<SubgroupMatrixConfig | null>(
    (best, c) =>
      !best || c.M * c.N * c.K > best.M * best.N * best.K ||
        (c.M * c.N * c.K === best.M * best.N * best.K && c.N > best.N)
        ? c
        : best,
    null,
  );
}

/** How a tensor-core variant runs on a device: its configuration, defines, invocations and workgroup memory. */
export interface SgmatPlan {
  config: SubgroupMatrixConfig;
  defines: {
    TM: number;
    TN: number;
    TK: number;
    RM: number;
    RN: number;
    SGY: number;
    SGX: number;
    SGMAX: number;
    BK: number;
    V4: boolean;
    /** The adapter's subgroups are always SGMAX wide (no idle subgroups to branch around). */
    SG_FIXED: boolean;
    /** f16 result matrices (the configuration has no f32 result): per-slice f16 sums folded into f32. */
    ACC16: boolean;
    /** A split into f16 hi + lo (GemmTiling.precise). */
    SPLIT: boolean;
    /** f32 W split likewise (precise variants with f32 W). */
    WSPLIT: boolean;
    /** Two sets of workgroup tiles, one barrier per K slice. */
    DBUF: boolean;
    /** The loops over result matrices expanded by the preprocessor. */
    UNROLL: boolean;
  };
  invocations: number;
  workgroupBytes: number;
  /** e.g. "f16->f32 16x16x16, 128x128 tile, 8 subgroups of 32, 2x4 result matrices each" */
  describe: string;
}

/** The subgroup width the emulated kernel (GemmOptions.sgmatEmulate) pretends: an H200's. */
export const SGMAT_EMULATED_SUBGROUP = 32;

/**
 * The plan of a tensor-core tiling for this device, from `configs` (default the adapter's) and `sgmax` (default its
 * largest subgroup size), for W of `wDtype` (the precise variants split f32 W: one more tile); null where no
 * configuration fits (pickSubgroupMatrixConfig) or the subgroup size is unknown.
 */
export function sgmatPlan(
  ctx: GpuContext,
  t: GemmTiling,
  configs: readonly SubgroupMatrixConfig[] = ctx.gpu.subgroupMatrixConfigs,
  sgmax: number | null = ctx.gpu.subgroupMaxSize,
  wDtype: "f16" | "f32" = "f16",
): SgmatPlan | null {
  const block = t.sgBlock ?? SGMAT_BLOCK;
  const config = pickSubgroupMatrixConfig(configs, t.bk, !!t.precise, block);
  if (!config || !sgmax) return null;
  const sgy = t.bm / block[0], sgx = t.bn / block[1], nsg = sgy * sgx;
  const rm = block[0] / config.M, rn = block[1] / config.N;
  const defines = {
    TM: config.M,
    TN: config.N,
    TK: config.K,
    RM: rm,
    RN: rn,
    SGY: sgy,
    SGX: sgx,
    SGMAX: sgmax,
    BK: t.bk,
    V4: !!t.v4,
    SG_FIXED: sgmax === ctx.gpu.subgroupMinSize,
    ACC16: config.resultComponentType === "f16",
    SPLIT: !!t.precise,
    WSPLIT: !!t.precise && wDtype === "f32",
    DBUF: t.dbuf,
    UNROLL: !!t.unroll,
  };
  // As and Ws (f16, rows padded by 8 halves; Al and Wl likewise where split) and one f32 result block per subgroup.
  const tileRows = t.bm * (defines.SPLIT ? 2 : 1) + t.bn * (defines.WSPLIT ? 2 : 1);
  const workgroupBytes = tileRows * (t.bk + 8) * 2 * (t.dbuf ? 2 : 1) + nsg * config.M * config.N * 4;
  return {
    config,
    defines,
    invocations: nsg * sgmax,
    workgroupBytes,
    describe:
      `${formatSubgroupMatrixConfig(config)}, ${t.bm}x${t.bn} tile, K slices of ${t.bk}${
        t.dbuf ? " double-buffered" : ""
      }, ${nsg} subgroups ` +
      `of ${sgmax}, ${rm}x${rn} result matrices each, ${workgroupBytes} bytes of workgroup memory` +
      (t.v4 ? ", vec4<f16> tiles" : "") +
      (t.unroll ? ", unrolled" : "") +
      (defines.WSPLIT
        ? ", A and f32 W split into f16 hi + lo"
        : defines.SPLIT
        ? ", A split into f16 hi + lo"
        : "") +
      (config.resultComponentType === "f16" ? ", f16 slices folded into f32" : ""),
  };
}

/**
 * The defines of shaders/gemm_sgmat.wgsl for a plan (the epilogue's bindings come from _epilogue.ts); `emulate`
 * selects the plain-WGSL stand-ins of the subgroup-matrix operations (define EMU, tests only).
 */
export function sgmatDefines(
  plan: SgmatPlan,
  wF16: boolean,
  emulate = false,
): Record<string, number | boolean> {
  return { W_F16: wF16, EMU: emulate, ...plan.defines, WSPLIT: plan.defines.SPLIT && !wF16 };
}

/** The configuration the emulated kernel runs by default: an H200's (with 32-wide subgroups). */
export const SGMAT_EMULATED_CONFIG: SubgroupMatrixConfig = {
  componentType: "f16",
  resultComponentType: "f32",
  M: 16,
  N: 16,
  K: 16,
};

/** How a context of withEmulatedTensorCores runs its tensor-core GEMMs. */
export interface EmulatedTensorCores {
  /** Which variants matmul() picks for the SR-sized products (COGVIEW2_TENSOR_CORES's meaning). */
  mode: Exclude<TensorCoreMode, "off">;
  config: SubgroupMatrixConfig;
}

const emulatedOn = new WeakMap<GpuContext, EmulatedTensorCores>();

/**
 * A context over `ctx`'s device that reports a GPU adapter (GpuContext.withGpuSchedules), picks tensor-core GEMMs
 * as COGVIEW2_TENSOR_CORES=1 (`mode` "precise") or =fast would, and runs every tensor-core variant with the
 * subgroup-matrix operations emulated in plain WGSL (GemmOptions.sgmatEmulate: the inputs rounded to f16 as the
 * hardware takes them, exact products summed in f32; `config`, default SGMAT_EMULATED_CONFIG, subgroups of 32), so
 * that the models' numerics with tensor cores can be checked against the golden cases where none are exposed
 * (`deno task conformance --tensor-cores-emulated`, tests/conformance/tensor_cores_test.ts). Slow: checks only.
 */
export function withEmulatedTensorCores(
  ctx: GpuContext,
  mode: Exclude<TensorCoreMode, "off"> = "precise",
  config: SubgroupMatrixConfig = SGMAT_EMULATED_CONFIG,
): GpuContext {
  const c = ctx.withGpuSchedules();
  emulatedOn.set(c, { mode, config });
  return c;
}

/** How `ctx` emulates its tensor cores (withEmulatedTensorCores), or null. */
export function emulatedTensorCores(ctx: GpuContext): EmulatedTensorCores | null {
  return emulatedOn.get(ctx) ?? null;
}

/** Why the emulated tensor-core kernel (GemmOptions.sgmatEmulate) cannot run with `config` here, or null. */
export function sgmatEmulationUnsupported(
  ctx: GpuContext,
  t: GemmTiling,
  config: SubgroupMatrixConfig,
  wDtype: "f16" | "f32" = "f16",
): string | null {
  const plan = sgmatPlan(ctx, t, [config], SGMAT_EMULATED_SUBGROUP, wDtype);
  if (!plan || (config.M * config.N) % SGMAT_EMULATED_SUBGROUP) {
    return `configuration ${formatSubgroupMatrixConfig(config)} does not fit the emulated kernel`;
  }
  const l = ctx.gpu.limits;
  if (
    plan.workgroupBytes > l.maxComputeWorkgroupStorageSize ||
    plan.invocations > l.maxComputeInvocationsPerWorkgroup
  ) {
    return `${plan.describe}: above this adapter's workgroup limits`;
  }
  return null;
}

/**
 * Why this device cannot run a variant (workgroup memory or invocations above its limits; for the subgroup
 * variants, no `subgroups` feature, subgroups smaller than 8 or of unknown size, or f16 arithmetic; for the
 * tensor-core ones, no chromium-experimental-subgroup-matrix, no shader-f16 or no usable configuration; the precise
 * ones with W of `wDtype`, whose f32 form stages one more tile), or null. On a context of withEmulatedTensorCores the
 * tensor-core variants are checked against the emulated kernel's limits instead.
 */
export function gemmVariantUnsupported(
  ctx: GpuContext,
  v: GemmVariant,
  f16Math = false,
  wDtype: "f16" | "f32" = "f16",
): string | null {
  const t: GemmTiling = GEMM_VARIANTS[v], l = ctx.gpu.limits;
  const on = `${ctx.gpu.backend} adapter ${ctx.gpu.name}`;
  const emulated = t.sgmat ? emulatedOn.get(ctx)?.config : undefined;
  if (emulated) return sgmatEmulationUnsupported(ctx, t, emulated, wDtype);
  if (t.sgmat) {
    if (!ctx.gpu.hasSubgroupMatrix) {
      return `${v} needs the ${SUBGROUP_MATRIX_FEATURE} feature, which the ${on} lacks${
        ctx.gpu.subgroupMatrixNote ? ` (${ctx.gpu.subgroupMatrixNote})` : ""
      } (Dawn lists it on GPUs with Vulkan cooperative matrices when ` +
        "COGVIEW2_DAWN_TOGGLES includes allow_unsafe_apis; NVIDIA's f16 ones also need vulkan_enable_f16_on_nvidia)";
    }
    if (!ctx.gpu.hasF16) return `${v} needs shader-f16, which the ${on} lacks`;
    const plan = sgmatPlan(ctx, t, undefined, undefined, wDtype);
    if (!plan) {
      return `${v} needs an f16 subgroup matrix configuration (${
        t.precise ? "f32 result" : "f32 or f16 result"
      }) with M dividing ${(t.sgBlock ?? SGMAT_BLOCK)[0]}, N dividing ${(t.sgBlock ?? SGMAT_BLOCK)[1]} ` +
        `and K dividing ${t.bk}, and a reported subgroupMaxSize; the ${on} reports ${
          ctx.gpu.subgroupMatrixConfigs.map(formatSubgroupMatrixConfig).join(", ") || "no configurations"
        }, subgroupMaxSize ${ctx.gpu.subgroupMaxSize ?? "unknown"}`;
    }
    const { ACC16, SG_FIXED, TM, TN, SGMAX } = plan.defines;
    if (ACC16 && (!SG_FIXED || (TM * TN) % SGMAX)) {
      return `${v} with f16 results (${
        formatSubgroupMatrixConfig(plan.config)
      }: the adapter has no f16->f32 configuration) needs subgroups of one fixed size dividing ${
        TM * TN
      }; the ${on} ` +
        `reports ${ctx.gpu.subgroupMinSize ?? "?"}-${ctx.gpu.subgroupMaxSize ?? "?"}`;
    }
    if (plan.workgroupBytes > l.maxComputeWorkgroupStorageSize) {
      return `${v} needs ${plan.workgroupBytes} bytes of workgroup memory${
        plan.defines.WSPLIT ? " with f32 W" : ""
      }; this adapter allows ${l.maxComputeWorkgroupStorageSize}`;
    }
    if (
      plan.invocations > l.maxComputeInvocationsPerWorkgroup || plan.invocations > l.maxComputeWorkgroupSizeX
    ) {
      return `${v} needs ${plan.invocations} invocations per workgroup; this adapter allows ${
        Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX)
      }`;
    }
    return null;
  }
  if (t.sg) {
    if (!ctx.gpu.hasSubgroups) return `${v} needs the subgroups feature, which the ${on} lacks`;
    if (!gemmSgGroup(ctx)) {
      return `${v} needs subgroups of at least 4 invocations; the ${on} reports subgroupMinSize ${
        ctx.gpu.subgroupMinSize ?? "unknown"
      }`;
    }
    if (f16Math) return `${v} has no f16-arithmetic form (COGVIEW2_F16_MATH); it runs f32 arithmetic only`;
  }
  const bytes = gemmWorkgroupBytes(t, f16Math), inv = (t.bn / t.tn) * (t.bm / 8);
  if (bytes > l.maxComputeWorkgroupStorageSize) {
    return `${v} needs ${bytes} bytes of workgroup memory; this adapter allows ${l.maxComputeWorkgroupStorageSize}`;
  }
  if (inv > l.maxComputeInvocationsPerWorkgroup) {
    return `${v} needs ${inv} invocations per workgroup; this adapter allows ${l.maxComputeInvocationsPerWorkgroup}`;
  }
  return null;
}

/** The layout this kernel takes (W is [N, K]), and the variant. */
export interface GemmOptions extends MatmulLayout {
  /** f16 products and per-slice f16 sums, f32 accumulation (needs the adapter's shader-f16). Default false. */
  f16Math?: boolean;
  /** The tiling (GEMM_VARIANTS); default "gemm_tiles". */
  tiling?: GemmVariant;
  /**
   * Tests only, tensor-core variants: run with this configuration and the four subgroup-matrix operations emulated in
   * plain WGSL (shaders/gemm_sgmat.wgsl define EMU, the documented semantics) and subgroups of 32 emulated by runs
   * of invocations, on any device (no f16 or subgroup feature needed), so that the rest of the kernel is checked
   * where no tensor cores are exposed.
   */
  sgmatEmulate?: SubgroupMatrixConfig;
}

/**
 * `COGVIEW2_F16_MATH=1`: matmul() runs GPU GEMMs with f16 weights in f16 arithmetic where the adapter has shader-f16.
 * Off by default: on the golden tiny fixture (tests/conformance/gpu_schedules_test.ts, lavapipe with shader-f16) it
 * exceeds the tolerances (CogLM hidden max abs 5.3e-3 vs 2e-3, logit rows 2.0e-2 vs 1e-2, one argmax of 407 changed
 * with a gap > 0.01; iterative SR hidden 6.3e-3).
 */
export const F16_MATH_ENV = "COGVIEW2_F16_MATH";

/**
 * Whether matmul() picks f16 arithmetic: asked for (F16_MATH_ENV, `env` in tests), the adapter has shader-f16 and W
 * is stored f16 (f32 weights keep f32 arithmetic: a model converted losslessly from f32 sources asked for it).
 */
export function gemmF16Math(ctx: GpuContext, w: Tensor, env = readEnv(F16_MATH_ENV)): boolean {
  return env === "1" && ctx.gpu.hasF16 && w.dtype === "f16";
}

/** Whether the layout suits gemmTiles (K, strides and offsets multiples of 4; of 8 for W in the w8 variants). */
export function gemmTilesApplies(
  w: Tensor,
  o: GemmOptions & { transW?: boolean },
  variant: GemmVariant = o.tiling ?? "gemm_tiles",
): boolean {
  const m4 = (x: number) => x % 4 === 0, m8 = (x: number) => x % 8 === 0;
  const t: GemmTiling = GEMM_VARIANTS[variant];
  const mw = t.w8 && w.dtype === "f16" ? m8 : m4;
  const batch = o.batch ?? 1;
  return (o.transW ?? true) && (w.dtype === "f16" || w.dtype === "f32") && mw(o.K) && m4(o.lda ?? o.K) &&
    mw(o.ldw ?? o.K) && m4(o.aOff ?? 0) && mw(o.wOff ?? 0) && w.byteOffset % 16 === 0 &&
    (batch === 1 || (m4(o.aBatchStride ?? o.M * (o.lda ?? o.K)) && mw(o.wBatchStride ?? 0))) &&
    batch <= 65535 &&
    Math.ceil(o.M / t.bm) <= 65535 && Math.ceil(o.N / t.bn) <= 65535;
}

export function gemmTiles(ctx: GpuContext, a: Tensor, w: Tensor, o: GemmOptions): Tensor {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  const variant = o.tiling ?? "gemm_tiles";
  check(variant in GEMM_VARIANTS, "gemmTiles", () => `unknown variant ${variant}`);
  check(
    gemmTilesApplies(w, o),
    "gemmTiles",
    () => `layout not supported by ${variant} (K=${K}, ${w.dtype} W)`,
  );
  checkInputsNK("gemmTiles", a, w, o);
  const c = matmulOutput(ctx, "gemmTiles", o);
  check(
    !o.f16Math || ctx.gpu.hasF16,
    "gemmTiles",
    "f16Math needs the shader-f16 feature, which this adapter lacks",
  );
  const f16Math = !!o.f16Math;
  const t: GemmTiling = GEMM_VARIANTS[variant];
  const emu = t.sgmat ? o.sgmatEmulate ?? emulatedOn.get(ctx)?.config : undefined;
  const wDtype = w.dtype === "f16" ? "f16" : "f32";
  const why = emu
    ? sgmatEmulationUnsupported(ctx, t, emu, wDtype)
    : gemmVariantUnsupported(ctx, variant, f16Math, wDtype);
  check(why === null, "gemmTiles", why ?? "");
  const ep = epilogueBindings(o);
  const params = layoutParams(o);
  if (t.sgmat) {
    const plan = emu
      ? sgmatPlan(ctx, t, [emu], SGMAT_EMULATED_SUBGROUP, wDtype)!
      : sgmatPlan(ctx, t, undefined, undefined, wDtype)!;
    const defines = { ...sgmatDefines(plan, w.dtype === "f16", !!emu), ...ep.defines };
    const name = emu ? `${variant}_emulated` : variant;
    const k = ctx.kernel({ name, shader: "gemm_sgmat.wgsl", defines, bindings: ep.access });
    ctx.dispatch(k, params, ep.tensors(a, w, c), [Math.ceil(N / t.bn), Math.ceil(M / t.bm), batch]);
    return c;
  }
  const defines = {
    W_F16: w.dtype === "f16",
    W8: t.w8 && w.dtype === "f16",
    DBUF: t.dbuf,
    F16_MATH: f16Math,
    BM: t.bm,
    BN: t.bn,
    TN: t.tn,
    BK: t.bk,
    PAD: t.pad,
    IL: !!t.il,
    SGA: !!t.sg,
    G: t.sg ? gemmSgGroup(ctx)! : 0,
    ...ep.defines,
  };
  const bindings = ep.access;
  const name = f16Math ? variant.replace("gemm_tiles", "gemm_tiles_f16math") : variant;
  const k = ctx.kernel({ name, shader: "gemm_tiles.wgsl", defines, bindings });
  ctx.dispatch(k, params, ep.tensors(a, w, c), [Math.ceil(N / t.bn), Math.ceil(M / t.bm), batch]);
  return c;
}
