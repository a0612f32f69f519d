// Launcher of shaders/gemm_tiles.wgsl: the register-blocked GEMM for GPUs (128×128 tiles, 8×8 per invocation, K slices
// prefetched into registers), C = alpha·A·Wᵀ (+bias) (GELU) (+resid) with f16 or f32 W [N, K] and f32 accumulation,
// strided batches. matmul() routes weight-shaped products (M > 8, W [N, K]) here off CPU adapters when the layout
// allows (gemmTilesApplies). CPU twin: src/reference/matmul.ts.
import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import { epilogueBindings, type MatmulLayout, matmulOutput } from "./_epilogue.ts";

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
  check(a.dtype === "f32", "gemmTiles", `A must be f32, got ${a.dtype}`);
  const lda = o.lda ?? K, ldw = o.ldw ?? K, ldc = o.ldc ?? N, ldr = o.ldr ?? ldc;
  const aBs = o.aBatchStride ?? M * lda, wBs = o.wBatchStride ?? 0, cBs = o.cBatchStride ?? M * ldc;
  const rBs = o.rBatchStride ?? cBs;
  const aOff = o.aOff ?? 0, wOff = o.wOff ?? 0, cOff = o.cOff ?? 0;
  const last = (off: number, bs: number, rows: number, ld: number, cols: number) =>
    off + (batch - 1) * bs + (rows - 1) * ld + cols;
  check(last(aOff, aBs, M, lda, K) <= a.size, "gemmTiles", `A [${a.shape}] too small for M=${M} K=${K}`);
  check(last(wOff, wBs, N, ldw, K) <= w.size, "gemmTiles", `W [${w.shape}] too small for N=${N} K=${K}`);
  const c = matmulOutput(ctx, "gemmTiles", o);
  const ep = epilogueBindings(o);
  const defines = { W_F16: w.dtype === "f16", ...ep.defines };
  const bindings = ep.access;
  const k = ctx.kernel({ name: "gemm_tiles", shader: "gemm_tiles.wgsl", defines, bindings });
  const params = [
    M,
    N,
    K,
    lda,
    ldw,
    ldc,
    aOff,
    wOff,
    cOff,
    aBs,
    wBs,
    cBs,
    f32(o.alpha ?? 1),
    o.biasOff ?? 0,
    o.rOff ?? 0,
    ldr,
    rBs,
  ];
  ctx.dispatch(k, params, ep.tensors(a, w, c), [Math.ceil(N / 128), Math.ceil(M / 128), batch]);
  return c;
}
