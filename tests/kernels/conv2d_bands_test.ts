// Row-band splitting of conv2d (issue #14): on a context whose max storage binding is lowered below the input, output
// and residual maps, conv2d runs output row bands with their input halo rows gathered into bound band tensors, on every
// schedule (tiled, direct, windows, small cout), and still matches the CPU twin (src/reference/conv2d.ts).
import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { conv2d, conv2dSchedule, convOutSize } from "../../src/kernels/conv2d.ts";
import { conv2dRef } from "../../src/reference/conv2d.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// f32 accumulation over K = cin·ks² terms in another order than the float64 reference (as conv2d_test.ts).
const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k) * 4, rtol: 1e-5 });

// [variant, cin, h, w, cout, ks, stride, pad, padEnd, upsample, channelsLast, resid, f16]: odd sizes; the encoder's
// DownSample (stride 2, pad 0, padEnd 1), the decoder's fused upsample, 1x1 and conv_out's 3 channels.
type Case = [
  "tiled" | "direct" | "windows",
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  boolean,
  boolean,
  boolean,
  boolean,
];
const CASES: Case[] = [
  ["direct", 24, 61, 53, 40, 3, 1, 1, 0, false, false, true, true],
  ["windows", 24, 61, 53, 40, 3, 1, 1, 0, false, false, true, false],
  ["tiled", 24, 31, 29, 37, 3, 1, 1, 0, true, false, true, true],
  ["windows", 16, 31, 27, 37, 3, 1, 1, 0, true, false, true, true],
  ["direct", 9, 30, 29, 23, 3, 1, 1, 0, true, false, false, false],
  ["direct", 24, 67, 59, 40, 3, 2, 0, 1, false, false, true, false],
  ["windows", 24, 67, 59, 40, 3, 2, 0, 1, false, false, false, true],
  ["direct", 24, 61, 53, 3, 3, 1, 1, 0, false, false, false, true], // small cout
  ["direct", 40, 45, 43, 29, 1, 1, 0, 0, false, true, false, false], // channels-last (the q / quantizer proj)
  ["tiled", 24, 53, 61, 17, 3, 1, 1, 0, false, true, true, false], // channels-last with a residual
  // Weights above the limit: output-channel blocks (75 + 5 channels f32; 113 + 47 f16 with the map in bands too),
  // and the windows schedule's f32 copy of an f16 weight made in pieces.
  ["direct", 96, 13, 23, 80, 3, 1, 1, 0, false, false, true, false],
  ["tiled", 128, 21, 25, 160, 3, 1, 1, 0, false, false, true, true],
  ["windows", 512, 9, 11, 300, 1, 1, 0, 0, false, false, true, true],
];

Deno.test("conv2d: maps above the max storage binding run in output row bands with their input halo rows", async () => {
  const shared = await sharedContext();
  const limit = 256 * 1024;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  for (const [variant, cin, h, w, cout, ks, stride, pad, padEnd, upsample, cl, useResid, f16] of CASES) {
    const up = upsample ? 2 : 1;
    const oh = convOutSize(h * up, ks, { stride, pad, padEnd }),
      ow = convOutSize(w * up, ks, { stride, pad, padEnd });
    const x = randn(cin * h * w, cin + h),
      wRaw = randn(cout * cin * ks * ks, cout + w, 0.3),
      bRaw = randn(cout, 5);
    const wt = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw,
      b = f16 ? f16BitsToF32(f32ToF16Bits(bRaw)) : bRaw;
    const resid = useResid ? randn(cout * oh * ow, 9) : undefined;
    const dt = f16 ? "f16" : "f32";
    const tx = ctx.upload(x, [cin, h, w]), tw = ctx.upload(wRaw, [cout, cin, ks, ks], dt);
    const tb = ctx.upload(bRaw, [cout], dt), tr = resid ? ctx.upload(resid, [cout * oh * ow]) : undefined;
    const label = `${variant} ${[cin, h, w, cout, ks, stride, pad, padEnd]} up=${upsample} cl=${cl} ${dt}`;
    // The split must be needed: the input or the output map or the weight is above the limit.
    assert.ok(tx.byteLength > limit || cout * oh * ow * 4 > limit || tw.byteLength > limit, label);
    const out = conv2d(ctx, tx, tw, {
      h,
      w,
      stride,
      pad,
      padEnd,
      upsample,
      channelsLast: cl,
      bias: tb,
      resid: tr,
      variant,
    });
    const ref = conv2dRef(x, wt, {
      cin,
      h,
      w,
      cout,
      ks,
      stride,
      pad,
      padEnd,
      upsample,
      channelsLast: cl,
      bias: b,
      resid,
    });
    assertClose(label, await ctx.readF32(out), ref.out, tol(cin * ks * ks));
    [tx, tw, tb, tr, out].forEach((t) => t?.release());
  }
  // CPU adapters: windows only where its smallest packed block (64 pixels x K, plus a 64 KiB window of slack)
  // fits the binding: K = 576 (213 KB) does at 256 KiB, K = 1152 (360 KB) runs direct.
  if (ctx.gpu.isFallback) {
    assert.equal(conv2dSchedule(ctx, { cin: 64, cout: 64, ks: 3 }), "windows");
    assert.equal(conv2dSchedule(ctx, { cin: 128, cout: 128, ks: 3 }), "direct");
  }
});

Deno.test("conv2d: a row that cannot fit one binding is refused naming the sizes", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: 4096 },
  });
  const tx = ctx.upload(new Float32Array(8 * 40 * 100), [8, 40, 100]),
    tw = ctx.upload(new Float32Array(8 * 8 * 9), [
      8,
      8,
      3,
      3,
    ]);
  assert.throws(
    () => conv2d(ctx, tx, tw, { h: 40, w: 100, variant: "direct" }),
    /conv2d: one output row \(8x100\) with its 3 input rows \(8x100\) exceeds the max storage binding \(4096 bytes\)/,
  );
  [tx, tw].forEach((t) => t.release());
});
