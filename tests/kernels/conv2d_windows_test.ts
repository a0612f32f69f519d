// The "windows" convolution (CPU adapters: im2col packed for the windows matmul) against the CPU reference: K = cin·ks²
// from 16 to 1152 (two K chunks), stride 2 with the encoder's bottom/right pad, 1×1, fused upsampling, residual,
// f16 weights and bias, and pixel blocks split across launches (rowsPerLaunch) with a ragged last block.
import assert from "node:assert/strict";
import { conv2d, conv2dSchedule } from "../../src/kernels/conv2d.ts";
import { packedLayout, planWindows } from "../../src/kernels/matmul_windows.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { conv2dRef } from "../../src/reference/conv2d.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// [cin, h, w, cout, ks, stride, pad, padEnd, upsample, f16, resid, rowsPerLaunch]
const CASES: [
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
  number,
][] = [
  [8, 7, 9, 11, 3, 1, 1, 0, false, false, false, 0],
  [16, 9, 5, 37, 1, 1, 0, 0, false, true, true, 2],
  [24, 13, 11, 9, 3, 2, 0, 1, false, false, true, 0],
  [16, 5, 7, 37, 3, 1, 1, 0, true, true, true, 3],
  [128, 9, 9, 67, 3, 1, 1, 0, false, true, false, 4],
];

Deno.test("conv2d windows: chunks, stride, pads, upsample, residual, f16 and pixel blocks match the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [cin, h, w, cout, ks, stride, pad, padEnd, upsample, f16, useResid, rows] of CASES) {
    const x = randn(cin * h * w, cin + h),
      wRaw = randn(cout * cin * ks * ks, cout + w, 0.3),
      bRaw = randn(cout, 5);
    const wt = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw,
      b = f16 ? f16BitsToF32(f32ToF16Bits(bRaw)) : bRaw;
    const up = upsample ? 2 : 1;
    const oh = Math.floor((h * up + 2 * pad + padEnd - ks) / stride) + 1;
    const ow = Math.floor((w * up + 2 * pad + padEnd - ks) / stride) + 1;
    const resid = useResid ? randn(cout * oh * ow, 9) : undefined;
    const dt = f16 ? "f16" : "f32";
    const tx = ctx.upload(x, [cin, h, w]), tw = ctx.upload(wRaw, [cout, cin, ks, ks], dt);
    const tb = ctx.upload(bRaw, [cout], dt), tr = resid ? ctx.upload(resid, [cout, oh, ow]) : undefined;
    const label = `windows ${[
      cin,
      h,
      w,
      cout,
      ks,
      stride,
      pad,
      padEnd,
    ]} up=${upsample} ${dt} resid=${useResid}`;
    const o = { h, w, stride, pad, padEnd, upsample, bias: tb, resid: tr, variant: "windows" as const };
    const ref = conv2dRef(x, wt, { cin, h, w, cout, ks, stride, pad, padEnd, upsample, bias: b, resid });
    // Twice: the second call reuses the f32 copy of f16 weights.
    for (let rep = 0; rep < 2; rep++) {
      const out = conv2d(ctx, tx, tw, { ...o, ...(rows ? { rowsPerLaunch: rows } : {}) });
      assertClose(`${label} call ${rep + 1}`, await ctx.readF32(out), ref.out, {
        atol: 8e-6 * Math.sqrt(cin * ks * ks),
        rtol: 1e-5,
      });
      out.release();
    }
    [tx, tw, tb, tr].forEach((t) => t?.release());
  }
});

Deno.test("conv2d windows: the default schedule on CPU adapters when cin·ks² is a multiple of 8; clear error otherwise", async () => {
  const ctx = await sharedContext();
  const fallback = ctx.gpu.isFallback;
  // The encoder's 3×3 convs (cin 128: K 1152) and 1×1 convs take windows on CPU adapters, tiled on GPUs.
  assert.equal(conv2dSchedule(ctx, { cin: 128, cout: 128, ks: 3 }), fallback ? "windows" : "tiled");
  assert.equal(conv2dSchedule(ctx, { cin: 16, cout: 37, ks: 1 }), fallback ? "windows" : "tiled");
  // conv_in (cin 3: K 27), cout ≤ 4 and channels-last outputs cannot: direct on CPU adapters.
  assert.equal(conv2dSchedule(ctx, { cin: 3, cout: 6, ks: 3 }), fallback ? "direct" : "tiled");
  assert.equal(conv2dSchedule(ctx, { cin: 16, cout: 3, ks: 3 }), fallback ? "direct" : "tiled");
  assert.equal(
    conv2dSchedule(ctx, { cin: 16, cout: 37, ks: 1, channelsLast: true }),
    fallback ? "direct" : "tiled",
  );
  const tx = ctx.upload(new Float32Array(3 * 4 * 4), [3, 4, 4]),
    tw = ctx.upload(new Float32Array(6 * 27), [6, 3, 3, 3]);
  assert.throws(() => conv2d(ctx, tx, tw, { h: 4, w: 4, variant: "windows" }), /multiple of 8 \(27\)/);
  [tx, tw].forEach((t) => t.release());
});

Deno.test("conv2d windows: the packed im2col is cut into pixel blocks that fit a lowered max storage binding", async () => {
  const shared = await sharedContext();
  // 256 KiB binding: x [8, 40, 40] (51 KB) and out fit, the packed im2col of all 1600 pixels (K = 72: ~525 KB with its
  // window slack) does not: blocks of fewer pixels are packed (the 29.6 MB conv_im2col_pack of the tiny VQ-VAE at a
  // lowered limit, and the published VQ-VAE's at 128 MiB, #17.3).
  const limit = 256 * 1024;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  const cin = 8, h = 40, w = 40, cout = 12, ks = 3;
  assert.ok(packedLayout(planWindows(cout, h * w, cin * ks * ks, false), h * w).words * 4 > limit);
  const x = randn(cin * h * w, 3), wt = randn(cout * cin * ks * ks, 4, 0.3), b = randn(cout, 5);
  const tx = ctx.upload(x, [cin, h, w]), tw = ctx.upload(wt, [cout, cin, ks, ks]), tb = ctx.upload(b, [cout]);
  const out = conv2d(ctx, tx, tw, { h, w, pad: 1, bias: tb, variant: "windows" });
  const ref = conv2dRef(x, wt, {
    cin,
    h,
    w,
    cout,
    ks,
    stride: 1,
    pad: 1,
    padEnd: 0,
    upsample: false,
    bias: b,
  });
  assertClose("conv windows at a 256 KiB binding", await ctx.readF32(out), ref.out, {
    atol: 8e-6 * Math.sqrt(cin * ks * ks),
    rtol: 1e-5,
  });
  [out, tx, tw, tb].forEach((t) => t.release());
});
