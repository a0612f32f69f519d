import assert from "node:assert/strict";
import { fillUniform } from "../../src/kernels/fill.ts";
import { fillUniformRef } from "../../src/reference/fill.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, sharedContext } from "../_util.ts";

// Odd sizes (an odd f16 count leaves a half word), and more than 65535 workgroups of words (folded into y).
const SIZES = [1, 7, 257, 100003, 256 * 65535 + 3];
const SPEC = { seed: 12345, scale: 0.37, offset: 1.25 };

Deno.test("fill_uniform (f32) matches its CPU twin; values within offset ± scale", async () => {
  const ctx = await sharedContext();
  for (const n of SIZES) {
    const t = ctx.empty([n]);
    fillUniform(ctx, t, SPEC);
    const got = await ctx.readF32(t);
    const want = fillUniformRef(n, SPEC);
    // One rounding of offset + scale·u may differ (a fused multiply-add on the GPU): 1 ulp of values near 1.6.
    assertClose(`f32 ${n}`, got, want, { atol: 2.5e-7 });
    let lo = Infinity, hi = -Infinity, sum = 0;
    for (const v of got) lo = Math.min(lo, v), hi = Math.max(hi, v), sum += v;
    assert.ok(
      lo >= SPEC.offset - SPEC.scale - 1e-6 && hi < SPEC.offset + SPEC.scale + 1e-6,
      `range [${lo}, ${hi}]`,
    );
    if (n > 10000) assert.ok(Math.abs(sum / n - SPEC.offset) < 0.01, `mean ${sum / n}`);
    t.release();
  }
});

Deno.test("fill_uniform (f16) is the CPU twin rounded to f16; a block at `base` equals that slice; seeds differ", async () => {
  const ctx = await sharedContext();
  for (const n of SIZES.slice(0, 4)) {
    const t = ctx.empty([n], "f16");
    fillUniform(ctx, t, SPEC);
    const got = await ctx.readF32(t);
    const want = f16BitsToF32(f32ToF16Bits(fillUniformRef(n, SPEC)));
    // f16 rounding of a value that may differ by 1 f32 ulp: at most 1 f16 ulp (2^-10 relative).
    assertClose(`f16 ${n}`, got, want, { atol: 0, rtol: 2 ** -10 });
    t.release();
  }
  const full = fillUniformRef(1000, SPEC);
  const block = ctx.empty([301]);
  fillUniform(ctx, block, SPEC, 577);
  assertClose("block at 577", await ctx.readF32(block), full.subarray(577, 878), { atol: 2.5e-7 });
  fillUniform(ctx, block, { ...SPEC, seed: 12346 });
  const other = await ctx.readF32(block);
  const same = other.filter((v, i) => Math.abs(v - full[i]) < 1e-6).length;
  assert.ok(same < 5, `${same} of 301 values equal under another seed`);
  block.release();
});

Deno.test("fill_uniform (i8, random int8 weights) is the CPU twin rounded and clamped to ±127", async () => {
  const ctx = await sharedContext();
  const spec = { seed: 9, scale: 127, offset: 0 };
  for (const n of [1, 7, 1001]) {
    const t = ctx.empty([n], "i8");
    fillUniform(ctx, t, spec);
    const got = await ctx.read(t);
    const want = fillUniformRef(n, spec);
    for (let i = 0; i < n; i++) {
      // round() of a value that may differ by 1 f32 ulp from the twin's: at most one code apart, exactly at .5 ties.
      const w = Math.max(-127, Math.min(127, Math.round(want[i])));
      assert.ok(
        Math.abs(got[i] - w) <= (Math.abs((want[i] % 1) - 0.5) < 1e-4 ? 1 : 0),
        `[${i}] ${got[i]} vs ${w}`,
      );
    }
    t.release();
  }
});
