import { conv2d } from "../../src/kernels/conv2d.ts";
import { conv2dRef } from "../../src/reference/conv2d.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// [cin, h, w, cout, ks, stride, pad, padEnd]: odd sizes, 1, primes, non-multiples of the 64-channel/64-pixel tile,
// the encoder's DownSample (stride 2, pad 0, padEnd 1) and the small-cout path (cout ≤ 4).
const CASES: [number, number, number, number, number, number, number, number][] = [
  [1, 1, 1, 1, 1, 1, 0, 0],
  [3, 7, 5, 5, 3, 1, 1, 0],
  [3, 13, 11, 67, 3, 1, 1, 0],
  [17, 9, 23, 3, 3, 1, 1, 0],
  [13, 11, 7, 70, 1, 1, 0, 0],
  [33, 12, 10, 33, 3, 2, 0, 1],
  [5, 15, 17, 7, 3, 2, 0, 1],
];

// Both schedules run on every adapter (the default picks one by adapter kind).
const VARIANTS = ["tiled", "direct"] as const;

// f32 accumulation over K = cin·ks² terms in a different order than the float64 reference: bound grows with sqrt(K).
const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k) * 4, rtol: 1e-5 });

Deno.test("conv2d f32 (bias, stride, pads, small cout) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [cin, h, w, cout, ks, stride, pad, padEnd] of CASES) {
    const x = randn(cin * h * w, cin + h),
      wt = randn(cout * cin * ks * ks, cout + w, 0.3),
      b = randn(cout, 5);
    const tx = ctx.upload(x, [cin, h, w]),
      tw = ctx.upload(wt, [cout, cin, ks, ks]),
      tb = ctx.upload(b, [cout]);
    const out = conv2d(ctx, tx, tw, { h, w, stride, pad, padEnd, bias: tb });
    const ref = conv2dRef(x, wt, { cin, h, w, cout, ks, stride, pad, padEnd, bias: b });
    assertClose(
      `conv2d ${[cin, h, w, cout, ks, stride, pad, padEnd]}`,
      await ctx.readF32(out),
      ref.out,
      tol(cin * ks * ks),
    );
    [tx, tw, tb, out].forEach((t) => t.release());
  }
});

Deno.test("conv2d f16 weights with fused upsample, residual, channels-last output and row-split launches", async () => {
  const ctx = await sharedContext();
  for (const [cin, h, w, cout] of [[5, 3, 7, 11], [19, 6, 5, 66], [7, 5, 9, 3]]) {
    const x = randn(cin * h * w, 3 + cin), wRaw = randn(cout * cin * 9, 4 + cout, 0.3), bRaw = randn(cout, 6);
    const wt = f16BitsToF32(f32ToF16Bits(wRaw)), b = f16BitsToF32(f32ToF16Bits(bRaw));
    const tx = ctx.upload(x, [cin, h, w]),
      tw = ctx.upload(wRaw, [cout, cin, 3, 3], "f16"),
      tb = ctx.upload(bRaw, [cout], "f16");
    const resid = randn(cout * 4 * h * w, 9);
    const tr = ctx.upload(resid, [cout, 2 * h, 2 * w]);
    const refUp = conv2dRef(x, wt, { cin, h, w, cout, ks: 3, upsample: true, bias: b, resid });
    const refCl = conv2dRef(x, wt, { cin, h, w, cout, ks: 3, channelsLast: true });
    for (const variant of VARIANTS) {
      const up = conv2d(ctx, tx, tw, {
        h,
        w,
        upsample: true,
        bias: tb,
        resid: tr,
        rowsPerLaunch: 3,
        variant,
      });
      assertClose(
        `conv2d ${variant} upsample ${[cin, h, w, cout]}`,
        await ctx.readF32(up),
        refUp.out,
        tol(cin * 9),
      );
      const cl = conv2d(ctx, tx, tw, { h, w, channelsLast: true, rowsPerLaunch: 2, variant });
      assertClose(
        `conv2d ${variant} channels-last ${[cin, h, w, cout]}`,
        await ctx.readF32(cl),
        refCl.out,
        tol(cin * 9),
      );
      [up, cl].forEach((t) => t.release());
    }
    [tx, tw, tb, tr].forEach((t) => t.release());
  }
});

Deno.test("conv2d rejects a weight/input mismatch naming the parameter", async () => {
  const ctx = await sharedContext();
  const tx = ctx.upload(new Float32Array(12), [3, 2, 2]),
    tw = ctx.upload(new Float32Array(4 * 9), [2, 2, 3, 3]);
  let msg = "";
  try {
    conv2d(ctx, tx, tw, { h: 2, w: 2 });
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!/conv2d: input \[3,2,2\] is not \[2, 2, 2\]/.test(msg)) throw new Error(`unexpected error: ${msg}`);
  [tx, tw].forEach((t) => t.release());
});
