// Row-block splitting of matmul's activations (issue #14): on a context whose max storage binding is lowered far
// below A, C and the residual, `matmul` binds row blocks of them (aligned views) and still matches the CPU twin.
import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("matmul: A, C and the residual above the max storage binding are bound in row blocks", async () => {
  const shared = await sharedContext();
  const limit = 16384; // 4096 f32: A, C and R below are 2-6x that; W (67 x 45) fits.
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  const M = 97, N = 67, K = 45, batch = 2, lda = K + 3, ldc = N + 5, aOff = 7, cOff = 3;
  const aBs = M * lda + 11, cBs = M * ldc + 2;
  const aLen = aOff + batch * aBs, cLen = cOff + batch * cBs;
  for (const variant of ["auto", "direct"] as const) {
    for (const transW of [true, false]) {
      const a = randn(aLen, 1), w = randn(N * K, 2), bias = randn(N, 3), r = randn(cLen, 4);
      const ta = ctx.upload(a, [aLen]), tw = ctx.upload(w, transW ? [N, K] : [K, N]);
      const tb = ctx.upload(bias, [N]),
        tr = ctx.upload(r, [cLen]),
        tc = ctx.upload(new Float32Array(cLen), [cLen]);
      assert.ok(ta.byteLength > 2 * limit && tc.byteLength > 2 * limit && tw.byteLength <= limit);
      const o = {
        M,
        N,
        K,
        batch,
        transW,
        lda,
        ldc,
        aOff,
        cOff,
        aBatchStride: aBs,
        cBatchStride: cBs,
        alpha: 0.5,
        gelu: true,
      };
      matmul(ctx, ta, tw, { ...o, variant, bias: tb, resid: tr, out: tc });
      const want = matmulStridedRef(a, w, new Float32Array(cLen), { ...o, bias, resid: r });
      // Elements between the strided rows stay 0 in both (neither writes them).
      assertClose(`split matmul ${variant} transW=${transW}`, await ctx.readF32(tc), want, {
        atol: 1e-5 * Math.sqrt(K) * 4,
        rtol: 1e-5,
      });
      // No `out`: the new C [batch·M, N] is itself above the limit.
      const plain = { M, N, K, batch, transW, lda, aOff, aBatchStride: aBs, variant };
      const c2 = matmul(ctx, ta, tw, plain);
      assert.ok(c2.byteLength > limit);
      assertClose(
        `split matmul new C ${variant} transW=${transW}`,
        await ctx.readF32(c2),
        matmulStridedRef(a, w, new Float32Array(batch * M * N), plain),
        { atol: 1e-5 * Math.sqrt(K) * 4, rtol: 1e-5 },
      );
      [ta, tw, tb, tr, tc, c2].forEach((t) => t.release());
    }
  }
});
