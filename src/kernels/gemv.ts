// Launcher of shaders/gemv_rows.wgsl: decode-shaped C = alpha·A·Wᵀ (+bias) (GELU) (+resid) for M ≤ 8 rows on GPUs,
// each weight read once in coalesced 16-byte loads (matmul() routes decode rows here off CPU adapters when the
// layout allows: gemvRowsApplies). Batch 1; W [N, K] f16 or f32. CPU twin: src/reference/matmul.ts.
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

/** The layout this kernel takes (W is [N, K]; one batch, so no batch strides). */
export type GemvOptions = Omit<
  MatmulLayout,
  "batch" | "aBatchStride" | "wBatchStride" | "cBatchStride" | "rBatchStride"
>;

/** Whether the layout suits the kernel: M ≤ 8 rows, K-runs of whole 16-byte W loads and vec4 A rows. */
export function gemvRowsApplies(w: Tensor, o: GemvOptions & { transW?: boolean; batch?: number }): boolean {
  const q = w.dtype === "f16" ? 8 : 4;
  const lda = o.lda ?? o.K, ldw = o.ldw ?? o.K;
  return (o.transW ?? true) && (o.batch ?? 1) === 1 && o.M >= 1 && o.M <= 8 &&
    (w.dtype === "f16" || w.dtype === "f32") && o.K % q === 0 && ldw % q === 0 && (o.wOff ?? 0) % q === 0 &&
    lda % 4 === 0 && (o.aOff ?? 0) % 4 === 0 && w.byteOffset % 16 === 0;
}

export function gemvRows(ctx: GpuContext, a: Tensor, w: Tensor, o: GemvOptions): Tensor {
  const { M, N, K } = o;
  check(gemvRowsApplies(w, o), "gemvRows", `layout not supported (M=${M}, K=${K}, ${w.dtype} W)`);
  checkInputsNK("gemvRows", a, w, o);
  const c = matmulOutput(ctx, "gemvRows", o);
  const ep = epilogueBindings(o);
  const defines = { MR: M, W_F16: w.dtype === "f16", ...ep.defines };
  const bindings = ep.access;
  const k = ctx.kernel({ name: "gemv_rows", shader: "gemv_rows.wgsl", defines, bindings });
  const groups = Math.ceil(N / 8);
  const y = Math.ceil(groups / 65535), x = Math.ceil(groups / y);
  const params = [...layoutParams(o), x];
  ctx.dispatch(k, params, ep.tensors(a, w, c), [x, y, 1]);
  return c;
}
