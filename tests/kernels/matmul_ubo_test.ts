// The "ubo" matmul schedule (A staged in 64 KiB uniform windows; CPU adapters) against the CPU twin: several windows
// with a ragged last one, N not a multiple of 32, f32/f16 W, strided A (row copies), W offsets, and the epilogue.
import assert from "node:assert/strict";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { matmul, resolveMatmul } from "../../src/kernels/matmul.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("matmul ubo: windows, ragged edges, f32/f16 W, strided A and the epilogue match the CPU reference", async () => {
  const ctx = await sharedContext();
  // [M, N, K, lda, epilogue]: K=64 gives 256-row windows (M=301: two, the last ragged); K=1024 gives 16-row windows.
  const cases: [number, number, number, number, boolean][] = [
    [301, 37, 64, 64, false],
    [37, 45, 1024, 1024, true],
    [45, 70, 28, 36, true],
  ];
  for (const f16 of [false, true]) {
    for (const [M, N, K, lda, epi] of cases) {
      const dt = f16 ? "f16" : "f32";
      const aOff = lda === K ? 0 : 8, wOff = 4, ldw = K + 4;
      const a = randn(aOff + M * lda, M + K), wRaw = randn(wOff + N * ldw, N + 3 * K, 0.3);
      const biasRaw = randn(N + 3, 7);
      const w = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw;
      const bias = f16 ? f16BitsToF32(f32ToF16Bits(biasRaw)) : biasRaw;
      const ldc = N + 5, cOff = 2 * ldc + 1, ldr = N + 2, rOff = 3;
      const resid = randn(rOff + M * ldr, 11);
      const cInit = randn(cOff + M * ldc, 13);
      const ta = ctx.upload(a, [a.length]), tw = ctx.upload(wRaw, [wRaw.length], dt);
      const tb = ctx.upload(biasRaw, [N + 3], dt), tr = ctx.upload(resid, [resid.length]);
      const tc = ctx.upload(cInit, [cInit.length]);
      const o = {
        M,
        N,
        K,
        lda,
        aOff,
        ldw,
        wOff,
        ldc,
        cOff,
        variant: "ubo" as const,
        ...(epi ? { alpha: 0.75, biasOff: 3, gelu: true, rOff, ldr } : {}),
      };
      assert.equal(resolveMatmul(ctx, ta, tw, o).plan.variant, "ubo");
      matmul(ctx, ta, tw, { ...o, out: tc, ...(epi ? { bias: tb, resid: tr } : {}) });
      const want = matmulStridedRef(a, w, cInit.slice(), { ...o, ...(epi ? { bias, resid } : {}) });
      assertClose(`ubo ${M}x${N}x${K} lda=${lda} ${dt} epilogue=${epi}`, await ctx.readF32(tc), want, {
        atol: 2e-5 * Math.sqrt(K) + (epi ? 1e-4 : 0),
        rtol: 1e-5,
      });
      [ta, tw, tb, tr, tc].forEach((t) => t.release());
    }
  }
  // Shapes the schedule does not take fall back to "direct".
  const ta = ctx.upload(new Float32Array(40 * 9), [40, 9]), tw = ctx.upload(new Float32Array(5 * 9), [5, 9]);
  assert.equal(resolveMatmul(ctx, ta, tw, { M: 40, N: 5, K: 9, variant: "ubo" }).plan.variant, "direct");
  ta.release();
  tw.release();
});
