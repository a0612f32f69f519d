import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import assert from "node:assert/strict";
import { matmul, matmulChunked, resolveMatmul } from "../../src/kernels/matmul.ts";
import { gemmTiles } from "../../src/kernels/gemm.ts";
import { gemvRows } from "../../src/kernels/gemv.ts";
import { matmulRef, matmulStridedRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// Sizes include 1, primes and non-multiples of the 64x64x16 tile.
const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 65], [64, 64, 64], [97, 130, 47], [
  129,
  1,
  257,
]];

Deno.test("matmul f32 (transposed and plain W) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [M, N, K] of SIZES) {
    for (const transW of [true, false]) {
      const a = randn(M * K, M + N + K), w = randn(N * K, 7 * K + N);
      const ta = ctx.upload(a, [M, K]), tw = ctx.upload(w, transW ? [N, K] : [K, N]);
      const c = matmul(ctx, ta, tw, { M, N, K, transW });
      const got = await ctx.readF32(c);
      // f32 accumulation order differs from the reference: bound grows with sqrt(K)
      assertClose(`matmul ${M}x${N}x${K} transW=${transW}`, got, matmulRef(a, w, { M, N, K, transW }), {
        atol: 1e-5 * Math.sqrt(K) * 4,
        rtol: 1e-5,
      });
      [ta, tw, c].forEach((t) => t.release());
    }
  }
  await ctx.sync();
});

Deno.test("matmul f16 weights with bias, alpha, batch matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [M, N, K] of SIZES) {
    const batch = 3;
    const a = randn(batch * M * K, 11 + M), wRaw = randn(N * K, 13 + N), biasRaw = randn(N, 17);
    const w = f16BitsToF32(f32ToF16Bits(wRaw)), bias = f16BitsToF32(f32ToF16Bits(biasRaw));
    const ta = ctx.upload(a, [batch * M, K]);
    const tw = ctx.upload(wRaw, [N, K], "f16"), tb = ctx.upload(biasRaw, [N], "f16");
    const c = matmul(ctx, ta, tw, { M, N, K, batch, alpha: 0.5, bias: tb });
    const got = await ctx.readF32(c);
    assertClose(`matmul f16 ${M}x${N}x${K}`, got, matmulRef(a, w, { M, N, K, batch, alpha: 0.5, bias }), {
      atol: 1e-5 * Math.sqrt(K) * 4,
      rtol: 1e-5,
    });
    [ta, tw, tb, c].forEach((t) => t.release());
  }
});

Deno.test("matmul over a row-chunked weight writes each column block", async () => {
  const ctx = await sharedContext();
  const M = 5, N = 37, K = 9;
  const a = randn(M * K, 1), w = randn(N * K, 2);
  const ta = ctx.upload(a, [M, K]);
  // Force small chunks by building them by hand (the adapter's binding limit is far larger).
  const chunks = [];
  for (let r = 0; r < N; r += 10) {
    const n = Math.min(10, N - r);
    chunks.push({ row0: r, rows: n, tensor: ctx.upload(w.subarray(r * K, (r + n) * K), [n, K]) });
  }
  const c = matmulChunked(ctx, ta, { rows: N, cols: K, dtype: "f32", chunks }, { M, cols: 25 });
  const full = matmulRef(a, w, { M, N, K });
  const want = new Float32Array(M * 25);
  for (let m = 0; m < M; m++) for (let n = 0; n < 25; n++) want[m * 25 + n] = full[m * N + n];
  assertClose("matmulChunked", await ctx.readF32(c), want, { atol: 1e-5 });
});

// Attention over packed heads: qkv [S, 3H] (H = heads·d), per-head Q·Kᵀ (A and W strided by 3H, batch over heads
// by offset d) into dense scores, then scores·V with W = V in [K,N] layout and C written head by head into [S, H].
// d = 8 takes the vec4 path, d = 5 the scalar one; each schedule runs it.
for (const variant of ["auto", "tiled", "direct", "gemv"] as const) {
  Deno.test(`matmul ${variant}: attention heads through strides, offsets and batch strides`, async () => {
    const ctx = await sharedContext();
    for (const [S, heads, d] of [[21, 3, 8], [13, 2, 5]]) {
      const H = heads * d;
      const qkv = randn(S * 3 * H, S + d);
      const tq = ctx.upload(qkv, [S, 3 * H]);
      const alpha = 1 / Math.sqrt(d);
      const sOpts = {
        M: S,
        N: S,
        K: d,
        batch: heads,
        lda: 3 * H,
        ldw: 3 * H,
        aOff: 0,
        wOff: H,
        aBatchStride: d,
        wBatchStride: d,
        alpha,
        variant,
      };
      if (variant === "auto" || variant === "direct") {
        assert.equal(resolveMatmul(ctx, tq, tq, sOpts).vec4, d % 4 === 0);
      }
      const scores = matmul(ctx, tq, tq, sOpts);
      const wantS = matmulStridedRef(qkv, qkv, new Float32Array(heads * S * S), sOpts);
      assertClose(`${variant} scores S=${S} d=${d}`, await ctx.readF32(scores), wantS, {
        atol: 1e-4,
        rtol: 1e-5,
      });
      const oOpts = {
        M: S,
        N: d,
        K: S,
        batch: heads,
        transW: false,
        ldw: 3 * H,
        wOff: 2 * H,
        wBatchStride: d,
        ldc: H,
        cBatchStride: d,
        variant,
      };
      const out = ctx.upload(new Float32Array(S * H).fill(7), [S, H]);
      matmul(ctx, scores, tq, { ...oOpts, out });
      const wantO = matmulStridedRef(wantS, qkv, new Float32Array(S * H).fill(7), oOpts);
      assertClose(`${variant} scores·V S=${S} d=${d}`, await ctx.readF32(out), wantO, {
        atol: 1e-4,
        rtol: 1e-5,
      });
      [tq, scores, out].forEach((t) => t.release());
    }
  });
}

// Epilogue: alpha, bias (f32 and f16, with an offset), GELU, residual with its own offset/stride, written at an
// offset and row stride into a larger C whose other elements must stay untouched.
for (const variant of ["tiled", "direct", "gemv"] as const) {
  Deno.test(`matmul ${variant}: bias, GELU, residual and strided output match the CPU reference`, async () => {
    const ctx = await sharedContext();
    for (const [M, N, K, f16] of [[6, 36, 20, true], [23, 17, 9, false]] as const) {
      const a = randn(M * K, 3 * M), wRaw = randn(N * K, 5 * N, 0.3), biasRaw = randn(N + 3, 7);
      const w = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw;
      const bias = f16 ? f16BitsToF32(f32ToF16Bits(biasRaw)) : biasRaw;
      const ldc = N + 5, cOff = 2 * ldc + 1, ldr = N + 2, rOff = 3;
      const resid = randn(rOff + M * ldr, 11);
      const cInit = randn(cOff + M * ldc, 13);
      const dt = f16 ? "f16" : "f32";
      const ta = ctx.upload(a, [M, K]),
        tw = ctx.upload(wRaw, [N, K], dt),
        tb = ctx.upload(biasRaw, [N + 3], dt);
      const tr = ctx.upload(resid, [resid.length]), tc = ctx.upload(cInit, [cInit.length]);
      const o = { M, N, K, alpha: 0.75, biasOff: 3, gelu: true, rOff, ldr, ldc, cOff, variant };
      matmul(ctx, ta, tw, { ...o, bias: tb, resid: tr, out: tc });
      const want = matmulStridedRef(a, w, cInit.slice(), { ...o, bias, resid });
      assertClose(`${variant} epilogue ${M}x${N}x${K} ${dt}`, await ctx.readF32(tc), want, {
        atol: 1e-4,
        rtol: 1e-5,
      });
      [ta, tw, tb, tr, tc].forEach((t) => t.release());
    }
  });
}

Deno.test("matmul rejects operands too small for the shape, naming the operand", async () => {
  const ctx = await sharedContext();
  const a = ctx.upload(new Float32Array(12), [3, 4]), w = ctx.upload(new Float32Array(20), [5, 4]);
  assert.throws(() => matmul(ctx, a, w, { M: 3, N: 6, K: 4 }), /W \[5,4\] too small/);
  assert.throws(() => matmul(ctx, a, w, { M: 4, N: 5, K: 4 }), /A \[3,4\] too small/);
  const r = ctx.upload(new Float32Array(4), [4]);
  assert.throws(() => matmul(ctx, a, w, { M: 3, N: 5, K: 4, resid: r }), /resid \[4\] too small/);
  const small = ctx.empty([2, 5]), b = ctx.upload(new Float32Array(4), [4]);
  assert.throws(() => matmul(ctx, a, w, { M: 3, N: 5, K: 4, out: small }), /C \[2,5\] too small/);
  assert.throws(() => matmul(ctx, a, w, { M: 3, N: 5, K: 4, bias: b }), /bias \[4\] too small/);
  // The GPU kernels share these checks (kernels/_epilogue.ts matmulOutput).
  for (const [name, run] of [["gemmTiles", gemmTiles], ["gemvRows", gemvRows]] as const) {
    assert.throws(
      () => run(ctx, a, w, { M: 3, N: 5, K: 4, resid: r }),
      new RegExp(`${name}.*resid \\[4\\] too small`),
    );
    assert.throws(
      () => run(ctx, a, w, { M: 3, N: 5, K: 4, out: small }),
      new RegExp(`${name}.*C \\[2,5\\] too small`),
    );
  }
  [a, w, r, small, b].forEach((t) => t.release());
});
