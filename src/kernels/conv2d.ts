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
  // The packed im2col of the smallest pixel block (64) must fit one storage binding (lowered limits, wide K).
  const windowsOk = o.cout > 4 && !o.channelsLast && windowsApplies({ K, ldw: K, wOff: 0, f16: false }) &&
    packedLayout(planWindows(o.cout, 64, K, false), 64).words * 4 <= ctx.maxBinding;
  const variant = o.variant ?? (ctx.gpu.isFallback ? (windowsOk ? "windows" : "direct") : "tiled");
  check(
    variant !== "windows" || windowsOk,
    "conv2d",
    () =>
      `the windows schedule needs cout > 4, NCHW output, cin·ks² a multiple of 8 (${K}) and a packed block of 64 ` +
      `pixels within the max storage binding`,
  );
  return variant;
}

export function conv2d(ctx: GpuContext, x: Tensor, weight: Tensor, o: Conv2dOptions): Tensor {
  check(x.dtype === "f32", "conv2d", () => `input must be f32, got ${x.dtype}`);
  check(
    weight.dtype === "f32" || weight.dtype === "f16",
    "conv2d",
    () => `weight must be f32 or f16, got ${weight.dtype}`,
  );
  check(
    weight.shape.length === 4 && weight.shape[2] === weight.shape[3],
    "conv2d",
    () => `weight must be [cout, cin, k, k], got [${weight.shape}]`,
  );
  const [cout, cin, ks] = weight.shape;
  const up = o.upsample ? 2 : 1;
  const lh = o.h * up, lw = o.w * up;
  const stride = o.stride ?? 1;
  const pad = o.pad ?? (ks - 1) / 2;
  check(Number.isInteger(pad) && pad >= 0, "conv2d", () => `pad must be a non-negative integer, got ${pad}`);
  check(x.size === cin * o.h * o.w, "conv2d", () => `input [${x.shape}] is not [${cin}, ${o.h}, ${o.w}]`);
  const oh = convOutSize(lh, ks, { stride, pad, padEnd: o.padEnd });
  const ow = convOutSize(lw, ks, { stride, pad, padEnd: o.padEnd });
  check(oh > 0 && ow > 0, "conv2d", () => `input ${lh}x${lw} is smaller than the ${ks}x${ks} kernel`);
  if (o.bias) {
    check(
      o.bias.dtype === weight.dtype,
      "conv2d",
      () => `bias dtype ${o.bias!.dtype} differs from the weight's ${weight.dtype}`,
    );
    check(o.bias.size === cout, "conv2d", () => `bias has ${o.bias!.size} elements, expected ${cout}`);
  }
  const out = o.out ?? ctx.empty(o.channelsLast ? [oh * ow, cout] : [cout, oh, ow], "f32");
  check(out.size === cout * oh * ow, "conv2d", () => `output [${out.shape}] is not ${cout}x${oh}x${ow}`);
  if (o.resid) {
    check(
      o.resid.size === out.size,
      "conv2d",
      () => `resid [${o.resid!.shape}] differs from the output size`,
    );
  }
  const variant = conv2dSchedule(ctx, { cin, cout, ks, channelsLast: o.channelsLast, variant: o.variant });
  const g: ConvGeometry = { cin, cout, ks, lh, lw, oh, ow, stride, pad, variant };
  const fits = (t?: Tensor) => !t || t.byteLength <= ctx.maxBinding;
  if (fits(x) && fits(out) && fits(o.resid) && fits(weight)) {
    convLaunch(ctx, x, weight, out, o.resid, o, g, {
      xRow0: 0,
      xRows: o.h,
      r0: 0,
      r1: oh,
      outRow0: 0,
      outRows: oh,
    });
    return out;
  }
  return convBands(ctx, x, weight, out, o, g);
}

/** Sizes every launch of one convolution shares. */
interface ConvGeometry {
  cin: number;
  cout: number;
  ks: number;
  lh: number;
  lw: number;
  oh: number;
  ow: number;
  stride: number;
  pad: number;
  variant: NonNullable<Conv2dOptions["variant"]>;
}

/**
 * Which rows the tensors of one launch hold (all of them for a whole map; a row band when the maps exceed the max
 * storage binding): x holds stored input rows [xRow0, xRow0 + xRows) of every channel (channel stride xRows·w), out
 * and resid hold output rows [outRow0, outRow0 + outRows) (channel stride outRows·ow; channels-last: those pixel
 * rows), and the launch computes output rows [r0, r1).
 */
interface Band {
  xRow0: number;
  xRows: number;
  r0: number;
  r1: number;
  outRow0: number;
  outRows: number;
  /** Output channels [co0, co0 + cn) (a weight above the binding: channel blocks); default all. */
  co0?: number;
  cn?: number;
}

/**
 * A convolution whose input, output or residual map exceeds the max storage binding: output row bands, each with its
 * input rows (the halo the kernel reaches above and below the band) gathered channel by channel into a bound band
 * tensor, the band's output (and residual) in band tensors scattered back / gathered channel by channel. Copies are
 * not bindings, so only the band tensors must fit; every output value is computed exactly as in one launch.
 */
function convBands(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  out: Tensor,
  o: Conv2dOptions,
  g: ConvGeometry,
): Tensor {
  const lim = ctx.maxBinding;
  const { cin, cout, ks, oh, ow, stride, pad } = g;
  const up = o.upsample ? 1 : 0;
  // Output-channel blocks whose weight rows fit one binding (a weight above it; the windows schedule reads the
  // weight by copies and needs none).
  const K = cin * ks * ks, eb = weight.dtype === "f16" ? 2 : 4;
  const wSpan = Math.floor((lim - ctx.gpu.limits.minStorageBufferOffsetAlignment) / eb);
  const cb = g.variant === "windows" || weight.byteLength <= lim ? cout : Math.floor(wSpan / K);
  check(
    cb >= 1 && (cb === cout || !o.channelsLast),
    "conv2d",
    () =>
      `weight [${weight.shape}] (${weight.byteLength} bytes) exceeds the max storage binding (${lim} bytes)` +
      (cb >= 1 ? " with a channels-last output" : ""),
  );
  // Stored input rows output rows [r0, r1) read: logical rows r·stride − pad + [0, ks), clipped to the image.
  const xRange = (r0: number, r1: number): [number, number] => {
    const l0 = Math.max(0, r0 * stride - pad), l1 = Math.min(g.lh, (r1 - 1) * stride - pad + ks);
    if (l1 <= l0) return [0, 1]; // the band reads only padding: bind one row, never read
    return [l0 >> up, ((l1 - 1) >> up) + 1];
  };
  const xWhole = x.byteLength <= lim;
  const outWhole = out.byteLength <= lim && (!o.resid || o.resid.byteLength <= lim);
  const maxXRows = (rb: number) => {
    let m = 0;
    for (let r0 = 0; r0 < oh; r0 += rb) {
      const [a, b] = xRange(r0, Math.min(oh, r0 + rb));
      m = Math.max(m, b - a);
    }
    return m;
  };
  const bandFits = (rb: number) =>
    (xWhole || cin * maxXRows(rb) * o.w * 4 <= lim) && (outWhole || cout * rb * ow * 4 <= lim);
  let rb = oh;
  while (rb > 1 && !bandFits(rb)) rb = Math.min(rb - 1, Math.ceil(rb * 0.9));
  check(
    bandFits(rb),
    "conv2d",
    () =>
      `one output row (${cout}x${ow}) with its ${ks} input rows (${cin}x${o.w}) exceeds the max storage binding ` +
      `(${lim} bytes)`,
  );
  const xb = xWhole ? null : ctx.empty([cin * maxXRows(rb) * o.w], "f32");
  const ob = outWhole ? null : ctx.empty([cout * rb * ow], "f32");
  const rt = outWhole || !o.resid ? null : ctx.empty([cout * rb * ow], "f32");
  // Copies `rows` rows of each of `planes` planes: from plane stride sp (row s0) to plane stride dp (row d0).
  const rowsCopy = (
    src: Tensor,
    dst: Tensor,
    planes: number,
    width: number,
    rows: number,
    sp: number,
    s0: number,
    dp: number,
    d0: number,
  ) => {
    const bytes = rows * width * 4;
    for (let c = 0; c < planes; c++) {
      ctx.copy(
        { buffer: src.buffer, offset: src.byteOffset + (c * sp + s0) * width * 4, size: bytes },
        { buffer: dst.buffer, offset: dst.byteOffset + (c * dp + d0) * width * 4, size: bytes },
        bytes,
      );
    }
  };
  // Channels-last maps are one plane of pixel rows of cout values.
  const [oPlanes, oWidth] = o.channelsLast ? [1, ow * cout] : [cout, ow];
  for (let r0 = 0; r0 < oh; r0 += rb) {
    const r1 = Math.min(oh, r0 + rb), n = r1 - r0;
    let xt = x, xRow0 = 0, xRows = o.h;
    if (xb) {
      [xRow0, xRows] = (([a, b]) => [a, b - a])(xRange(r0, r1));
      rowsCopy(x, xb, cin, o.w, xRows, o.h, xRow0, xRows, 0);
      xt = xb;
    }
    const launch = (dst: Tensor, resid: Tensor | undefined, outRow0: number, outRows: number) => {
      for (let co0 = 0; co0 < cout; co0 += cb) {
        const band = { xRow0, xRows, r0, r1, outRow0, outRows, co0, cn: Math.min(cb, cout - co0) };
        convLaunch(ctx, xt, weight, dst, resid, o, g, band);
      }
    };
    if (!ob) {
      launch(out, o.resid, 0, oh);
      continue;
    }
    if (rt) rowsCopy(o.resid!, rt, oPlanes, oWidth, n, oh, r0, n, 0);
    launch(ob, rt ?? undefined, r0, n);
    rowsCopy(ob, out, oPlanes, oWidth, n, n, 0, oh, r0);
  }
  [xb, ob, rt].forEach((t) => t?.release());
  return out;
}

/** Records the convolution of output rows [band.r0, band.r1) with the schedule `g.variant`. */
function convLaunch(
  ctx: GpuContext,
  x: Tensor,
  weight: Tensor,
  out: Tensor,
  resid: Tensor | undefined,
  o: Conv2dOptions,
  g: ConvGeometry,
  band: Band,
): void {
  const { cin, cout, ks, lh, lw, ow, stride, pad } = g;
  if (g.variant === "windows") {
    convWindows(ctx, x, weight, out, resid, o, g, band);
    return;
  }
  const co0 = band.co0 ?? 0, cn = band.cn ?? cout;
  const small = cout <= 4;
  const direct = !small && g.variant === "direct";
  const defines = {
    W_F16: weight.dtype === "f16",
    BIAS: !!o.bias,
    RESID: !!resid,
    UPSAMPLE: !!o.upsample,
    CHANNELS_LAST: !!o.channelsLast,
    SMALL_COUT: small,
    DIRECT: direct,
    TCO: TCO,
    KS: ks,
    STRIDE: stride,
  };
  const bindings = ["read", "read", ...(o.bias ? ["read"] : []), ...(resid ? ["read"] : []), "write"] as (
    | "read"
    | "write"
  )[];
  const k = ctx.kernel({
    name: small ? "conv2d_small" : direct ? "conv2d_direct" : "conv2d",
    shader: "conv2d.wgsl",
    defines,
    bindings,
  });
  const K = cin * ks * ks;
  const wv = cn === cout ? { t: weight, off: 0 } : ctx.alignedView(weight, co0 * K, (co0 + cn) * K);
  const bufs = [x, wv.t, ...(o.bias ? [o.bias] : []), ...(resid ? [resid] : []), out];
  // Element offsets that place absolute rows into the band tensors (negative: u32 arithmetic wraps in the shader).
  const xOff = -band.xRow0 * o.w;
  // NCHW: channel co0 of this block first (planes of outRows rows).
  const outOff = o.channelsLast ? -band.outRow0 * ow * cout : (co0 * band.outRows - band.outRow0) * ow;
  const step = o.rowsPerLaunch ?? band.r1 - band.r0;
  for (let r0 = band.r0; r0 < band.r1; r0 += step) {
    const r1 = Math.min(band.r1, r0 + step);
    const params = [
      cin,
      band.xRows,
      o.w,
      lh,
      lw,
      cn,
      band.outRows,
      ow,
      ks,
      stride,
      pad,
      xOff,
      outOff,
      r0,
      r1,
      wv.off,
      co0,
    ];
    const np = (r1 - r0) * ow;
    const groups: [number, number, number] = small
      ? grid1d(np, 256)
      : direct
      ? [Math.ceil(((r1 - r0) * Math.ceil(ow / 8)) / 64), Math.ceil(cn / TCO), 1]
      : [Math.ceil(np / 64), Math.ceil(cn / 64), 1];
    ctx.dispatch(k, params, bufs, groups);
  }
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
  // In pieces of whole words when the weight or its f32 copy exceeds the max storage binding (aligned views).
  const span = Math.floor((ctx.maxBinding - ctx.gpu.limits.minStorageBufferOffsetAlignment) / 8) * 2;
  for (let e0 = 0; e0 < n; e0 += span) {
    const ne = Math.min(span, n - e0);
    const wv = ctx.alignedView(weight, e0, e0 + ne), ov = ctx.alignedView(out, e0, e0 + ne);
    const params = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ov.off, 0, 0, 0, 0, ne, wv.off];
    ctx.dispatch(k, params, [wv.t, ov.t], grid1d(ne, 256));
  }
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
  resid: Tensor | undefined,
  o: Conv2dOptions,
  g: ConvGeometry,
  band: Band,
): void {
  const K = g.cin * g.ks * g.ks;
  const a = weightsF32(ctx, weight);
  // Pixels per block: the packed im2col (bound as storage while it is written) within 32 MiB and the max binding.
  const fits = (np: number) =>
    packedLayout(planWindows(g.cout, np, K, false), np).words * 4 <= ctx.maxBinding;
  const pEnd = band.r1 * g.ow, pBase = band.outRow0 * g.ow, ldc = band.outRows * g.ow;
  const P = pEnd - band.r0 * g.ow;
  let block = o.rowsPerLaunch
    ? o.rowsPerLaunch * g.ow
    : Math.min(P, Math.max(64, Math.floor(Math.min(PACK_WORDS, ctx.maxBinding / 4) / K / 64) * 64));
  while (block > 64 && !fits(block)) block = Math.max(64, block - 64 * Math.ceil(block / 64 / 8));
  check(
    fits(Math.min(block, P)),
    "conv2d",
    () => `the packed im2col of ${Math.min(block, P)} pixels x ${K} exceeds the max storage binding`,
  );
  const k = ctx.kernel({
    name: "conv_im2col_pack",
    shader: "conv_windows.wgsl",
    entry: "im2col_pack",
    bindings: ["read", "write"],
  });
  for (let p0 = band.r0 * g.ow; p0 < pEnd; p0 += block) {
    const np = Math.min(block, pEnd - p0);
    const pl = planWindows(g.cout, np, K, false);
    const { groups, chunkWords, words } = packedLayout(pl, np);
    const total = pl.chunks * chunkWords;
    const packed = ctx.empty([words], "f32");
    const params = [g.cin, band.xRows, o.w, g.lh, g.lw, g.ow, g.ks, g.stride, g.pad, o.upsample ? 1 : 0];
    const grid = [Math.ceil((groups * 8) / 64), pl.steps, pl.chunks];
    const xOff = -band.xRow0 * o.w; // absolute stored rows into the band tensor (u32 wrap in the shader)
    ctx.dispatch(k, [...params, p0, np, pl.kc, pl.steps, groups, total, xOff], [x, packed], grid);
    matmulWindows(ctx, a, null, out, {
      M: g.cout,
      N: np,
      K,
      lda: K,
      aOff: 0,
      ldw: K,
      wOff: 0,
      ldc,
      cOff: p0 - pBase,
      alpha: 1,
      bias: o.bias,
      biasOff: 0,
      biasRow: true,
      gelu: false,
      resid,
      rOff: p0 - pBase,
      ldr: ldc,
      packed,
    });
    packed.release();
  }
}
