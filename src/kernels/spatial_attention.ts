// The attention core of icetk's AttnBlock on NCHW maps: softmax_j(Σ_c q[c,i]·k[c,j]·C^-0.5) weighted sum of v.
// Composed of matmul (shaders/matmul.wgsl) and a row softmax (shaders/spatial_softmax.wgsl); no norm or projections.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { matmul } from "./matmul.ts";
import { check } from "./_grid.ts";

/** In-place softmax of each row of s [rows, n]. */
export function softmaxRows(ctx: GpuContext, s: Tensor, o: { rows: number; n: number }): Tensor {
  check(
    s.dtype === "f32" && s.size >= o.rows * o.n,
    "softmaxRows",
    `s [${s.shape}] is not an f32 ${o.rows}x${o.n}`,
  );
  const k = ctx.kernel({ name: "spatial_softmax", shader: "spatial_softmax.wgsl", bindings: ["write"] });
  const y = Math.ceil(o.rows / 65535);
  ctx.dispatch(k, [o.rows, o.n], [s], [Math.ceil(o.rows / y), y, 1]);
  return s;
}

/**
 * out [c, n] = v · softmax(qᵀk·c^-0.5)ᵀ, with qT [n, c] channels-last and k, v [c, n] (n = h·w positions).
 * The [n, n] weight matrix lives on the GPU for the call (3600 positions: 52 MB).
 */
export function spatialAttention(
  ctx: GpuContext,
  qT: Tensor,
  k: Tensor,
  v: Tensor,
  o: { c: number; n: number; out?: Tensor },
): Tensor {
  const { c, n } = o;
  check(
    qT.size === c * n && k.size === c * n && v.size === c * n,
    "spatialAttention",
    `q, k, v must each hold ${c}x${n}`,
  );
  const s = matmul(ctx, qT, k, { M: n, N: n, K: c, transW: false, alpha: c ** -0.5 });
  softmaxRows(ctx, s, { rows: n, n });
  const out = matmul(ctx, v, s, { M: c, N: n, K: n, transW: true, out: o.out });
  s.release();
  return out;
}
