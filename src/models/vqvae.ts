// icetk's hierarchical VQ-VAE (HVQVAE) on the GPU: image → codes (encoder, down-samplers, nearest codebook entry) and
// codes → image (codebook lookup, decoder). Architecture read from the weights' names and shapes; not a trainer.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { CancelPoints, type CancelSignal, runSteps, type Steps } from "./cancel.ts";
import { loadTensor } from "./load.ts";
import { openModelDir } from "./config.ts";
import {
  inferVqvaeArch,
  requiredShape as shapeOf,
  type VqvaeArch,
  vqvaeLevels,
  weightIndices,
} from "./vqvae_config.ts";
import { conv2d } from "../kernels/conv2d.ts";
import { groupNorm } from "../kernels/group_norm.ts";
import { avgPool2x2 } from "../kernels/pool.ts";
import { spatialAttention } from "../kernels/spatial_attention.ts";
import { matmul } from "../kernels/matmul.ts";
import { vqLookup, vqSearch, type VqSearchResult } from "../kernels/vq.ts";
import { f16BitsToF32 } from "../gpu/f16.ts";

export { inferVqvaeArch, inferVqvaeConfig, type VqvaeArch, type VqvaeConfigSection } from "./vqvae_config.ts";

/** torchvision Normalize constants icetk uses (RGB). */
export const ICETK_MEAN = [0.79093, 0.76271, 0.7534] as const;
export const ICETK_STD = [0.30379, 0.32279, 0.328] as const;

interface Conv {
  w: Tensor;
  b: Tensor;
}
interface Norm {
  g: Tensor;
  b: Tensor;
}
interface ResBlock {
  cin: number;
  cout: number;
  norm1: Norm;
  conv1: Conv;
  norm2: Norm;
  conv2: Conv;
  nin?: Conv;
}
interface AttnBlock {
  c: number;
  norm: Norm;
  q: Conv;
  k: Conv;
  v: Conv;
  proj: Conv;
}
interface Level {
  blocks: ResBlock[];
  attns: AttnBlock[];
  /** Encoder: DownSample conv (stride 2); decoder: Upsample conv. */
  resample?: Conv;
  cout: number;
}
interface Trunk {
  convIn: Conv;
  levels: Level[];
  mid1: ResBlock;
  midAttn: AttnBlock;
  mid2: ResBlock;
  normOut: Norm;
  convOut: Conv;
  /** Channels entering norm_out. */
  cEnd: number;
}

/** Intermediate outputs of a decode, keyed like icetk's module names (`decs.1.mid.block_1`), for debugging. */
export type Activations = Map<string, Float32Array>;

/** |e|² per codebook row in float32 (sequential sums of the stored values), read in row blocks. */
async function codeNorms(src: WeightSource, n: number, d: number): Promise<Float32Array> {
  const { dtype } = src.info("quantize.embed.weight");
  const eb = dtype === "f16" ? 2 : 4;
  const out = new Float32Array(n);
  const rowsPer = Math.max(1, Math.floor((16 << 20) / (d * eb)));
  for (let r0 = 0; r0 < n; r0 += rowsPer) {
    const rows = Math.min(rowsPer, n - r0);
    const bytes = await src.readRange("quantize.embed.weight", r0 * d * eb, rows * d * eb);
    const buf = bytes.slice().buffer;
    const e = dtype === "f16" ? f16BitsToF32(new Uint16Array(buf)) : new Float32Array(buf);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let k = 0; k < d; k++) s = Math.fround(s + Math.fround(e[i * d + k] * e[i * d + k]));
      out[r0 + i] = s;
    }
  }
  return out;
}

/** The VQ-VAE of one compress rate (8 for CogView2: 20×20 codes ↔ 160×160 pixels). */
export class Vqvae {
  readonly #owned: Tensor[] = [];
  #enc: Trunk | null = null;
  #dec: Trunk | null = null;
  #down: { conv: Conv }[] = [];
  #proj: Conv | null = null;
  #codebook: Tensor | null = null;
  /** |e|² of each code, float32 (the quantizer's embed.pow(2).sum(1)), for the matmul search. */
  #ee: Float32Array | null = null;
  /** The codebook as row blocks that each fit one storage binding (made once: the packed copies cache per block). */
  #cbBlocks: { c0: number; n: number; t: Tensor; off: number }[] | null = null;
  #codebookBlocks(): { c0: number; n: number; t: Tensor; off: number }[] {
    if (this.#cbBlocks) return this.#cbBlocks;
    const e = this.#codebook!, [n, d] = e.shape, ctx = this.ctx;
    if (e.byteLength <= ctx.maxBinding) return this.#cbBlocks = [{ c0: 0, n, t: e, off: 0 }];
    const eb = e.dtype === "f16" ? 2 : 4;
    // Rows per block: one alignment of slack for the view's early start, a multiple of 16 rows.
    const per =
      Math.floor((ctx.maxBinding - ctx.gpu.limits.minStorageBufferOffsetAlignment) / (d * eb) / 16) * 16;
    if (per < 1) {
      throw new Error(`Vqvae: one block of 16 codebook rows (D=${d}) exceeds the max storage binding`);
    }
    this.#cbBlocks = [];
    for (let c0 = 0; c0 < n; c0 += per) {
      const nb = Math.min(per, n - c0);
      const v = ctx.alignedView(e, c0 * d, (c0 + nb) * d);
      this.#cbBlocks.push({ c0, n: nb, t: v.t, off: v.off });
    }
    return this.#cbBlocks;
  }
  /** Pixels per code along one side (the compress rate). */
  readonly rate: number;
  /**
   * Largest attention score block in bytes (default: the adapter's max storage binding). The mid attention runs in
   * query-row blocks below it (tests lower it to force the blocked path on small maps).
   */
  attentionMaxScoreBytes: number | undefined = undefined;

  private constructor(
    readonly ctx: GpuContext,
    readonly arch: VqvaeArch,
    readonly level: number,
    readonly origin: string,
  ) {
    this.rate = arch.encFactor * 2 ** level;
  }

  /** Loads the VQ-VAE of a converted model directory (`vqvae.safetensors`). */
  static async load(ctx: GpuContext, modelDir: string, o: { compressRate?: number } = {}): Promise<Vqvae> {
    const dir = await openModelDir(modelDir);
    const src = await dir.weights("vqvae");
    try {
      return await Vqvae.fromWeights(ctx, src, o);
    } finally {
      src.close();
    }
  }

  /** Loads from any WeightSource holding ice_image.pt's state dict (converted safetensors or the .pt itself). */
  static async fromWeights(
    ctx: GpuContext,
    src: WeightSource,
    o: { compressRate?: number } = {},
  ): Promise<Vqvae> {
    const rate = o.compressRate ?? 8;
    const arch = inferVqvaeArch(src);
    const levels = vqvaeLevels(arch);
    const lv = levels.find((l) => l.rate === rate);
    if (!lv) {
      throw new Error(
        `Vqvae: compressRate ${rate} is not supported by ${src.origin} (rates: ${
          levels.map((l) => l.rate).join(", ")
        })`,
      );
    }
    const level = lv.level;
    const m = new Vqvae(ctx, arch, level, src.origin);
    try {
      await m.#loadAll(src);
    } catch (e) {
      m.release();
      throw e;
    }
    return m;
  }

  async #t(src: WeightSource, name: string, shape?: number[]): Promise<Tensor> {
    const t = await loadTensor(this.ctx, src, name, shape);
    this.#owned.push(t);
    return t;
  }

  async #conv(src: WeightSource, prefix: string, cout?: number, cin?: number): Promise<Conv> {
    const s = shapeOf(src, `${prefix}.weight`);
    if (s.length !== 4 || (cout !== undefined && s[0] !== cout) || (cin !== undefined && s[1] !== cin)) {
      throw new Error(
        `${src.origin}: ${prefix}.weight has shape [${s}], expected [${cout ?? "C"}, ${cin ?? "C"}, k, k]`,
      );
    }
    const w = await this.#t(src, `${prefix}.weight`);
    const b = await this.#t(src, `${prefix}.bias`, [s[0]]);
    if (w.dtype !== b.dtype) {
      throw new Error(`${src.origin}: ${prefix}.weight is ${w.dtype} but its bias is ${b.dtype}`);
    }
    return { w, b };
  }

  async #norm(src: WeightSource, prefix: string, c: number): Promise<Norm> {
    if (c % 32) {
      throw new Error(`${src.origin}: ${prefix} normalises ${c} channels, not a multiple of 32 groups`);
    }
    return { g: await this.#t(src, `${prefix}.weight`, [c]), b: await this.#t(src, `${prefix}.bias`, [c]) };
  }

  async #res(src: WeightSource, prefix: string, cin: number): Promise<ResBlock> {
    const cout = shapeOf(src, `${prefix}.conv1.weight`)[0];
    const hasNin = src.has(`${prefix}.nin_shortcut.weight`);
    if (hasNin !== (cin !== cout)) {
      throw new Error(
        `${src.origin}: ${prefix} maps ${cin}→${cout} channels but nin_shortcut is ${
          hasNin ? "present" : "absent"
        }`,
      );
    }
    return {
      cin,
      cout,
      norm1: await this.#norm(src, `${prefix}.norm1`, cin),
      conv1: await this.#conv(src, `${prefix}.conv1`, cout, cin),
      norm2: await this.#norm(src, `${prefix}.norm2`, cout),
      conv2: await this.#conv(src, `${prefix}.conv2`, cout, cout),
      nin: hasNin ? await this.#conv(src, `${prefix}.nin_shortcut`, cout, cin) : undefined,
    };
  }

  async #attn(src: WeightSource, prefix: string, c: number): Promise<AttnBlock> {
    return {
      c,
      norm: await this.#norm(src, `${prefix}.norm`, c),
      q: await this.#conv(src, `${prefix}.q`, c, c),
      k: await this.#conv(src, `${prefix}.k`, c, c),
      v: await this.#conv(src, `${prefix}.v`, c, c),
      proj: await this.#conv(src, `${prefix}.proj_out`, c, c),
    };
  }

  /** Encoder (`enc`) or decoder (`decs.k`): same skeleton, levels run up (encoder) or down (decoder). */
  async #trunk(src: WeightSource, prefix: string, decoder: boolean): Promise<Trunk> {
    const names = src.names();
    const convIn = await this.#conv(src, `${prefix}.conv_in`, undefined, decoder ? this.arch.embedDim : 3);
    let c = convIn.w.shape[0];
    const levelIdx = weightIndices(names, `${prefix}.${decoder ? "up" : "down"}`);
    const levels: Level[] = new Array(levelIdx.length);
    const buildLevel = async (i: number) => {
      const lp = `${prefix}.${decoder ? "up" : "down"}.${i}`;
      const blocks: ResBlock[] = [], attns: AttnBlock[] = [];
      const nAttn = weightIndices(names, `${lp}.attn`).length;
      for (const j of weightIndices(names, `${lp}.block`)) {
        const b = await this.#res(src, `${lp}.block.${j}`, c);
        blocks.push(b);
        c = b.cout;
        if (j < nAttn) attns.push(await this.#attn(src, `${lp}.attn.${j}`, c));
      }
      if (!blocks.length) throw new Error(`${src.origin}: ${lp} has no ResnetBlocks`);
      if (nAttn && nAttn !== blocks.length) {
        throw new Error(`${src.origin}: ${lp} has ${nAttn} attn blocks for ${blocks.length} ResnetBlocks`);
      }
      const rs = `${lp}.${decoder ? "upsample" : "downsample"}.conv`;
      const resample = src.has(`${rs}.weight`) ? await this.#conv(src, rs, c, c) : undefined;
      levels[i] = { blocks, attns, resample, cout: c };
    };
    let mid1: ResBlock, midAttn: AttnBlock, mid2: ResBlock;
    if (decoder) {
      mid1 = await this.#res(src, `${prefix}.mid.block_1`, c);
      midAttn = await this.#attn(src, `${prefix}.mid.attn_1`, c);
      mid2 = await this.#res(src, `${prefix}.mid.block_2`, c);
      for (const i of [...levelIdx].reverse()) await buildLevel(i);
    } else {
      for (const i of levelIdx) await buildLevel(i);
      mid1 = await this.#res(src, `${prefix}.mid.block_1`, c);
      midAttn = await this.#attn(src, `${prefix}.mid.attn_1`, c);
      mid2 = await this.#res(src, `${prefix}.mid.block_2`, c);
    }
    return {
      convIn,
      levels,
      mid1,
      midAttn,
      mid2,
      normOut: await this.#norm(src, `${prefix}.norm_out`, c),
      convOut: await this.#conv(src, `${prefix}.conv_out`, decoder ? 3 : this.arch.hidden, c),
      cEnd: c,
    };
  }

  async #loadAll(src: WeightSource): Promise<void> {
    const { arch, level } = this;
    this.#codebook = await this.#t(src, "quantize.embed.weight", [arch.nEmbed, arch.embedDim]);
    this.#ee = await codeNorms(src, arch.nEmbed, arch.embedDim);
    this.#proj = await this.#conv(src, "quantize.proj", arch.embedDim, arch.hidden);
    this.#dec = await this.#trunk(src, `decs.${arch.decoders - 1 - level}`, true);
    this.#enc = await this.#trunk(src, "enc", false);
    for (let i = 0; i < level; i++) {
      this.#down.push({
        conv: await this.#conv(src, `down_samplers.${i}.conv_down_sampler.conv`, arch.hidden, arch.hidden),
      });
    }
    await this.ctx.sync();
  }

  // ------------------------------------------------------------------ blocks (recorded, not flushed)

  #resBlock(x: Tensor, b: ResBlock, h: number, w: number): Tensor {
    return runSteps(this.#resBlockSteps(x, b, h, w));
  }

  /** The residual block as recording steps (one yield, between its two convolutions). */
  *#resBlockSteps(x: Tensor, b: ResBlock, h: number, w: number): Steps<Tensor> {
    const ctx = this.ctx;
    const n1 = groupNorm(ctx, x, b.norm1.g, b.norm1.b, { c: b.cin, silu: true });
    const c1 = conv2d(ctx, n1, b.conv1.w, { h, w, bias: b.conv1.b });
    n1.release();
    let resumed = false;
    try {
      yield;
      resumed = true;
    } finally {
      if (!resumed) c1.release(); // closed here (cancelled)
    }
    const n2 = groupNorm(ctx, c1, b.norm2.g, b.norm2.b, { c: b.cout, silu: true });
    c1.release();
    const skip = b.nin ? conv2d(ctx, x, b.nin.w, { h, w, bias: b.nin.b }) : x;
    const out = conv2d(ctx, n2, b.conv2.w, { h, w, bias: b.conv2.b, resid: skip });
    n2.release();
    if (skip !== x) skip.release();
    return out;
  }

  #attnBlock(x: Tensor, a: AttnBlock, h: number, w: number): Tensor {
    const ctx = this.ctx;
    const n = groupNorm(ctx, x, a.norm.g, a.norm.b, { c: a.c });
    const qT = conv2d(ctx, n, a.q.w, { h, w, bias: a.q.b, channelsLast: true });
    // k above one storage binding: channels-last, so the scores can bind it in blocks of keys (rows of kT).
    const kT = a.c * h * w * 4 > ctx.maxBinding;
    const k = conv2d(ctx, n, a.k.w, { h, w, bias: a.k.b, channelsLast: kT });
    const v = conv2d(ctx, n, a.v.w, { h, w, bias: a.v.b });
    n.release();
    const att = spatialAttention(ctx, qT, k, v, {
      c: a.c,
      n: h * w,
      maxScoreBytes: this.attentionMaxScoreBytes,
      kT,
    });
    [qT, k, v].forEach((t) => t.release());
    const out = conv2d(ctx, att, a.proj.w, { h, w: w, bias: a.proj.b, resid: x });
    att.release();
    return out;
  }

  /** Runs x through `step`, releasing x (unless it is `keep`). */
  #then(x: Tensor, keep: Tensor | null, step: (x: Tensor) => Tensor): Tensor {
    const y = step(x);
    if (x !== keep) x.release();
    return y;
  }

  /**
   * The decoder: with `debug`, each module's output is read back into it; with `points`, the decoder is submitted in
   * steps (each module, each residual block's half) with a cancellation point between them.
   */
  async #decodeMap(z: Tensor, s: number, debug?: Activations, points?: CancelPoints): Promise<Tensor> {
    const prefix = `decs.${this.arch.decoders - 1 - this.level}`;
    const steps = this.#decoderSteps(z, s);
    try {
      let r = steps.next();
      while (!r.done) {
        if (debug && r.value) debug.set(`${prefix}.${r.value.name}`, await this.ctx.readF32(r.value.t));
        else if (!debug) await points?.pass();
        r = steps.next();
      }
      return r.value;
    } catch (e) {
      steps.return(z); // its finally returns the live activation to the pool
      throw e;
    }
  }

  /**
   * The decoder as recording steps: yields inside residual blocks (nothing) and after each module (its name and
   * output). Closed early, the activation it holds goes back to the pool.
   */
  *#decoderSteps(z: Tensor, s: number): Generator<{ name: string; t: Tensor } | void, Tensor> {
    const d = this.#dec!;
    let h = s, w = s;
    let x = conv2d(this.ctx, z, d.convIn.w, { h, w, bias: d.convIn.b });
    let done = false;
    // Runs x through a module's steps, then releases x.
    const then = function* (steps: Steps<Tensor>): Steps<Tensor> {
      const y = yield* steps;
      x.release();
      return y;
    };
    try {
      yield { name: "conv_in", t: x };
      x = yield* then(this.#resBlockSteps(x, d.mid1, h, w));
      yield { name: "mid.block_1", t: x };
      x = this.#then(x, null, (t) => this.#attnBlock(t, d.midAttn, h, w));
      yield { name: "mid.attn_1", t: x };
      x = yield* then(this.#resBlockSteps(x, d.mid2, h, w));
      yield { name: "mid.block_2", t: x };
      for (let i = d.levels.length - 1; i >= 0; i--) {
        const lv = d.levels[i];
        for (let j = 0; j < lv.blocks.length; j++) {
          x = yield* then(this.#resBlockSteps(x, lv.blocks[j], h, w));
          yield { name: `up.${i}.block.${j}`, t: x };
          if (lv.attns[j]) {
            x = this.#then(x, null, (t) => this.#attnBlock(t, lv.attns[j], h, w));
            yield { name: `up.${i}.attn.${j}`, t: x };
          }
        }
        if (lv.resample) {
          const [hh, ww] = [h, w];
          x = this.#then(
            x,
            null,
            (t) =>
              conv2d(this.ctx, t, lv.resample!.w, { h: hh, w: ww, upsample: true, bias: lv.resample!.b }),
          );
          h *= 2, w *= 2;
          yield { name: `up.${i}.upsample`, t: x };
        }
      }
      x = this.#then(
        x,
        null,
        (t) => groupNorm(this.ctx, t, d.normOut.g, d.normOut.b, { c: d.cEnd, silu: true }),
      );
      yield;
      x = this.#then(x, null, (t) => conv2d(this.ctx, t, d.convOut.w, { h, w, bias: d.convOut.b }));
      done = true;
      return x;
    } finally {
      if (!done) x.release();
    }
  }

  /**
   * Codes [side·side] (row-major) → image [3, side·rate, side·rate], de-normalised (x·std + mean), unclamped.
   * `debug` collects each decoder module's output (slower: reads them back). With `signal`, the decoder is submitted
   * in steps (modules, halves of residual blocks) and the signal read in between (src/models/cancel.ts): a
   * cancellation stops it when the running step ends, its buffers back in the pool.
   */
  async decode(
    codes: Int32Array | ArrayLike<number>,
    side: number,
    o: { debug?: Activations; signal?: CancelSignal } = {},
  ): Promise<Float32Array> {
    if (!Number.isInteger(side) || side < 1) {
      throw new Error(`Vqvae.decode: side must be a positive integer, got ${side}`);
    }
    if (codes.length !== side * side) {
      throw new Error(`Vqvae.decode: ${codes.length} codes do not form a ${side}x${side} grid`);
    }
    const n = this.arch.nEmbed;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (!Number.isInteger(c) || c < 0 || c >= n) {
        throw new Error(`Vqvae.decode: code ${c} at position ${i} is outside [0, ${n})`);
      }
    }
    const tc = this.ctx.upload(Int32Array.from(codes), [side * side], "i32");
    const z = vqLookup(this.ctx, tc, this.#codebook!);
    tc.release();
    let out: Tensor;
    try {
      out = await this.#decodeMap(z, side, o.debug, CancelPoints.of(this.ctx, o.signal));
    } finally {
      z.release();
    }
    const img = await this.ctx.readF32(out);
    out.release();
    const plane = img.length / 3;
    const res = new Float32Array(img.length);
    for (let c = 0; c < 3; c++) {
      const s = Math.fround(ICETK_STD[c]), m = Math.fround(ICETK_MEAN[c]);
      for (let i = c * plane; i < (c + 1) * plane; i++) res[i] = Math.fround(img[i] * s) + m;
    }
    return res;
  }

  /** Records the encoder up to the quantiser input z_e, channels-last [h·w, D] (and proj's input, quantIn [H, h, w]). */
  #encodeMap(image: Tensor, hIn: number, wIn: number): { ze: Tensor; quantIn: Tensor; h: number; w: number } {
    const e = this.#enc!;
    const ctx = this.ctx;
    let h = hIn, w = wIn;
    let x = conv2d(ctx, image, e.convIn.w, { h, w, bias: e.convIn.b });
    const down = (t: Tensor, conv: Conv, pooled?: Tensor) =>
      conv2d(ctx, t, conv.w, { h, w, stride: 2, pad: 0, padEnd: 1, bias: conv.b, resid: pooled });
    for (const lv of e.levels) {
      for (let j = 0; j < lv.blocks.length; j++) {
        x = this.#then(x, null, (t) => this.#resBlock(t, lv.blocks[j], h, w));
        if (lv.attns[j]) x = this.#then(x, null, (t) => this.#attnBlock(t, lv.attns[j], h, w));
      }
      if (lv.resample) {
        x = this.#then(x, null, (t) => down(t, lv.resample!));
        h = Math.floor((h - 2) / 2) + 1, w = Math.floor((w - 2) / 2) + 1;
      }
    }
    x = this.#then(x, null, (t) => this.#resBlock(t, e.mid1, h, w));
    x = this.#then(x, null, (t) => this.#attnBlock(t, e.midAttn, h, w));
    x = this.#then(x, null, (t) => this.#resBlock(t, e.mid2, h, w));
    x = this.#then(x, null, (t) => groupNorm(ctx, t, e.normOut.g, e.normOut.b, { c: e.cEnd, silu: true }));
    x = this.#then(x, null, (t) => conv2d(ctx, t, e.convOut.w, { h, w, bias: e.convOut.b }));
    for (const ds of this.#down) {
      // ResidualDownSample: avg_pool2d(x, 2) + DownSample-conv(x); both give ⌊h/2⌋ for even h.
      if (h % 2 || w % 2) {
        throw new Error(`Vqvae.encode: a ${h}x${w} map cannot be halved by ResidualDownSample`);
      }
      const pooled = avgPool2x2(ctx, x, { planes: this.arch.hidden, h, w });
      x = this.#then(x, null, (t) => down(t, ds.conv, pooled));
      pooled.release();
      h /= 2, w /= 2;
    }
    const ze = conv2d(ctx, x, this.#proj!.w, { h, w, bias: this.#proj!.b, channelsLast: true });
    return { ze, quantIn: x, h, w };
  }

  /**
   * Image [3, h, w] with values in [0, 1] → normalised → codes [h/rate · w/rate] (row-major), plus z_e
   * (channels-last [h·w, D]) and the search details (runner-up, gap) for near-tie reporting.
   */
  async encodeDetailed(
    image: Float32Array,
    h: number,
    w: number,
    o: { search?: "matmul" | "kernel"; debug?: Activations } = {},
  ): Promise<VqSearchResult & { ze: Float32Array; h: number; w: number }> {
    if (image.length !== 3 * h * w) {
      throw new Error(`Vqvae.encode: image has ${image.length} values, expected 3x${h}x${w}`);
    }
    if (h % this.rate || w % this.rate) {
      throw new Error(
        `Vqvae.encode: image size ${h}x${w} is not a multiple of the compress rate ${this.rate}`,
      );
    }
    const norm = new Float32Array(image.length);
    const plane = h * w;
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(ICETK_MEAN[c]), s = Math.fround(ICETK_STD[c]);
      for (let i = c * plane; i < (c + 1) * plane; i++) norm[i] = Math.fround(image[i] - m) / s;
    }
    const t = this.ctx.upload(norm, [3, h, w]);
    const r = this.#encodeMap(t, h, w);
    t.release();
    try {
      // The quantizer's input [H, h, w] (after the down samplers), as icetk_encode's act.quant_in.
      if (o.debug) o.debug.set("quant_in", await this.ctx.readF32(r.quantIn));
      if (o.search === "kernel") {
        const search = await vqSearch(this.ctx, r.ze, this.#codebook!);
        return { ...search, ze: await this.ctx.readF32(r.ze), h: r.h, w: r.w };
      }
      const ze = await this.ctx.readF32(r.ze);
      return { ...(await this.#searchMatmul(r.ze, ze)), ze, h: r.h, w: r.w };
    } finally {
      r.ze.release();
      r.quantIn.release();
    }
  }

  /**
   * Nearest code of each row of z_e [np, D] as icetk computes it: dist = (|z|² − 2 z·E[c]) + |E[c]|², float32, first
   * index on ties. z·Eᵀ runs as a GPU matmul in row blocks that fit one binding; the top-2 scan runs here.
   */
  async #searchMatmul(zeT: Tensor, ze: Float32Array): Promise<VqSearchResult> {
    const { nEmbed: n, embedDim: d } = this.arch;
    const np = ze.length / d;
    const ee = this.#ee!;
    const r: VqSearchResult = {
      best: new Int32Array(np),
      second: new Int32Array(np),
      dist: new Float32Array(np),
      gap: new Float32Array(np),
    };
    const block = Math.max(1, Math.min(np, Math.floor(this.ctx.maxBinding / (4 * n)), 1024));
    const f = Math.fround;
    const cb = this.#codebookBlocks();
    for (let p0 = 0; p0 < np; p0 += block) {
      const rows = Math.min(block, np - p0);
      const t = this.ctx.empty([rows, n], "f32");
      for (const b of cb) {
        matmul(this.ctx, zeT, b.t, {
          constantW: true,
          M: rows,
          N: b.n,
          K: d,
          aOff: p0 * d,
          wOff: b.off,
          alpha: -2,
          ldc: n,
          cOff: b.c0,
          out: t,
        });
      }
      const m2dot = await this.ctx.readF32(t);
      t.release();
      for (let i = 0; i < rows; i++) {
        const p = p0 + i;
        let zz = 0;
        for (let k = 0; k < d; k++) zz = f(zz + f(ze[p * d + k] * ze[p * d + k]));
        let d1 = Infinity, i1 = 0, d2 = Infinity, i2 = 0;
        const row = i * n;
        for (let c = 0; c < n; c++) {
          const v = f(f(zz + m2dot[row + c]) + ee[c]);
          if (v < d1) {
            d2 = d1, i2 = i1, d1 = v, i1 = c;
          } else if (v < d2) {
            d2 = v, i2 = c;
          }
        }
        r.best[p] = i1, r.second[p] = i2, r.dist[p] = d1, r.gap[p] = f(d2 - d1);
      }
    }
    return r;
  }

  /** Image [3, h, w] in [0, 1] → codes (row-major, h/rate × w/rate). */
  async encode(image: Float32Array, h: number, w: number): Promise<Int32Array> {
    return (await this.encodeDetailed(image, h, w)).best;
  }

  /**
   * Visits every convolution and attention block of one decode of a side×side grid in execution order, with the
   * pixel count of the map it runs on (the roofline accounting of decodeFlops / decodeBytes).
   */
  #walkDecoder(
    side: number,
    on: { conv(c: Conv, px: number): void; attn(a: AttnBlock, px: number): void },
  ): void {
    const d = this.#dec!;
    let px = side * side;
    const res = (b: ResBlock) => [b.conv1, b.conv2, ...(b.nin ? [b.nin] : [])].forEach((c) => on.conv(c, px));
    const attn = (a: AttnBlock) => {
      [a.q, a.k, a.v, a.proj].forEach((c) => on.conv(c, px));
      on.attn(a, px);
    };
    on.conv(d.convIn, px);
    res(d.mid1), attn(d.midAttn), res(d.mid2);
    for (let i = d.levels.length - 1; i >= 0; i--) {
      const lv = d.levels[i];
      lv.blocks.forEach((b, j) => {
        res(b);
        if (lv.attns[j]) attn(lv.attns[j]);
      });
      if (lv.resample) {
        px *= 4;
        on.conv(lv.resample, px);
      }
    }
    on.conv(d.convOut, px);
  }

  /** Multiply-add FLOPs of one decode of a side×side grid (convolutions 2·k²·cin·cout per pixel, attention 4·C·N²). */
  decodeFlops(side: number): number {
    let flops = 0;
    this.#walkDecoder(side, {
      conv: (c, px) => {
        const [co, ci, k] = c.w.shape;
        flops += 2 * co * ci * k * k * px;
      },
      attn: (a, px) => (flops += 4 * a.c * px * px),
    });
    return flops;
  }

  /**
   * Lower bound on the bytes one decoder pass moves (roofline use): every weight once, and each convolution reads its
   * input map and writes its output map (f32); attention adds its score matrix (written, read).
   */
  decodeBytes(side: number): number {
    let bytes = 0;
    this.#walkDecoder(side, {
      conv: (c, px) => {
        const [co, ci] = c.w.shape;
        bytes += c.w.byteLength + c.b.byteLength + 4 * (ci + co) * px;
      },
      attn: (_a, px) => (bytes += 2 * 4 * px * px),
    });
    return bytes;
  }

  /** Frees the GPU weights. */
  release(): void {
    for (const t of this.#owned.splice(0)) t.release();
    this.#enc =
      this.#dec =
      this.#proj =
      this.#codebook =
      this.#cbBlocks =
      this.#ee =
        null;
    this.#down = [];
  }
}
