import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { attentionBlockRows, spatialAttention } from "../../src/kernels/spatial_attention.ts";
import { conv2d } from "../../src/kernels/conv2d.ts";
import { spatialAttentionRef } from "../../src/reference/spatial_attention.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("spatialAttention (channels-last q from a 1x1 conv, softmax over keys) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  // [channels, positions]: 1 position, primes, more positions than a 256-thread softmax row.
  for (const [c, n] of [[1, 1], [3, 7], [32, 61], [33, 300]]) {
    const q = randn(c * n, c + n), k = randn(c * n, c + n + 1), v = randn(c * n, c + n + 2);
    // qT via an identity 1x1 conv writing channels-last (how the model produces it).
    const eye = new Float32Array(c * c);
    for (let i = 0; i < c; i++) eye[i * c + i] = 1;
    const tq = ctx.upload(q, [c, 1, n]), te = ctx.upload(eye, [c, c, 1, 1]);
    const qT = conv2d(ctx, tq, te, { h: 1, w: n, channelsLast: true });
    const tk = ctx.upload(k, [c, n]), tv = ctx.upload(v, [c, n]);
    const out = spatialAttention(ctx, qT, tk, tv, { c, n });
    // Two f32 matmuls of length c and n around an exp: bound grows with sqrt(n).
    assertClose(
      `spatialAttention c=${c} n=${n}`,
      await ctx.readF32(out),
      spatialAttentionRef(q, k, v, { c, n }),
      {
        atol: 1e-5 * Math.sqrt(n + c) * 4,
        rtol: 1e-4,
      },
    );
    [tq, te, qT, tk, tv, out].forEach((t) => t.release());
  }
});

Deno.test("spatialAttention in query-row blocks (forced by blockRows / maxScoreBytes) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  // Odd sizes; blocks that do not divide n (last block short), single-row blocks, a byte limit of 16 rows.
  const cases: [number, number, { blockRows?: number; maxScoreBytes?: number }][] = [
    [5, 37, { blockRows: 5 }],
    [3, 37, { blockRows: 1 }],
    [33, 150, { maxScoreBytes: 4 * 150 * 16 + 3 }],
    [33, 150, { blockRows: 149 }],
    [16, 300, { blockRows: 257 }],
  ];
  for (const [c, n, opt] of cases) {
    const q = randn(c * n, 7 * c + n), k = randn(c * n, 7 * c + n + 1), v = randn(c * n, 7 * c + n + 2);
    const qT = ctx.upload(transpose(q, c, n), [n, c]);
    const tk = ctx.upload(k, [c, n]), tv = ctx.upload(v, [c, n]);
    // A dirty output buffer: every column must be written by exactly its block.
    const out = ctx.upload(new Float32Array(c * n).fill(123), [c, n]);
    spatialAttention(ctx, qT, tk, tv, { c, n, out, ...opt });
    assertClose(
      `spatialAttention blocks c=${c} n=${n} ${JSON.stringify(opt)}`,
      await ctx.readF32(out),
      spatialAttentionRef(q, k, v, { c, n }),
      { atol: 1e-5 * Math.sqrt(n + c) * 4, rtol: 1e-4 },
    );
    [qT, tk, tv, out].forEach((t) => t.release());
  }
  assert.equal(attentionBlockRows(ctx, 150, 4 * 150 * 16 + 3), 16);
  assert.equal(attentionBlockRows(ctx, 14400), Math.min(14400, Math.floor(ctx.maxBinding / (4 * 14400))));
  assert.equal(attentionBlockRows(ctx, 37, 1), 1);
});

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) t[j * rows + r] = x[r * cols + j];
  return t;
}

Deno.test("spatialAttention: q, k, v above the max storage binding (k channels-last, bound in key blocks)", async () => {
  const shared = await sharedContext();
  const limit = 16384;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  // c·n floats = 4-5x the limit's 4096: key blocks of 4032/c rows that do not divide n; query blocks of 16 rows.
  for (const [c, n] of [[33, 607], [48, 401]]) {
    const q = randn(c * n, 3 * c + n), k = randn(c * n, 3 * c + n + 1), v = randn(c * n, 3 * c + n + 2);
    const qT = ctx.upload(transpose(q, c, n), [n, c]), kT = ctx.upload(transpose(k, c, n), [n, c]);
    const tv = ctx.upload(v, [c, n]);
    assert.ok(kT.byteLength > 4 * limit);
    const out = spatialAttention(ctx, qT, kT, tv, { c, n, kT: true });
    assertClose(
      `spatialAttention kT c=${c} n=${n}`,
      await ctx.readF32(out),
      spatialAttentionRef(q, k, v, { c, n }),
      { atol: 1e-5 * Math.sqrt(n + c) * 4, rtol: 1e-4 },
    );
    [qT, kT, tv, out].forEach((t) => t.release());
  }
});
