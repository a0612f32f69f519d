// Launcher of shaders/gemm_tiles.wgsl: the register-blocked GEMM for GPUs (128×128 tiles, 8×8 per invocation, K slices
// prefetched into registers and double-buffered in workgroup memory), C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with
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

/** The layout this kernel takes (W is [N, K]), and the variant. */
export interface GemmOptions extends MatmulLayout {
  /** f16 products and per-slice f16 sums, f32 accumulation (needs the adapter's shader-f16). Default false. */
  f16Math?: boolean;
  /** Two workgroup buffers, one barrier per K slice (default true); false: one buffer, two barriers per slice. */
  doubleBuffer?: boolean;
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
export function gemmF16Math(ctx: GpuContext, w: Tensor, env = f16MathEnv()): boolean {
  return env === "1" && ctx.gpu.hasF16 && w.dtype === "f16";
}

function f16MathEnv(): string | undefined {
  try {
    return Deno.env.get(F16_MATH_ENV);
  } catch {
    return undefined; // no --allow-env
  }
}

export function gemmTilesApplies(w: Tensor, o: GemmOptions & { transW?: boolean }): boolean {
  const m4 = (x: number) => x % 4 === 0;
  const batch = o.batch ?? 1;
  return (o.transW ?? true) && (w.dtype === "f16" || w.dtype === "f32") && m4(o.K) && m4(o.lda ?? o.K) &&
    m4(o.ldw ?? o.K) && m4(o.aOff ?? 0) && m4(o.wOff ?? 0) && w.byteOffset % 16 === 0 &&
    (batch === 1 || (m4(o.aBatchStride ?? o.M * (o.lda ?? o.K)) && m4(o.wBatchStride ?? 0))) &&
    batch <= 65535 &&
    Math.ceil(o.M / 128) <= 65535;
}

export function gemmTiles(ctx: GpuContext, a: Tensor, w: Tensor, o: GemmOptions): Tensor {
  const { M, N, K } = o;
  const batch = o.batch ?? 1;
  check(gemmTilesApplies(w, o), "gemmTiles", `layout not supported (K=${K}, ${w.dtype} W)`);
  checkInputsNK("gemmTiles", a, w, o);
  const c = matmulOutput(ctx, "gemmTiles", o);
  check(
    !o.f16Math || ctx.gpu.hasF16,
    "gemmTiles",
    "f16Math needs the shader-f16 feature, which this adapter lacks",
  );
  const ep = epilogueBindings(o);
  const dbuf = o.doubleBuffer ?? true, f16Math = !!o.f16Math;
  const defines = { W_F16: w.dtype === "f16", DBUF: dbuf, F16_MATH: f16Math, ...ep.defines };
  const bindings = ep.access;
  const name = `gemm_tiles${f16Math ? "_f16math" : ""}${dbuf ? "" : "_1buf"}`;
  const k = ctx.kernel({ name, shader: "gemm_tiles.wgsl", defines, bindings });
  const params = layoutParams(o);
  ctx.dispatch(k, params, ep.tensors(a, w, c), [Math.ceil(N / 128), Math.ceil(M / 128), batch]);
  return c;
}
