// gemmTiles (shaders/gemm_tiles.wgsl, the register-blocked GPU GEMM) against the CPU matmul twin: M and N not
// multiples of the 128 tile (edge tiles), K not a multiple of the 8-wide slice, strided batches with a shared W,
// f16 and f32 W, every epilogue; and matmul()'s routing on a GPU adapter.
import assert from "node:assert/strict";
import { gemmTiles, gemmTilesApplies } from "../../src/kernels/gemm.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { geluRef, matmulRef } from "../../src/reference/matmul.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("gemmTiles matches the CPU matmul (edge tiles, K % 8 = 4, batches, f16/f32 W, bias, GELU, residual)", async () => {
  const ctx = await sharedContext();
  const M = 133, N = 137, K = 60, batch = 2, lda = K + 4, ldc = N + 1;
  for (const dtype of ["f16", "f32"] as const) {
    const aBs = M * lda + 8;
    const a = randn(batch * aBs, 1, 1), wv = randn(N * K, 2, 0.2), bias = randn(N, 3, 0.5);
    const resid = randn(batch * M * ldc, 4, 1);
    const wq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(wv)) : wv;
    const bq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(bias)) : bias;
    const at = ctx.upload(a, [a.length]),
      wt = ctx.upload(wv, [N, K], dtype),
      bt = ctx.upload(bias, [N], dtype);
    const rt = ctx.upload(resid, [resid.length]);
    for (const [gelu, withResid] of [[false, false], [true, true]] as const) {
      const o = {
        M,
        N,
        K,
        batch,
        lda,
        ldc,
        aOff: 4,
        aBatchStride: aBs,
        alpha: 0.5,
        bias: bt,
        gelu,
        resid: withResid ? rt : undefined,
      };
      assert.ok(gemmTilesApplies(wt, o));
      const c = gemmTiles(ctx, at, wt, { ...o, out: ctx.empty([batch * M * ldc]) });
      const got = await ctx.readF32(c);
      for (let b = 0; b < batch; b++) {
        const dense = new Float32Array(M * K);
        for (let m = 0; m < M; m++) {
          dense.set(a.subarray(b * aBs + 4 + m * lda, b * aBs + 4 + m * lda + K), m * K);
        }
        const base = matmulRef(dense, wq, { M, N, K, alpha: 0.5, bias: bq });
        const want = new Float32Array(M * ldc), have = got.subarray(b * M * ldc, (b + 1) * M * ldc);
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let v = base[m * N + n];
            if (gelu) v = geluRef(v);
            if (withResid) v += resid[b * M * ldc + m * ldc + n];
            want[m * ldc + n] = v;
          }
          for (let n = N; n < ldc; n++) want[m * ldc + n] = have[m * ldc + n]; // padding columns: not written
        }
        // f32 sums of 60 products of O(0.2) terms; GELU via exp in f32.
        assertClose(`gemm ${dtype} gelu=${gelu} b=${b}`, have, want, { atol: 2e-5, rtol: 1e-4 });
      }
      c.release();
    }
    [at, wt, bt, rt].forEach((t) => t.release());
  }
});

Deno.test("matmul on a GPU adapter routes weight products (M > 8) to gemmTiles (same device, isFallback false)", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext({ ...shared.gpu, isFallback: false });
  const M = 40, N = 24, K = 32;
  const a = randn(M * K, 5, 1), w = randn(N * K, 6, 0.2);
  const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16");
  assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
  const c = matmul(ctx, at, wt, { M, N, K, constantW: true });
  assert.deepEqual((await ctx.stopProfile()).map((k) => k.name), ["gemm_tiles"]);
  const want = matmulRef(a, f16BitsToF32(f32ToF16Bits(w)), { M, N, K });
  assertClose("routed", await ctx.readF32(c), want, { atol: 2e-5, rtol: 1e-4 });
  [at, wt, c].forEach((t) => t.release());
});
