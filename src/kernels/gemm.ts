// Launcher of shaders/gemm_tiles.wgsl: the register-blocked GEMM for GPUs (128×128 tiles, 8×8 per invocation, K slices
// prefetched into registers), C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with f16 or f32 W [N, K] and f32 accumulation,
// strided batches. matmul() routes weight-shaped products (M > 8, W [N, K]) here off CPU adapters when the layout
// allows (gemmTilesApplies). CPU twin: src/reference/matmul.ts.
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

/** The layout this kernel takes (W is [N, K]). */
export type GemmOptions = MatmulLayout;

/** Whether the layout suits the kernel: W [N, K] f16/f32, and every K-run starting on a multiple of 4 elements. */
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
  const ep = epilogueBindings(o);
  const defines = { W_F16: w.dtype === "f16", ...ep.defines };
  const bindings = ep.access;
  const k = ctx.kernel({ name: "gemm_tiles", shader: "gemm_tiles.wgsl", defines, bindings });
  const params = layoutParams(o);
  ctx.dispatch(k, params, ep.tensors(a, w, c), [Math.ceil(N / 128), Math.ceil(M / 128), batch]);
  return c;
}
