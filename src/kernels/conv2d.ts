// Launcher for the 2-D convolution (shaders/conv2d.wgsl) of one NCHW f32 image with f32 or packed-f16 weights.
// Not batched and not grouped/dilated: the VQ-VAE needs 3×3 and 1×1 kernels, stride 1 or 2, and one image at a time.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";
import { matmulWindows, packedLayout, planWindows, windowsApplies } from "./matmul_windows.ts";

export interface Conv2dOptions {
  /** Stored input size: x is [cin, h, w] (cin from the weight). */
  h: number;
  w: number;
  stride?: number;
  /** Zero padding on the top/left (and, through the output size, bottom/right). Default (ks − 1) / 2. */
  pad?: number;
  /** Extra zero rows/columns on the bottom/right only (icetk's DownSample pads (0, 1, 0, 1) before a pad-0 conv). */
  padEnd?: number;
  bias?: Tensor;
  /** out = resid + conv(x); resid is laid out like the output. */
  resid?: Tensor;
  /** Read x as its nearest ×2 upsampling (icetk's Upsample: interpolate then conv, fused). */
  upsample?: boolean;
  /** Write the output channels-last, [oh·ow, cout] (the quantizer's permute). */
  channelsLast?: boolean;
  /**
   * Schedule: "tiled" (workgroup-memory tiles, GPUs), "direct" (register tiles from storage) or "windows" (CPU
   * adapters: im2col into the packed operand of the windows matmul, src/kernels/matmul_windows.ts). Default: tiled
   * on GPUs; windows on CPU adapters where K = cin·ks² splits into chunks (a multiple of 8), else direct.
   */
  variant?: "tiled" | "direct" | "windows";
  /**
   * Output row blocks per launch (default: whole image; windows: blocks of up to 32 MiB of im2col); bounds one
   * dispatch's work on slow adapters.
   */
  rowsPerLaunch?: number;
  out?: Tensor;
}

/** Output channels per invocation of the direct schedule. */
const TCO = 16;

/** Output size of a convolution along one axis. */
export function convOutSize(
  n: number,
  ks: number,
  o: { stride?: number; pad?: number; padEnd?: number } = {},
): number {
  const pad = o.pad ?? (ks - 1) / 2;
  return Math.floor((n + 2 * pad + (o.padEnd ?? 0) - ks) / (o.stride ?? 1)) + 1;
}

/** y = conv2d(x, weight [cout, cin, ks, ks]) (+bias) (+resid). Returns [cout, oh, ow] (or [oh·ow, cout]). */
/**
 * The schedule conv2d runs for a weight [cout, cin, ks, ks]: `o.variant` when given (throws when windows cannot take
 * the weight); otherwise windows on CPU adapters when cout > 4, the output is NCHW and cin·ks² suits the windows
 * matmul (a multiple of 8), else direct; tiled on GPUs.
 */
export function conv2dSchedule(
  ctx: GpuContext,
  o: { cin: number; cout: number; ks: number; channelsLast?: boolean; variant?: Conv2dOptions["variant"] },
): NonNullable<Conv2dOptions["variant"]> {
  const K = o.cin * o.ks * o.ks;
  const windowsOk = o.cout > 4 && !o.channelsLast && windowsApplies({ K, ldw: K, wOff: 0, f16: false });
  const variant = o.variant ?? (ctx.gpu.isFallback ? (windowsOk ? "windows" : "direct") : "tiled");
  check(
    variant !== "windows" || windowsOk,
    "conv2d",
    `the windows schedule needs cout > 4, NCHW output and cin·ks² a multiple of 8 (${K})`,
  );
  return variant;
}

export function conv2d(ctx: GpuContext, x: Tensor, weight: Tensor, o: Conv2dOptions): Tensor {
  check(x.dtype === "f32", "conv2d", `input must be f32, got ${x.dtype}`);
  check(
    weight.dtype === "f32" || weight.dtype === "f16",
    "conv2d",
    `weight must be f32 or f16, got ${weight.dtype}`,
  );
  check(
    weight.shape.length === 4 && weight.shape[2] === weight.shape[3],
    "conv2d",
    `weight must be [cout, cin, k, k], got [${weight.shape}]`,
  );
  const [cout, cin, ks] = weight.shape;
  const up = o.upsample ? 2 : 1;
  const lh = o.h * up, lw = o.w * up;
  const stride = o.stride ?? 1;
  const pad = o.pad ?? (ks - 1) / 2;
  check(Number.isInteger(pad) && pad >= 0, "conv2d", `pad must be a non-negative integer, got ${pad}`);
  check(x.size === cin * o.h * o.w, "conv2d", `input [${x.shape}] is not [${cin}, ${o.h}, ${o.w}]`);
  const oh = convOutSize(lh, ks, { stride, pad, padEnd: o.padEnd });
  const ow = convOutSize(lw, ks, { stride, pad, padEnd: o.padEnd });
  check(oh > 0 && ow > 0, "conv2d", `input ${lh}x${lw} is smaller than the ${ks}x${ks} kernel`);
  if (o.bias) {
    check(
      o.bias.dtype === weight.dtype,
      "conv2d",
      `bias dtype ${o.bias.dtype} differs from the weight's ${weight.dtype}`,
    );
    check(o.bias.size === cout, "conv2d", `bias has ${o.bias.size} elements, expected ${cout}`);
  }
  const out = o.out ?? ctx.empty(o.channelsLast ? [oh * ow, cout] : [cout, oh, ow], "f32");
  check(out.size === cout * oh * ow, "conv2d", `output [${out.shape}] is not ${cout}x${oh}x${ow}`);
  if (o.resid) {
    check(o.resid.size === out.size, "conv2d", `resid [${o.resid.shape}] differs from the output size`);
  }
  const small = cout <= 4;
  const variant = conv2dSchedule(ctx, { cin, cout, ks, channelsLast: o.channelsLast, variant: o.variant });
  if (variant === "windows") {
    return convWindows(ctx, x, weight, out, { ...o, cin, cout, ks, lh, lw, oh, ow, stride, pad });
  }
  const direct = !small && variant === "direct";
  const defines = {
    W_F16: weight.dtype === "f16",
    BIAS: !!o.bias,
    RESID: !!o.resid,
    UPSAMPLE: !!o.upsample,
    CHANNELS_LAST: !!o.channelsLast,
    SMALL_COUT: small,
    DIRECT: direct,
    TCO: TCO,
    KS: ks,
    STRIDE: stride,
  };
  const bindings = ["read", "read", ...(o.bias ? ["read"] : []), ...(o.resid ? ["read"] : []), "write"] as (
    | "read"
    | "write"
  )[];
  const k = ctx.kernel({
    name: small ? "conv2d_small" : direct ? "conv2d_direct" : "conv2d",
    shader: "conv2d.wgsl",
    defines,
    bindings,
  });
  const bufs = [x, weight, ...(o.bias ? [o.bias] : []), ...(o.resid ? [o.resid] : []), out];
  const step = o.rowsPerLaunch ?? oh;
  for (let r0 = 0; r0 < oh; r0 += step) {
    const r1 = Math.min(oh, r0 + step);
    const params = [cin, o.h, o.w, lh, lw, cout, oh, ow, ks, stride, pad, 0, 0, r0, r1];
    const np = (r1 - r0) * ow;
    const groups: [number, number, number] = small
      ? grid1d(np, 256)
      : direct
      ? [Math.ceil(((r1 - r0) * Math.ceil(ow / 8)) / 64), Math.ceil(cout / TCO), 1]
      : [Math.ceil(np / 64), Math.ceil(cout / 64), 1];
    ctx.dispatch(k, params, bufs, groups);
  }
  return out;
}

/** Weights as f32 [cout, K] (the windows matmul's A operand): f32 weights as they are, f16 converted once. */
const f32Weights = new WeakMap<Tensor, Tensor>();
function weightsF32(ctx: GpuContext, weight: Tensor): Tensor {
  if (weight.dtype === "f32") return weight;
  const hit = f32Weights.get(weight);
  if (hit && !hit.released) return hit;
  const n = weight.size;
  const out = ctx.empty([n], "f32");
  const k = ctx.kernel({
    name: "conv_weights_f32",
    shader: "conv_windows.wgsl",
    entry: "to_f32",
    defines: { TO_F32: true },
    bindings: ["read", "write"],
  });
  ctx.dispatch(k, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n], [weight, out], grid1d(n, 256));
  f32Weights.set(weight, out);
  weight.attach(out); // released with the weight
  return out;
}

/** Packed im2col words per pixel block (bounds the scratch operand to 32 MiB). */
const PACK_WORDS = 8 * 1024 * 1024;

/**
 * The windows convolution: out[cout, pixels] = W[cout, K] · im2col(x)[K, pixels] as the windows matmul, one block
 * of output pixels at a time (im2col written straight into the packed operand layout by shaders/conv_windows.wgsl).
 */
function convWindows(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  out: Tensor,
  o: Conv2dOptions & {
    cin: number;
    cout: number;
    ks: number;
    lh: number;
    lw: number;
    oh: number;
    ow: number;
    stride: number;
    pad: number;
  },
): Tensor {
  const K = o.cin * o.ks * o.ks, P = o.oh * o.ow;
  const a = weightsF32(ctx, weight);
  // Pixels per block: the packed im2col (bound as storage while it is written) within 32 MiB and the max binding.
  const fits = (np: number) =>
    packedLayout(planWindows(o.cout, np, K, false), np).words * 4 <= ctx.maxBinding;
  let block = o.rowsPerLaunch
    ? o.rowsPerLaunch * o.ow
    : Math.min(P, Math.max(64, Math.floor(Math.min(PACK_WORDS, ctx.maxBinding / 4) / K / 64) * 64));
  while (block > 64 && !fits(block)) block = Math.max(64, block - 64 * Math.ceil(block / 64 / 8));
  check(
    fits(Math.min(block, P)),
    "conv2d",
    `the packed im2col of ${Math.min(block, P)} pixels x ${K} exceeds the max storage binding`,
  );
  const k = ctx.kernel({
    name: "conv_im2col_pack",
    shader: "conv_windows.wgsl",
    entry: "im2col_pack",
    bindings: ["read", "write"],
  });
  for (let p0 = 0; p0 < P; p0 += block) {
    const np = Math.min(block, P - p0);
    const pl = planWindows(o.cout, np, K, false);
    const { groups, chunkWords, words } = packedLayout(pl, np);
    const total = pl.chunks * chunkWords;
    const packed = ctx.empty([words], "f32");
    const params = [o.cin, o.h, o.w, o.lh, o.lw, o.ow, o.ks, o.stride, o.pad, o.upsample ? 1 : 0];
    const grid = [Math.ceil((groups * 8) / 64), pl.steps, pl.chunks];
    ctx.dispatch(k, [...params, p0, np, pl.kc, pl.steps, groups, total], [x, packed], grid);
    matmulWindows(ctx, a, null, out, {
      M: o.cout,
      N: np,
      K,
      lda: K,
      aOff: 0,
      ldw: K,
      wOff: 0,
      ldc: P,
      cOff: p0,
      alpha: 1,
      bias: o.bias,
      biasOff: 0,
      biasRow: true,
      gelu: false,
      resid: o.resid,
      rOff: p0,
      ldr: P,
      packed,
    });
    packed.release();
  }
  return out;
}
