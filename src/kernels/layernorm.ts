// Launcher for LayerNorm over the last dimension (shaders/layernorm.wgsl), optionally fused with SAT's sandwich
// residual add (Ro = R + LN1(X)) and the following LayerNorm (Y = LN2(Ro)). Not RMSNorm; not GroupNorm.

import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import { type RowReduce, rowReduceDefines, unrollFor } from "./choices.ts";

/** Most row values one invocation holds in registers (REGS); wider rows take the WIDE passes over memory instead. */
export const LN_MAX_PER = 16;

/** The row-reduction defines of a layer norm over rows of n: REGS with PER values per invocation where it fits. */
function lnDefines(ctx: GpuContext, n: number, rows: number, reduce?: RowReduce): Record<string, number> {
  const d = rowReduceDefines(ctx, reduce, rows);
  if (!("REGS" in d)) return d;
  const per = Math.ceil(n / d.WG);
  // UNROLL (choices.ts unroll): the PER-value loops expanded, the row's registers indexed by literals only.
  if (per <= LN_MAX_PER) return { ...d, PER: per, UNROLL: unrollFor(ctx) ? 1 : 0 };
  const { REGS: _, ...wide } = d;
  return wide;
}

/** Affine parameters of one LayerNorm: weight (gamma) and bias (beta), both f16 or both f32, [n] each. */
export interface LnParams {
  weight: Tensor;
  bias: Tensor;
}

function grid(rows: number): [number, number, number] {
  if (rows <= 65535) return [rows, 1, 1];
  const y = Math.ceil(rows / 65535);
  return [Math.ceil(rows / y), y, 1];
}

function checkLn(name: string, ln: LnParams, n: number, dtype?: string): void {
  check(ln.weight.size === n && ln.bias.size === n, name, () => `gamma/beta must have ${n} elements`);
  check(
    ln.weight.dtype === ln.bias.dtype && (ln.weight.dtype === "f16" || ln.weight.dtype === "f32"),
    name,
    "gamma/beta must be both f16 or both f32",
  );
  if (dtype) check(ln.weight.dtype === dtype, name, "both LayerNorms must have the same parameter dtype");
}

/** y = (x − mean)/sqrt(var + eps)·gamma + beta over rows of `n` (x: f32 [rows, n], n = last dim). */
export function layerNorm(
  ctx: GpuContext,
  x: Tensor,
  ln: LnParams,
  o: { eps: number; out?: Tensor; reduce?: RowReduce },
): Tensor {
  const n = x.shape[x.shape.length - 1];
  check(x.dtype === "f32", "layerNorm", () => `input must be f32, got ${x.dtype}`);
  checkLn("layerNorm", ln, n);
  const rows = x.size / n;
  const out = o.out ?? ctx.empty(x.shape, "f32");
  check(out.size >= x.size && out.dtype === "f32", "layerNorm", () => `out [${out.shape}] too small`);
  const k = ctx.kernel({
    name: "layernorm",
    shader: "layernorm.wgsl",
    defines: { W_F16: ln.weight.dtype === "f16", ...lnDefines(ctx, n, rows, o.reduce) },
    bindings: ["read", "read", "read", "write"],
  });
  ctx.dispatch(k, [n, rows, f32(o.eps)], [x, ln.weight, ln.bias, out], grid(rows));
  return out;
}

/**
 * Sandwich residual: `residOut = resid + LN1(x)`; with `post`, also `out = LN2(residOut)` (one dispatch).
 * `residOut` must be a different buffer from `resid` and `x`. Returns `{ resid: residOut, out }`.
 */
export function layerNormResidual(
  ctx: GpuContext,
  x: Tensor,
  resid: Tensor,
  ln: LnParams,
  o: { eps: number; residOut: Tensor; post?: LnParams; out?: Tensor; reduce?: RowReduce },
): { resid: Tensor; out?: Tensor } {
  const n = x.shape[x.shape.length - 1];
  const rows = x.size / n;
  check(x.dtype === "f32" && resid.dtype === "f32", "layerNormResidual", "inputs must be f32");
  check(
    resid.size >= x.size,
    "layerNormResidual",
    () => `resid [${resid.shape}] smaller than x [${x.shape}]`,
  );
  check(o.residOut.size >= x.size, "layerNormResidual", () => `residOut [${o.residOut.shape}] too small`);
  checkLn("layerNormResidual", ln, n);
  if (o.post) {
    checkLn("layerNormResidual", o.post, n, ln.weight.dtype);
    const out = o.out ?? ctx.empty(x.shape, "f32");
    const k = ctx.kernel({
      name: "layernorm_resid_post",
      shader: "layernorm.wgsl",
      defines: { W_F16: ln.weight.dtype === "f16", RESID: 1, POST: 1, ...lnDefines(ctx, n, rows, o.reduce) },
      bindings: ["read", "read", "read", "read", "read", "read", "write", "write"],
    });
    ctx.dispatch(
      k,
      [n, rows, f32(o.eps)],
      [x, ln.weight, ln.bias, resid, o.post.weight, o.post.bias, o.residOut, out],
      grid(rows),
    );
    return { resid: o.residOut, out };
  }
  const k = ctx.kernel({
    name: "layernorm_resid",
    shader: "layernorm.wgsl",
    defines: { W_F16: ln.weight.dtype === "f16", RESID: 1, ...lnDefines(ctx, n, rows, o.reduce) },
    bindings: ["read", "read", "read", "read", "write"],
  });
  ctx.dispatch(k, [n, rows, f32(o.eps)], [x, ln.weight, ln.bias, resid, o.residOut], grid(rows));
  return { resid: o.residOut };
}

/**
 * The affine vectors of two LayerNorms in one [4, n] tensor (gamma1, beta1, gamma2, beta2; their dtype), recorded as
 * buffer copies: the operand of a GEMV's LN prologue (src/kernels/gemv.ts GemvLnPrologue), which has no bindings to
 * spare for four separate ones.
 */
export function packLnPair(ctx: GpuContext, ln1: LnParams, ln2: LnParams): Tensor {
  const n = ln1.weight.size, dtype = ln1.weight.dtype;
  checkLn("packLnPair", ln1, n);
  checkLn("packLnPair", ln2, n, dtype);
  const bytes = ln1.weight.byteLength;
  check(bytes % 4 === 0, "packLnPair", () => `${n} ${dtype} values are not a whole number of 4-byte words`);
  const out = ctx.empty([4, n], dtype);
  [ln1.weight, ln1.bias, ln2.weight, ln2.bias].forEach((t, i) =>
    ctx.copy(t, { buffer: out.buffer, offset: out.byteOffset + i * bytes, size: bytes })
  );
  return out;
}
