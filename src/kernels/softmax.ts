// Launchers for the row reductions of shaders/softmax.wgsl: softmax (with an additive mask / log-weight rows),
// per-row log-probability of a target (perplexity) and row argmax (greedy decoding). Not the attention softmax.

import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";
import { type RowReduce, rowReduceDefines } from "./choices.ts";

function grid(rows: number): [number, number, number] {
  if (rows <= 65535) return [rows, 1, 1];
  const y = Math.ceil(rows / 65535);
  return [Math.ceil(rows / y), y, 1];
}

/** Rows of `n` values of `x` starting at element `xOff`, `ld` apart (default dense). */
export interface RowView {
  n: number;
  rows: number;
  ld?: number;
  xOff?: number;
}

function rowsOk(name: string, x: Tensor, v: RowView): number {
  const ld = v.ld ?? v.n;
  check(x.dtype === "f32", name, () => `input must be f32, got ${x.dtype}`);
  check(v.n > 0 && v.rows > 0, name, "empty rows");
  check(
    (v.xOff ?? 0) + (v.rows - 1) * ld + v.n <= x.size,
    name,
    () => `x [${x.shape}] too small for ${v.rows}x${v.n}`,
  );
  return ld;
}

/**
 * out[r] = softmax(x[r]·scale + add[r % addRows]) over `n` columns; `add` ([addRows, n] f32) is an additive mask
 * or log-weights. Output is dense [rows, n]; `out` may be `x` itself (in place, dense rows from element 0, no add).
 */
export function softmax(
  ctx: GpuContext,
  x: Tensor,
  o: RowView & { scale?: number; add?: Tensor; out?: Tensor; reduce?: RowReduce },
): Tensor {
  const ld = rowsOk("softmax", x, o);
  const out = o.out ?? ctx.empty([o.rows, o.n], "f32");
  check(out.size >= o.rows * o.n, "softmax", () => `out [${out.shape}] too small`);
  const inPlace = out === x;
  if (inPlace) {
    check(ld === o.n && !o.xOff && !o.add, "softmax", "in place needs dense rows from element 0 and no add");
  }
  const aRows = o.add ? o.add.size / o.n : 1;
  if (o.add) {
    check(
      Number.isInteger(aRows) && o.add.dtype === "f32",
      "softmax",
      () => `add [${o.add!.shape}] is not f32 [k, ${o.n}]`,
    );
  }
  const k = ctx.kernel({
    name: o.add ? "softmax_add" : inPlace ? "softmax_in_place" : "softmax",
    shader: "softmax.wgsl",
    defines: { ADD: !!o.add, IN_PLACE: inPlace, ...rowReduceDefines(ctx, o.reduce) },
    bindings: o.add ? ["read", "read", "write"] : inPlace ? ["write"] : ["read", "write"],
  });
  const params = [o.n, o.rows, ld, o.xOff ?? 0, aRows, f32(o.scale ?? 1), 0, 0];
  ctx.dispatch(k, params, o.add ? [x, o.add, out] : inPlace ? [out] : [x, out], grid(o.rows));
  return out;
}

/**
 * For each row r: out[2r] = logsumexp(x[r]), out[2r+1] = x[r, targets[r]] − logsumexp (0 where the target is < 0).
 * `targets` is i32 [rows].
 */
export function logProb(
  ctx: GpuContext,
  x: Tensor,
  targets: Tensor,
  o: RowView & { out?: Tensor; reduce?: RowReduce },
): Tensor {
  const ld = rowsOk("logProb", x, o);
  check(
    targets.dtype === "i32" && targets.size >= o.rows,
    "logProb",
    () => `targets must be i32 [${o.rows}]`,
  );
  const out = o.out ?? ctx.empty([o.rows, 2], "f32");
  const k = ctx.kernel({
    name: "logprob",
    shader: "softmax.wgsl",
    entry: "logprob",
    defines: { LOGPROB: 1, ...rowReduceDefines(ctx, o.reduce) },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(k, [o.n, o.rows, ld, o.xOff ?? 0, 1, f32(1), 0, 0], [x, targets, out], grid(o.rows));
  return out;
}

/**
 * ids[oOff + r·oStride] = argmax of row r (first index among equal maxima, as torch.argmax). `ids` is i32;
 * pass an existing tensor to write straight into a token history.
 */
export function argmaxRows(
  ctx: GpuContext,
  x: Tensor,
  o: RowView & { out?: Tensor; oOff?: number; oStride?: number },
): Tensor {
  const ld = rowsOk("argmaxRows", x, o);
  const oOff = o.oOff ?? 0, oStride = o.oStride ?? 1;
  const out = o.out ?? ctx.empty([o.rows], "i32");
  check(
    out.dtype === "i32" && oOff + (o.rows - 1) * oStride < out.size,
    "argmaxRows",
    () => `out [${out.shape}] too small`,
  );
  const k = ctx.kernel({
    name: "argmax",
    shader: "softmax.wgsl",
    entry: "argmax",
    defines: { ARGMAX: 1 },
    bindings: ["read", "write"],
  });
  ctx.dispatch(k, [o.n, o.rows, ld, o.xOff ?? 0, 1, f32(1), oOff, oStride], [x, out], grid(o.rows));
  return out;
}
