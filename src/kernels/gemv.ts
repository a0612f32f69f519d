// Launcher of shaders/gemv_rows.wgsl: decode-shaped C = alpha·A·Wᵀ (+bias) (GELU) (+resid) for M ≤ 8 rows on GPUs,
// each weight read once in coalesced 16-byte loads (matmul() routes decode rows here off CPU adapters when the
// layout allows: gemvRowsApplies). Batch 1; W [N, K] f16, f32 or int8 with group scales. Several variants of the
// same kernel (lanes per column, columns per group of lanes, loads in flight, reduction), picked by name: the
// `gemv` option, else the backend's entry in src/kernels/choices.ts. CPU twin: src/reference/matmul.ts.
import { f32, type GpuContext, type Kernel } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import {
  checkInputsNK,
  epilogueBindings,
  layoutParams,
  type MatmulLayout,
  matmulOutput,
} from "./_epilogue.ts";
import { gemvChoice } from "./choices.ts";
import { readEnv } from "../gpu/env.ts";

/** The layout this kernel takes (W is [N, K]; one batch, so no batch strides), and the variant by name. */
export type GemvOptions =
  & Omit<
    MatmulLayout,
    "batch" | "aBatchStride" | "wBatchStride" | "cBatchStride" | "rBatchStride"
  >
  & {
    /** A variant name (GEMV_VARIANTS or a spec such as "l32g8c2u4-sg"); default: the backend's choice. */
    gemv?: string;
    /** Make the A rows in a prologue (shaders/gemv_rows.wgsl LNPRO): A = LN2(R + LN1(a)); see GemvLnPrologue. */
    ln?: GemvLnPrologue;
  };

/**
 * SAT's sandwich chain of a decode step folded into the GEMV that consumes it (instead of a layerNormResidual
 * dispatch of its own): the A operand is `a` [M, K] (lda K, offset 0), the GEMV multiplies LN2(resid + LN1(a)),
 * and `residOut` receives resid + LN1(a). Every workgroup recomputes the M rows into workgroup memory
 * (gemvLnApplies checks the limit).
 */
export interface GemvLnPrologue {
  /** The residual stream in, [M, K] f32. */
  resid: Tensor;
  /** [4, K] f16 or f32: gamma1, beta1, gamma2, beta2 (packLnPair). */
  params: Tensor;
  /** resid + LN1(a) out, [M, K] f32 (not `resid`, not `a`). */
  residOut: Tensor;
  eps: number;
}

/** Storage bindings of a GEMV with the LN prologue (A, W, bias, C, R, params, residOut; bias optional). */
const LN_BINDINGS = 7;

/**
 * Whether the LN prologue fits this device for M rows of K (the variant `gemv`, else the table's): K a multiple of
 * 4, the M rows (M·K f32) plus the kernel's own reduction buffers within the workgroup memory limit, and its storage
 * bindings within the per-stage limit. Batch-1 decode at K = 3072 (12 KiB) fits the WebGPU default 16 KiB.
 */
export function gemvLnApplies(ctx: GpuContext, M: number, K: number, gemv?: string): boolean {
  const shape = parseGemvVariant(gemvVariantName(ctx, { M, gemv }));
  const wg = shape.lanes * shape.groups;
  const bytes = 4 * (M * K + wg + wg * M);
  const l = ctx.gpu.limits;
  return M >= 1 && M <= 8 && K % 4 === 0 && bytes <= l.maxComputeWorkgroupStorageSize &&
    LN_BINDINGS <= l.maxStorageBuffersPerShaderStage;
}

/** One shape of the kernel (compile-time constants of shaders/gemv_rows.wgsl). */
export interface GemvShape {
  /** Lanes per group (LPR): the invocations that split one column's K. */
  lanes: 8 | 16 | 32 | 64 | 128 | 256;
  /** Groups per workgroup (GPW); lanes·groups ≤ 256. */
  groups: number;
  /** Output columns per group (CPL): the A slice loaded once per step serves them all. */
  cols: 1 | 2 | 4 | 8;
  /** W loads per column and lane issued before any is used (U). */
  unroll: 1 | 2 | 4;
  /** "subgroup": subgroupAdd where the device has fixed-size subgroups (else the tree); "tree": workgroup memory. */
  reduce: "subgroup" | "tree";
}

/**
 * The named variants (tests and the bench run all of them). "rows8" is the original kernel (8 groups of 32 lanes,
 * one column each, one load in flight, a log-tree): the default until GPU measurements pick another. The others
 * trade three things: loads in flight (U·CPL per lane, for the HBM latency), threads (N·lanes/CPL in all: N = 3072
 * gives 98K threads at 32 lanes, a third of an H200's), and A loads per W load (M·(1, 2, 4 for f32, f16, int8)/CPL
 * vec4: at M = 8 they, not HBM, may bound the kernel, hence the 4-8 column variants).
 */
export const GEMV_VARIANTS: Record<string, string> = {
  rows8: "l32g8c1u1-tree",
  u2: "l32g8c1u2-sg",
  u4: "l32g8c1u4-sg",
  c2u2: "l32g8c2u2-sg",
  c2u4: "l32g8c2u4-sg",
  c4u1: "l32g8c4u1-sg",
  c4u2: "l32g4c4u2-sg",
  l64u2: "l64g4c1u2-sg",
  l64c2u2: "l64g4c2u2-sg",
  l64u4: "l64g4c1u4-sg",
  l64c4u2: "l64g4c4u2-sg",
  c8u2: "l32g4c8u2-sg",
  l128u2: "l128g2c1u2-sg",
  u4tree: "l32g8c2u4-tree",
};

/** Parsed variants by name or spec (parsing is pure: decode steps resolve the same name every launch). */
const parsedVariants = new Map<string, Readonly<GemvShape>>();

/** Parses a variant name or spec "l{lanes}g{groups}c{cols}u{unroll}-{sg|tree}"; throws naming the parameter. */
export function parseGemvVariant(name: string): Readonly<GemvShape> {
  const hit = parsedVariants.get(name);
  if (hit) return hit;
  const spec = GEMV_VARIANTS[name] ?? name;
  const m = spec.match(/^l(8|16|32|64|128|256)g(\d+)c([1248])u([124])-(sg|tree)$/);
  check(
    !!m,
    "gemvRows",
    () =>
      `unknown GEMV variant "${name}" (names: ${
        Object.keys(GEMV_VARIANTS).join(", ")
      }; or a spec l{8|16|32|64|128|256}g{groups}c{1|2|4|8}u{1|2|4}-{sg|tree})`,
  );
  const [lanes, groups, cols, unroll] = [m![1], m![2], m![3], m![4]].map(Number);
  check(
    groups >= 1 && lanes * groups <= 256,
    "gemvRows",
    () => `GEMV variant "${name}": ${lanes}x${groups} lanes exceed 256`,
  );
  const shape: GemvShape = Object.freeze({
    lanes: lanes as GemvShape["lanes"],
    groups,
    cols: cols as GemvShape["cols"],
    unroll: unroll as 1 | 2 | 4,
    reduce: m![5] === "sg" ? "subgroup" : "tree",
  });
  parsedVariants.set(name, shape);
  return shape;
}

/** The reduction a variant gets on this device: subgroups need the feature with a fixed size dividing the lanes. */
export function gemvReduceUsed(ctx: GpuContext, shape: GemvShape): "subgroup" | "tree" {
  const sg = ctx.gpu.subgroupSize;
  return shape.reduce === "subgroup" && sg && shape.lanes % sg === 0 ? "subgroup" : "tree";
}

/** W elements per 16-byte load. */
function perLoad(w: Tensor): number {
  return w.dtype === "f16" ? 8 : w.dtype === "i8" ? 16 : 4;
}

/**
 * Whether the layout suits the kernel: M ≤ 8 rows, K-runs of whole 16-byte W loads and vec4 A rows; int8 W with
 * scale groups of a multiple of 16 that K, ldw and the offset are multiples of.
 */
export function gemvRowsApplies(w: Tensor, o: GemvOptions & { transW?: boolean; batch?: number }): boolean {
  const q = perLoad(w);
  const lda = o.lda ?? o.K, ldw = o.ldw ?? o.K, wOff = o.wOff ?? 0;
  const g = w.quant?.group ?? 0;
  const i8ok = w.dtype !== "i8" ||
    (!!w.quant && g % 16 === 0 && o.K % g === 0 && ldw % g === 0 && wOff % g === 0);
  return (o.transW ?? true) && (o.batch ?? 1) === 1 && o.M >= 1 && o.M <= 8 &&
    (w.dtype === "f16" || w.dtype === "f32" || w.dtype === "i8") && i8ok && o.K % q === 0 && ldw % q === 0 &&
    wOff % q === 0 && lda % 4 === 0 && (o.aOff ?? 0) % 4 === 0 && w.byteOffset % 16 === 0;
}

/** `COGVIEW2_GEMV=<variant or spec>`: matmul() runs every GPU decode GEMV with it instead of the table's choice. */
export const GEMV_ENV = "COGVIEW2_GEMV";

/**
 * The variant name gemvRows uses: the `gemv` option, else COGVIEW2_GEMV (`env` in tests; an unknown name is an error
 * naming the variable), else the backend's choice (src/kernels/choices.ts).
 */
export function gemvVariantName(
  ctx: GpuContext,
  o: { M: number; gemv?: string },
  env = readEnv(GEMV_ENV),
): string {
  if (o.gemv) return o.gemv;
  if (env) {
    try {
      parseGemvVariant(env);
    } catch (e) {
      throw new Error(`${GEMV_ENV}=${env}: ${(e as Error).message}`);
    }
    return env;
  }
  return gemvChoice(ctx, o.M);
}

/** A compiled GEMV and what its launches need besides the operands (GemvKernels). */
interface GemvKernel {
  kernel: Kernel;
  shape: Readonly<GemvShape>;
}

/**
 * GEMV kernels per context by launch signature (variant, M, K, W dtype and scale group, LN prologue params dtype,
 * bias dtype, GELU, residual): the defines and bindings depend on nothing else, so a decode step's launches skip
 * building them and the pipeline-cache key (JSON of ~20 defines) every time.
 */
const gemvKernels = new WeakMap<GpuContext, Map<string, GemvKernel>>();

function gemvKernel(ctx: GpuContext, w: Tensor, o: GemvOptions, variant: string): GemvKernel {
  const { M, K, ln } = o;
  const key = `${variant}|${M}|${K}|${w.dtype}|${w.quant?.group ?? 0}|${ln ? ln.params.dtype : "-"}|${
    o.bias ? o.bias.dtype : "-"
  }|${o.gelu ? 1 : 0}|${o.resid ? 1 : 0}`;
  let byKey = gemvKernels.get(ctx);
  if (!byKey) gemvKernels.set(ctx, byKey = new Map());
  const hit = byKey.get(key);
  if (hit) return hit;
  const shape = parseGemvVariant(variant);
  const scales = w.quant?.scales;
  const ep = epilogueBindings(o, scales ? [scales] : []);
  const sub = gemvReduceUsed(ctx, shape) === "subgroup";
  const defines = {
    ...(ln
      ? { LNPRO: true, LP_F16: ln.params.dtype === "f16", KV: K / 4, B_LR: ep.defines.B_C as number + 1 }
      : {}),
    ...(ln ? { B_LP: ep.defines.B_C as number + 2, B_LO: ep.defines.B_C as number + 3 } : {}),
    MR: M,
    W_F16: w.dtype === "f16",
    W_F32: w.dtype === "f32",
    W_I8: w.dtype === "i8",
    ...(scales ? { QG: w.quant!.group, B_WS: 3 } : {}),
    LPR: shape.lanes,
    GPW: shape.groups,
    CPL: shape.cols,
    U: shape.unroll,
    ...(sub ? { SUBGROUPS: true, SG: ctx.gpu.subgroupSize! } : {}),
    ...ep.defines,
  };
  const kernel = ctx.kernel({
    name: ln ? "gemv_rows_ln" : "gemv_rows",
    shader: "gemv_rows.wgsl",
    defines,
    bindings: ln ? [...ep.access, "read", "read", "write"] : ep.access,
  });
  const e: GemvKernel = { kernel, shape };
  byKey.set(key, e);
  return e;
}

export function gemvRows(ctx: GpuContext, a: Tensor, w: Tensor, o: GemvOptions): Tensor {
  const { M, N, K } = o;
  check(gemvRowsApplies(w, o), "gemvRows", () => `layout not supported (M=${M}, K=${K}, ${w.dtype} W)`);
  checkInputsNK("gemvRows", a, w, o);
  const variant = gemvVariantName(ctx, o);
  const c = matmulOutput(ctx, "gemvRows", o);
  const ln = o.ln;
  if (ln) {
    check(gemvLnApplies(ctx, M, K, variant), "gemvRows", () => `LN prologue does not fit (M=${M}, K=${K})`);
    check(
      (o.lda ?? K) === K && (o.aOff ?? 0) === 0 && a.size >= M * K && ln.resid.size >= M * K &&
        ln.residOut.size >= M * K && ln.resid.dtype === "f32" && ln.residOut.dtype === "f32",
      "gemvRows",
      () => `LN prologue: A, resid and residOut must be f32 [${M}, ${K}] rows (lda K, offset 0)`,
    );
    check(
      ln.params.size === 4 * K && (ln.params.dtype === "f16" || ln.params.dtype === "f32"),
      "gemvRows",
      () => `LN prologue: params must be [4, ${K}] f16 or f32, got [${ln.params.shape}] ${ln.params.dtype}`,
    );
  }
  const { kernel, shape } = gemvKernel(ctx, w, o, variant);
  const groups = Math.ceil(N / (shape.groups * shape.cols));
  const y = Math.ceil(groups / 65535), x = Math.ceil(groups / y);
  const params = layoutParams(o);
  params.push(x, f32(ln?.eps ?? 0));
  // The bindings in epilogueBindings' order: A, W, [scales], [bias], [resid], C, then the LN prologue's.
  const t: Tensor[] = [a, w];
  if (w.quant) t.push(w.quant.scales);
  if (o.bias) t.push(o.bias);
  if (o.resid) t.push(o.resid);
  t.push(c);
  if (ln) t.push(ln.resid, ln.params, ln.residOut);
  ctx.dispatch(kernel, params, t, [x, y, 1]);
  return c;
}
