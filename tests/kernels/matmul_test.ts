import { f32ToF16Bits, f16BitsToF32 } from "../../src/gpu/f16.ts";
import { matmul, matmulChunked } from "../../src/kernels/matmul.ts";
import { matmulRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// Sizes include 1, primes and non-multiples of the 64x64x16 tile.
const SIZES: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 65], [64, 64, 64], [97, 130, 47], [129, 1, 257]];

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
