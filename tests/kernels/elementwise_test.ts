import { add, copy, gelu, mul, scale, silu } from "../../src/kernels/elementwise.ts";
import { geluRef, siluRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// Odd sizes, including more than 65535 workgroups' worth folded into y (256·65535 < 17M).
const SIZES = [1, 7, 255, 257, 1000, 100003];

Deno.test("elementwise add/mul/scale/copy match the CPU", async () => {
  const ctx = await sharedContext();
  for (const n of SIZES) {
    const a = randn(n, n), b = randn(n, n + 1);
    const ta = ctx.upload(a, [n]), tb = ctx.upload(b, [n]);
    assertClose(`add ${n}`, await ctx.readF32(add(ctx, ta, tb)), a.map((x, i) => x + b[i]), { atol: 0 });
    assertClose(`mul ${n}`, await ctx.readF32(mul(ctx, ta, tb)), a.map((x, i) => x * b[i]), { atol: 0 });
    assertClose(
      `scale ${n}`,
      await ctx.readF32(scale(ctx, ta, 0.37)),
      a.map((x) => Math.fround(x * Math.fround(0.37))),
      {
        atol: 0,
      },
    );
    assertClose(`copy ${n}`, await ctx.readF32(copy(ctx, ta)), a, { atol: 0 });
  }
});

Deno.test("elementwise GELU (SAT tanh form) and SiLU match the CPU", async () => {
  const ctx = await sharedContext();
  for (const n of SIZES) {
    const a = randn(n, 3 * n, 3), ta = ctx.upload(a, [n]);
    // GELU/SiLU use exp() in f32 on the GPU: 1e-6 absolute + 1e-5 relative covers its rounding.
    assertClose(`gelu ${n}`, await ctx.readF32(gelu(ctx, ta)), a.map(geluRef), { atol: 1e-6, rtol: 1e-5 });
    assertClose(`silu ${n}`, await ctx.readF32(silu(ctx, ta)), a.map(siluRef), { atol: 1e-6, rtol: 1e-5 });
  }
});

Deno.test("gelu stays finite for large |x|", async () => {
  const ctx = await sharedContext();
  const a = new Float32Array([-1e4, -50, -10, 0, 10, 50, 1e4]);
  const got = await ctx.readF32(gelu(ctx, ctx.upload(a, [a.length])));
  assertClose("gelu extremes", got, Array.from(a, geluRef), { atol: 1e-6, rtol: 1e-6 });
});
