import { layerNorm, layerNormResidual } from "../../src/kernels/layernorm.ts";
import { layerNormRef, layerNormResidualRef } from "../../src/reference/layernorm.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// [rows, n]: one row, odd hidden sizes, sizes below and above the 64-wide workgroup.
const CASES: [number, number][] = [[1, 1], [3, 37], [7, 64], [13, 129], [5, 771]];

Deno.test("layerNorm (f32/f16 affine, odd sizes) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [rows, n] of CASES) {
    // A common offset checks the centred (two-pass) variance.
    const x = randn(rows * n, rows + n, 2).map((v) => v + 3);
    const g = randn(n, 1, 0.2).map((v) => v + 1), b = randn(n, 2, 0.1);
    for (const dtype of ["f32", "f16"] as const) {
      for (const eps of [1e-5, 1e-2]) {
        const tx = ctx.upload(x, [rows, n]), tg = ctx.upload(g, [n], dtype), tb = ctx.upload(b, [n], dtype);
        const gr = await ctx.readF32(tg), br = await ctx.readF32(tb);
        const out = layerNorm(ctx, tx, { weight: tg, bias: tb }, { eps });
        // f32 sums over <= 771 elements of O(1) normalised values.
        assertClose(
          `layerNorm ${rows}x${n} ${dtype} eps=${eps}`,
          await ctx.readF32(out),
          layerNormRef(x, gr, br, n, eps),
          {
            atol: 2e-5,
            rtol: 1e-5,
          },
        );
        [tx, tg, tb, out].forEach((t) => t.release());
      }
    }
  }
});

Deno.test("layerNormResidual (sandwich add, then the next LayerNorm) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [rows, n] of CASES) {
    const x = randn(rows * n, 7 + n, 1.5), r = randn(rows * n, 9 + n, 3);
    const g = randn(n, 3, 0.2).map((v) => v + 1), b = randn(n, 4, 0.1);
    const g2 = randn(n, 5, 0.2).map((v) => v + 1), b2 = randn(n, 6, 0.1);
    for (const dtype of ["f32", "f16"] as const) {
      const tx = ctx.upload(x, [rows, n]), tr = ctx.upload(r, [rows, n]);
      const [tg, tb, tg2, tb2] = [g, b, g2, b2].map((v) => ctx.upload(v, [n], dtype));
      const [gr, br, g2r, b2r] = await Promise.all([tg, tb, tg2, tb2].map((t) => ctx.readF32(t)));
      const eps = 1e-5;
      const ro = ctx.empty([rows, n]);
      layerNormResidual(ctx, tx, tr, { weight: tg, bias: tb }, { eps, residOut: ro });
      const wantR = layerNormResidualRef(x, r, gr, br, n, eps);
      assertClose(`layerNormResidual ${rows}x${n} ${dtype}`, await ctx.readF32(ro), wantR, {
        atol: 3e-5,
        rtol: 1e-5,
      });
      const ro2 = ctx.empty([rows, n]);
      const { out } = layerNormResidual(ctx, tx, tr, { weight: tg, bias: tb }, {
        eps,
        residOut: ro2,
        post: { weight: tg2, bias: tb2 },
      });
      assertClose(`layerNormResidual+post resid ${rows}x${n} ${dtype}`, await ctx.readF32(ro2), wantR, {
        atol: 3e-5,
        rtol: 1e-5,
      });
      assertClose(
        `layerNormResidual+post out ${rows}x${n} ${dtype}`,
        await ctx.readF32(out!),
        layerNormRef(wantR, g2r, b2r, n, eps),
        { atol: 3e-5, rtol: 1e-5 },
      );
      [tx, tr, tg, tb, tg2, tb2, ro, ro2, out!].forEach((t) => t.release());
    }
  }
});
