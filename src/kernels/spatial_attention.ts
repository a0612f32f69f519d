// The attention core of icetk's AttnBlock on NCHW maps: softmax_j(Σ_c q[c,i]·k[c,j]·C^-0.5) weighted sum of v.
// Composed of matmul (shaders/matmul.wgsl) and the in-place row softmax of shaders/softmax.wgsl; no norm or projections.
// Query rows run in blocks whose [rows, n] score matrix fits one storage binding (and `maxScoreBytes`), so the full
// n×n matrix never exists when it would not fit (the encoder's 120×120 map at 480 px: 14400² floats = 829 MB).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { matmul } from "./matmul.ts";
import { softmax } from "./softmax.ts";
import { check } from "./_grid.ts";

/** Query rows per block: as many as fit `maxScoreBytes` (default: the adapter's max storage binding), at least 1. */
export function attentionBlockRows(ctx: GpuContext, n: number, maxScoreBytes?: number): number {
  const limit = Math.min(maxScoreBytes ?? Infinity, ctx.maxBinding);
  return Math.max(1, Math.min(n, Math.floor(limit / (4 * n))));
}

/**
 * out [c, n] = v · softmax(qᵀk·c^-0.5)ᵀ, with qT [n, c] channels-last and k, v [c, n] (n = h·w positions).
 * Each block of query rows: scores [rows, n] = qT[rows]·k, row softmax, out[:, rows] = v·scoresᵀ (strided columns
 * of out). One score buffer of the block size lives on the GPU for the call; `blockRows` overrides the block (tests).
 * `kT`: k given channels-last [n, c] instead (for a k above the max storage binding: the scores of each query block
 * are then computed in blocks of keys, each a bound row block of kT).
 */
export function spatialAttention(
  ctx: GpuContext,
  qT: Tensor,
  k: Tensor,
  v: Tensor,
  o: { c: number; n: number; out?: Tensor; maxScoreBytes?: number; blockRows?: number; kT?: boolean },
): Tensor {
  const { c, n } = o;
  check(
    qT.size === c * n && k.size === c * n && v.size === c * n,
    "spatialAttention",
    () => `q, k, v must each hold ${c}x${n}`,
  );
  const block = Math.max(1, Math.min(n, o.blockRows ?? attentionBlockRows(ctx, n, o.maxScoreBytes)));
  if (block === n && !o.kT) {
    const s = matmul(ctx, qT, k, { M: n, N: n, K: c, transW: false, alpha: c ** -0.5 });
    softmax(ctx, s, { rows: n, n, out: s });
    const out = matmul(ctx, v, s, { M: c, N: n, K: n, transW: true, out: o.out });
    s.release();
    return out;
  }
  const out = o.out ?? ctx.empty([c, n], "f32");
  check(
    out.dtype === "f32" && out.size >= c * n,
    "spatialAttention",
    () => `out [${out.shape}] cannot hold ${c}x${n}`,
  );
  const s = ctx.empty([block, n], "f32");
  // Keys per block of kT rows: a bound view (one alignment of slack).
  const span = Math.floor(ctx.maxBinding / 4) - ctx.gpu.limits.minStorageBufferOffsetAlignment / 4;
  const kb = k.byteLength <= ctx.maxBinding ? n : Math.floor(span / c);
  check(kb >= 1, "spatialAttention", () => `one key of ${c} channels exceeds the max storage binding`);
  for (let i0 = 0; i0 < n; i0 += block) {
    const rows = Math.min(block, n - i0);
    if (!o.kT) {
      matmul(ctx, qT, k, { M: rows, N: n, K: c, transW: false, alpha: c ** -0.5, aOff: i0 * c, out: s });
    } else {
      for (let j0 = 0; j0 < n; j0 += kb) {
        const nk = Math.min(kb, n - j0);
        const kv = ctx.alignedView(k, j0 * c, (j0 + nk) * c);
        matmul(ctx, qT, kv.t, {
          M: rows,
          N: nk,
          K: c,
          transW: true,
          wOff: kv.off,
          alpha: c ** -0.5,
          aOff: i0 * c,
          ldc: n,
          cOff: j0,
          out: s,
        });
      }
    }
    softmax(ctx, s, { rows, n, out: s });
    matmul(ctx, v, s, { M: c, N: rows, K: n, transW: true, ldw: n, ldc: n, cOff: i0, out });
  }
  s.release();
  return out;
}
