// Every matmul schedule (tiled, direct, gemv) × W layout × f32/f16 weights × vec4/scalar loads against the CPU twin.
// Not the epilogue or stride tests (tests/kernels/matmul_test.ts) and not a speed test (tools/bench/matmul.ts).
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import assert from "node:assert/strict";
import { matmul, type MatmulVariant, resolveMatmul } from "../../src/kernels/matmul.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// [M, N, K]: multiples of 4 (vec4 loads in both W layouts, N not a multiple of 8 or 16), K a multiple of 4 with
// N odd (vec4 only for [N,K] W), odd sizes (scalar loads with a K tail). M > 16 keeps the direct schedule at one
// workgroup shape (lavapipe needs ~2 s per pipeline).
const SIZES: [number, number, number][] = [[33, 68, 28], [17, 70, 12], [19, 13, 33]];
const VARIANTS: MatmulVariant[] = ["tiled", "direct", "gemv"];

for (const variant of VARIANTS) {
  Deno.test(`matmul ${variant}: f32/f16 W, [N,K]/[K,N], vec4/scalar loads match the CPU reference`, async () => {
    const ctx = await sharedContext();
    for (const f16 of [false, true]) {
      for (const transW of [true, false]) {
        for (const vec4 of variant === "tiled" ? [true] : [true, false]) {
          for (const [M, N, K] of SIZES) {
            const a = randn(M * K, M * 7 + K), wRaw = randn(N * K, N * 5 + K);
            const w = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw;
            const ta = ctx.upload(a, [M, K]);
            const tw = ctx.upload(wRaw, transW ? [N, K] : [K, N], f16 ? "f16" : "f32");
            const o = { M, N, K, transW, variant, vec4 };
            const launch = resolveMatmul(ctx, ta, tw, o);
            assert.equal(launch.plan.variant, variant);
            assert.equal(launch.vec4, variant !== "tiled" && vec4 && K % 4 === 0 && (transW || N % 4 === 0));
            const c = matmul(ctx, ta, tw, o);
            const want = matmulStridedRef(a, w, new Float32Array(M * N), { M, N, K, transW });
            // f32 accumulation in a different order than the float64 reference: bound grows with sqrt(K)
            assertClose(
              `${variant} ${M}x${N}x${K} ${f16 ? "f16" : "f32"} transW=${transW} vec4=${vec4}`,
              await ctx.readF32(c),
              want,
              { atol: 2e-5 * Math.sqrt(K), rtol: 1e-5 },
            );
            [ta, tw, c].forEach((t) => t.release());
          }
        }
      }
    }
    await ctx.sync();
  });
}
