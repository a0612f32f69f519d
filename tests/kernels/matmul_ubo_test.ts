// The "ubo" matmul schedule (A staged in 64 KiB uniform windows; CPU adapters) against the CPU twin: several windows
// with a ragged last one, N not a multiple of 32, f32/f16 W, strided A (row copies), W offsets, and the epilogue.
import assert from "node:assert/strict";
import { matmul, resolveMatmul } from "../../src/kernels/matmul.ts";
import { assertClose, sharedContext } from "../_util.ts";
import { matmulCase } from "./_matmul_case.ts";

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
      const t = matmulCase(ctx, { M, N, K, lda, epi, f16, aOff: 8, wPad: 4 });
      assert.equal(resolveMatmul(ctx, t.a, t.w, { ...t.o, variant: "ubo" }).plan.variant, "ubo");
      matmul(ctx, t.a, t.w, { ...t.run, variant: "ubo" });
      assertClose(`ubo ${t.label}`, await ctx.readF32(t.c), t.want, t.tol);
      t.release();
    }
  }
  // Shapes the schedule does not take fall back to "direct".
  const ta = ctx.upload(new Float32Array(40 * 9), [40, 9]), tw = ctx.upload(new Float32Array(5 * 9), [5, 9]);
  assert.equal(resolveMatmul(ctx, ta, tw, { M: 40, N: 5, K: 9, variant: "ubo" }).plan.variant, "direct");
  ta.release();
  tw.release();
});
