// gemvRows with the LN prologue (shaders/gemv_rows.wgsl LNPRO: a decode step's sandwich chain folded into the GEMV
// that consumes it) against the CPU twins: residOut = R + LN1(X), C = gelu?(LN2(residOut)·Wᵀ + bias). Odd N (a
// ragged last workgroup), K not a multiple of 4·workgroup size (masked prologue lanes), M 1 and 3, f16 / f32 W and
// LN parameters, the tree and the subgroup reductions (Dawn here: COGVIEW2_GPU=dawn), packLnPair's packing.
import assert from "node:assert/strict";
import { gemvLnApplies, gemvRows } from "../../src/kernels/gemv.ts";
import { packLnPair } from "../../src/kernels/layernorm.ts";
import { layerNormRef, layerNormResidualRef } from "../../src/reference/layernorm.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

const N = 37, EPS = 1e-5;
const round16 = (v: Float32Array) => f16BitsToF32(f32ToF16Bits(v));

for (
  const c of [
    { M: 1, K: 1096, dtype: "f32", gemv: "rows8", epi: false },
    { M: 3, K: 264, dtype: "f16", gemv: "l64c2u2", epi: true },
    { M: 2, K: 520, dtype: "f16", gemv: "c4u2", epi: true },
  ] as const
) {
  Deno.test(`gemvRows LN prologue ${c.gemv} M=${c.M} K=${c.K} ${c.dtype} matches LN2(R + LN1(X))·Wᵀ (CPU twins)`, async () => {
    const ctx = await sharedContext();
    const { M, K } = c;
    assert.ok(gemvLnApplies(ctx, M, K, c.gemv));
    const x = randn(M * K, 1, 1.5), r = randn(M * K, 2, 1);
    const p = [randn(K, 3, 0.3), randn(K, 4, 0.2), randn(K, 5, 0.3), randn(K, 6, 0.2)].map((v, i) => {
      if (i % 2 === 0) { for (let j = 0; j < K; j++) v[j] += 1; }
      return c.dtype === "f16" ? round16(v) : v;
    });
    const wRaw = randn(N * K, 7, 0.1), w = c.dtype === "f16" ? round16(wRaw) : wRaw;
    const bias = randn(N, 8, 0.5);
    const up = (v: Float32Array) => ctx.upload(v, [K], c.dtype);
    const [g1, b1, g2, b2] = p.map(up);
    const params = packLnPair(ctx, { weight: g1, bias: b1 }, { weight: g2, bias: b2 });
    const xt = ctx.upload(x, [M, K]), rt = ctx.upload(r, [M, K]), wt = ctx.upload(wRaw, [N, K], c.dtype);
    const bt = ctx.upload(bias, [N]), ro = ctx.empty([M, K]), out = ctx.empty([M, N]);
    gemvRows(ctx, xt, wt, {
      M,
      N,
      K,
      out,
      gemv: c.gemv,
      ...(c.epi ? { bias: bt, gelu: true } : {}),
      ln: { resid: rt, params, residOut: ro, eps: EPS },
    });
    const o = layerNormResidualRef(x, r, p[0], p[1], K, EPS);
    const y = layerNormRef(o, p[2], p[3], K, EPS);
    const want = matmulStridedRef(y, w, new Float32Array(M * N), {
      M,
      N,
      K,
      ...(c.epi ? { bias, gelu: true } : {}),
    });
    // f32 statistics and sums in another order than the float64 twins: O(1) rows, K products of O(1)·O(0.1).
    assertClose("residOut", await ctx.readF32(ro), o, { atol: 2e-5, rtol: 1e-5 });
    assertClose("C", await ctx.readF32(out), want, { atol: 3e-6 * Math.sqrt(K) + 2e-5, rtol: 1e-4 });
    [g1, b1, g2, b2, params, xt, rt, wt, bt, ro, out].forEach((t) => t.release());
  });
}

Deno.test("gemvLnApplies: the rows must fit workgroup memory and K be whole vec4", async () => {
  const ctx = await sharedContext();
  const limit = ctx.gpu.limits.maxComputeWorkgroupStorageSize;
  assert.equal(gemvLnApplies(ctx, 1, 3072), 4 * (3072 + 2 * 256) <= limit);
  assert.equal(gemvLnApplies(ctx, 8, limit), false);
  assert.equal(gemvLnApplies(ctx, 1, 1098), false);
});

// gemvRows keeps its kernels per context by launch signature (src/kernels/gemv.ts gemvKernel): launches of one shape
// and variant that differ only in an epilogue operand, the W dtype or the LN prologue (and its parameters' dtype)
// must each run their own kernel, in any order on one context.
Deno.test("gemvRows' per-context kernels: launches alike but for GELU, bias dtype, residual, W dtype or the LN prologue each match the CPU twin", async () => {
  const ctx = (await sharedContext()).withGpuSchedules(); // a context of its own: none of its kernels made yet
  const M = 1, K = 136;
  const x = randn(M * K, 11, 1.5), r = randn(M * K, 12, 1), wRaw = randn(N * K, 13, 0.1);
  const biasRaw = randn(N, 14, 0.5), resid = randn(M * N, 15, 1);
  const p = [randn(K, 16, 0.3), randn(K, 17, 0.2), randn(K, 18, 0.3), randn(K, 19, 0.2)];
  for (let j = 0; j < K; j++) p[0][j] += 1, p[2][j] += 1;
  const xt = ctx.upload(x, [M, K]), rt = ctx.upload(r, [M, K]), res = ctx.upload(resid, [M, N]);
  const cases: { w: "f16" | "f32"; epi: string; ln?: "f16" | "f32" }[] = [
    { w: "f16", epi: "" },
    { w: "f16", epi: "gelu" },
    { w: "f16", epi: "bias32" },
    { w: "f16", epi: "bias16" },
    { w: "f16", epi: "resid" },
    { w: "f32", epi: "" },
    { w: "f16", epi: "", ln: "f32" },
    { w: "f16", epi: "", ln: "f16" },
    { w: "f16", epi: "gelu" },
  ];
  for (const c of cases) {
    const wt = ctx.upload(wRaw, [N, K], c.w), w = c.w === "f16" ? round16(wRaw) : wRaw;
    const b16 = c.epi === "bias16", bias = b16 ? round16(biasRaw) : biasRaw;
    const bt = ctx.upload(biasRaw, [N], b16 ? "f16" : "f32");
    const lp = c.ln ? p.map((v) => (c.ln === "f16" ? round16(v) : v)) : null;
    const lpt = lp ? lp.map((v) => ctx.upload(v, [K], c.ln!)) : [];
    const params = lp
      ? packLnPair(ctx, { weight: lpt[0], bias: lpt[1] }, { weight: lpt[2], bias: lpt[3] })
      : null;
    const ro = ctx.empty([M, K]), out = ctx.empty([M, N]);
    gemvRows(ctx, xt, wt, {
      M,
      N,
      K,
      out,
      gemv: "rows8",
      ...(c.epi === "gelu" ? { gelu: true } : {}),
      ...(c.epi.startsWith("bias") ? { bias: bt } : {}),
      ...(c.epi === "resid" ? { resid: res } : {}),
      ...(params ? { ln: { resid: rt, params, residOut: ro, eps: EPS } } : {}),
    });
    const a = lp ? layerNormRef(layerNormResidualRef(x, r, lp[0], lp[1], K, EPS), lp[2], lp[3], K, EPS) : x;
    const want = matmulStridedRef(a, w, new Float32Array(M * N), {
      M,
      N,
      K,
      ...(c.epi === "gelu" ? { gelu: true } : {}),
      ...(c.epi.startsWith("bias") ? { bias } : {}),
      ...(c.epi === "resid" ? { resid } : {}),
    });
    assertClose(`C (${JSON.stringify(c)})`, await ctx.readF32(out), want, { atol: 1e-4, rtol: 1e-4 });
    [wt, bt, ro, out, ...lpt, ...(params ? [params] : [])].forEach((t) => t.release());
  }
  [xt, rt, res].forEach((t) => t.release());
});
