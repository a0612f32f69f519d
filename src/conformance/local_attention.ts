// Conformance handler for kind "local_attention": f_similar → softmax → f_weighting on the GPU kernels
// (src/kernels/local_attention.ts) and the CPU twins, each stage against the original's arrays.
// Not the fused SR attention: no golden case exercises it alone (the dsr/itersr forward cases do, through the models).

import { compareArrays } from "../reference/compare.ts";
import { localSimilar, localWeighting } from "../kernels/local_attention.ts";
import { softmax } from "../kernels/softmax.ts";
import { fSimilarRef, fWeightingRef, softmaxLastRef } from "../reference/local_attention.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

function f32(a: { data: ArrayLike<number> }): Float32Array {
  return a.data instanceof Float32Array ? a.data : Float32Array.from(a.data);
}

/** Inputs q [B,C,H,W], k, v [Bk,C,h,w], kH, kW, casual_mask; expected scores, probs [B,H,W,P], out [B,C,H,W]. */
export async function localAttentionCase(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const [q, k, v] = await Promise.all([cx.npy(c.inputs.q), cx.npy(c.inputs.k), cx.npy(c.inputs.v)]);
  const [es, ep, eo] = await Promise.all([
    cx.npy(c.expected.scores),
    cx.npy(c.expected.probs),
    cx.npy(c.expected.out),
  ]);
  const maxAbs = Number(c.tolerance?.max_abs);
  if (!(maxAbs >= 0)) throw new Error(`${c.case}: tolerance.max_abs missing`);
  const tol = { atol: maxAbs };
  const win = { kH: Number(c.inputs.kH), kW: Number(c.inputs.kW), causal: Boolean(c.inputs.casual_mask) };
  const P = es.shape[es.shape.length - 1];

  // GPU: the kernels, each stage fed by the previous GPU stage.
  const ctx = cx.gpu;
  const tq = ctx.upload(f32(q), q.shape), tk = ctx.upload(f32(k), k.shape), tv = ctx.upload(f32(v), v.shape);
  const s = localSimilar(ctx, tq, tk, win);
  const gs = (await ctx.readF32(s)).slice();
  softmax(ctx, s, { rows: s.size / P, n: P, out: s });
  const gp = (await ctx.readF32(s)).slice();
  const out = localWeighting(ctx, tv, s, win);
  const go = await ctx.readF32(out);
  [tq, tk, tv, s, out].forEach((t) => t.release());

  // CPU twins.
  const cs = fSimilarRef(f32(q), q.shape, f32(k), k.shape, win);
  const cp = softmaxLastRef(cs, P);
  const co = fWeightingRef(f32(v), v.shape, cp, es.shape, win);

  const checks = [
    ["gpu scores", gs, es],
    ["gpu probs", gp, ep],
    ["gpu out", go, eo],
    ["cpu scores", cs, es],
    ["cpu probs", cp, ep],
    ["cpu out", co, eo],
  ] as const;
  let pass = true;
  const parts: string[] = [];
  for (const [name, a, e] of checks) {
    const r = compareArrays(a, f32(e), tol);
    pass &&= r.ok;
    parts.push(r.ok ? `${name} max abs ${r.maxAbs.toExponential(2)}` : `${name} FAIL ${r.summary}`);
  }
  return {
    pass,
    detail: `${win.kH}x${win.kW}${win.causal ? " causal" : ""} q [${q.shape}] k [${k.shape}]: ${
      parts.join("; ")
    }`,
  };
}
