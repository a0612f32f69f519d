// The SR attention where q/k/v planes of several sequences, or one head's score matrix, exceed the max storage binding
// (#14: batch >= 2 at published widths, DSR's 4,624-token sequences): on a context whose binding limit is lowered
// below two sequences' planes and one head's [s, s] scores, maskedAttention runs per sequence and in query-row blocks,
// srLocalAttention per sequence; both against the CPU twins (src/reference/attention.ts, local_attention.ts).
import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { maskedAttention } from "../../src/models/sr_common.ts";
import { plainRows, srLocalAttention } from "../../src/kernels/local_attention.ts";
import { standardAttentionRef } from "../../src/reference/attention.ts";
import { srAttentionRef } from "../../src/reference/local_attention.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

const LIMIT = 16384;

async function limited(): Promise<GpuContext> {
  const shared = await sharedContext();
  return new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: LIMIT },
  });
}

Deno.test("maskedAttention: batch-2 planes above the binding run per sequence, a head's [s, s] scores in query-row blocks", async () => {
  const ctx = await limited();
  // s = 151 rows, 2 heads x 8: one sequence's plane 9.7 KB fits, two (19.3 KB) do not; one head's scores (91 KB)
  // run in blocks of 27 query rows (the last one short).
  const batch = 2, s = 151, heads = 2, d = 8, hidden = heads * d;
  assert.ok(batch * s * hidden * 4 > LIMIT && s * hidden * 4 < LIMIT && s * s * 4 > 4 * LIMIT);
  const r = rng(3);
  // Additive mask / log-weights [s, s]: -1e9 where masked (maskToAdd's value), else a log weight.
  const add = Float32Array.from({ length: s * s }, (_, i) => (r() < 0.3 && i % (s + 1) ? -1e9 : r() - 0.5));
  for (const path of ["matmul", "flash"] as const) {
    const q = randn(batch * s * hidden, 1),
      k = randn(batch * s * hidden, 2),
      v = randn(batch * s * hidden, 3);
    const tq = ctx.upload(q, [batch * s, hidden]), tk = ctx.upload(k, [batch * s, hidden]);
    const tv = ctx.upload(v, [batch * s, hidden]), ta = ctx.upload(add, [s, s]);
    const out = ctx.empty([batch * s, hidden]);
    const rows = (t: typeof tq) => plainRows(t, { tokens: s });
    maskedAttention(ctx, {
      batch,
      s,
      heads,
      headDim: d,
      q: rows(tq),
      k: rows(tk),
      v: rows(tv),
      add: ta,
      out: rows(out),
      path,
    });
    const got = await ctx.readF32(out);
    for (let b = 0; b < batch; b++) {
      const seq = (x: Float32Array) => x.subarray(b * s * hidden, (b + 1) * s * hidden);
      const want = standardAttentionRef(seq(q), seq(k), seq(v), { heads, d, rows: s, keys: s, logw: add });
      // Softmax-weighted means of N(0,1) values over 151 keys in f32.
      assertClose(`maskedAttention ${path} sequence ${b}`, seq(got), want, { atol: 3e-5, rtol: 1e-4 });
    }
    [tq, tk, tv, ta, out].forEach((t) => t.release());
  }
});

Deno.test("srLocalAttention: batch-2 planes above the binding run per sequence (DSR low-res and iterative-SR text)", async () => {
  const ctx = await limited();
  // 12x12 grid, 2 heads x 8: one sequence's plane (9.2 KB) fits, two do not.
  const batch = 2, heads = 2, headDim = 8, side = 12, hidden = heads * headDim, S = side * side, L = 4, T = 5;
  assert.ok(batch * S * hidden * 4 > LIMIT && S * hidden * 4 < LIMIT);
  const host = (data: Float32Array, tokens: number) => ({
    data,
    offset: 0,
    rowStride: hidden,
    batchStride: tokens * hidden,
  });
  const up = (x: Float32Array, tokens: number) => ctx.upload(x, [batch * tokens, hidden]);
  const q = randn(batch * S * hidden, 11),
    k = randn(batch * S * hidden, 12),
    v = randn(batch * S * hidden, 13);
  const k2 = randn(batch * L * L * hidden, 14), v2 = randn(batch * L * L * hidden, 15);
  const tk = randn(batch * T * hidden, 16), tv = randn(batch * T * hidden, 17);
  // A per-sequence text mask and log-weights ([batch, T]).
  const mask = Float32Array.from({ length: batch * T }, (_, i) => (i % 3 === 1 ? 0 : 1));
  const logw = randn(batch * T, 18, 0.5);
  const t = {
    q: up(q, S),
    k: up(k, S),
    v: up(v, S),
    k2: up(k2, L * L),
    v2: up(v2, L * L),
    tk: up(tk, T),
    tv: up(tv, T),
    mask: ctx.upload(mask, [batch, T]),
    logw: ctx.upload(logw, [batch, T]),
  };
  const rows = (x: typeof t.q, tokens: number) => plainRows(x, { tokens });
  for (const mode of ["lowres", "text"] as const) {
    const out = srLocalAttention(ctx, {
      batch,
      heads,
      headDim,
      side,
      kernelSize: 5,
      q: rows(t.q, S),
      k: rows(t.k, S),
      v: rows(t.v, S),
      lowres: mode === "lowres"
        ? { side: L, kernelSize: 3, k: rows(t.k2, L * L), v: rows(t.v2, L * L), addScalar: 0.3 }
        : undefined,
      text: mode === "text"
        ? { length: T, k: rows(t.tk, T), v: rows(t.tv, T), mask: t.mask, logWeights: t.logw }
        : undefined,
    });
    const want = srAttentionRef({
      batch,
      heads,
      headDim,
      side,
      kernelSize: 5,
      q: host(q, S),
      k: host(k, S),
      v: host(v, S),
      lowres: mode === "lowres"
        ? { side: L, kernelSize: 3, k: host(k2, L * L), v: host(v2, L * L), addScalar: 0.3 }
        : undefined,
      text: mode === "text"
        ? { length: T, k: host(tk, T), v: host(tv, T), mask, logWeights: logw }
        : undefined,
    });
    // As local_attention_test: online vs two-pass softmax and f32 sums differ by ~1e-6.
    assertClose(`srLocalAttention ${mode} per sequence`, await ctx.readF32(out), want, {
      atol: 3e-5,
      rtol: 1e-4,
    });
    out.release();
  }
  Object.values(t).forEach((x) => x.release());
});
