// gemvRows (shaders/gemv_rows.wgsl, the GPU decode GEMV) against the CPU matmul twin: M = 1..8 rows, odd N (columns
// past the 8-column workgroups), K a multiple of 8 but not of 256, strided A/C, f16 and f32 W, every epilogue.
import assert from "node:assert/strict";
import { gemvRows, gemvRowsApplies } from "../../src/kernels/gemv.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { geluRef, matmulRef } from "../../src/reference/matmul.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("gemvRows matches the CPU matmul (M 1..8, odd N, f16/f32 W, alpha, bias f16/f32, GELU, residual, strides)", async () => {
  const ctx = await sharedContext();
  const K = 136, N = 37, lda = K + 4, ldc = N + 3;
  for (const dtype of ["f16", "f32"] as const) {
    for (const M of [1, 3, 8]) {
      const a = randn(M * lda + 4, M + N, 1);
      const wv = randn(N * K, 2 * M + 1, 0.2);
      const wq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(wv)) : wv;
      const bias = randn(N, 5, 0.5), bq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(bias)) : bias;
      const resid = randn(M * ldc, 9, 1);
      const at = ctx.upload(a, [a.length]), wt = ctx.upload(wv, [N, K], dtype);
      const bt = ctx.upload(bias, [N], dtype), rt = ctx.upload(resid, [M * ldc]);
      // Dense copies of the strided A rows (offset 4) for the twin.
      const dense = new Float32Array(M * K);
      for (let m = 0; m < M; m++) dense.set(a.subarray(4 + m * lda, 4 + m * lda + K), m * K);
      for (const [gelu, withResid] of [[false, false], [true, true]] as const) {
        const o = {
          M,
          N,
          K,
          lda,
          aOff: 4,
          ldc,
          alpha: 0.75,
          bias: bt,
          gelu,
          resid: withResid ? rt : undefined,
        };
        assert.ok(gemvRowsApplies(wt, o));
        const out = ctx.empty([M * ldc]);
        ctx.write(out, new Float32Array(M * ldc).fill(7));
        gemvRows(ctx, at, wt, { ...o, out });
        const got = await ctx.readF32(out);
        const base = matmulRef(dense, wq, { M, N, K, alpha: 0.75, bias: bq });
        const want = new Float32Array(M * ldc).fill(7);
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let v = base[m * N + n];
            if (gelu) v = geluRef(v);
            if (withResid) v += resid[m * ldc + n];
            want[m * ldc + n] = v;
          }
        }
        // f32 sums over 136 products of O(0.2) terms; GELU via exp in f32.
        assertClose(`gemv ${dtype} M=${M} gelu=${gelu}`, got, want, { atol: 2e-5, rtol: 1e-4 });
        out.release();
      }
      [at, wt, bt, rt].forEach((t) => t.release());
    }
  }
  // Layouts it does not take: K not a multiple of 8 (f16), 9 rows.
  const w = ctx.empty([4, 12], "f16");
  assert.equal(gemvRowsApplies(w, { M: 1, N: 4, K: 12 }), false);
  assert.equal(gemvRowsApplies(w, { M: 9, N: 4, K: 8, ldw: 12 }), false);
  w.release();
});

Deno.test("matmul on a GPU adapter routes decode rows to gemvRows (same device, isFallback false) and matches the CPU", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext({ ...shared.gpu, isFallback: false });
  const M = 2, N = 19, K = 64;
  const a = randn(M * K, 3, 1), w = randn(N * K, 4, 0.2);
  const wq = f16BitsToF32(f32ToF16Bits(w));
  const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16");
  assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
  const c = matmul(ctx, at, wt, { M, N, K, constantW: true });
  assert.deepEqual((await ctx.stopProfile()).map((k) => k.name), ["gemv_rows"]);
  assertClose("routed", await ctx.readF32(c), matmulRef(a, wq, { M, N, K }), { atol: 2e-5, rtol: 1e-4 });
  [at, wt, c].forEach((t) => t.release());
});
