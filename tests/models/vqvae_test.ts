// The VQ-VAE model on the GPU against a CPU forward (the kernels' CPU twins) on a small random icetk-shaped
// checkpoint held in memory: 2 levels, attention inside a decoder level, nin shortcuts, f16 and f32 storage.
import assert from "node:assert/strict";
import type { WeightInfo, WeightSource } from "../../src/formats/weights.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { ICETK_MEAN, ICETK_STD, inferVqvaeArch, inferVqvaeConfig, Vqvae } from "../../src/models/vqvae.ts";
import { conv2dRef } from "../../src/reference/conv2d.ts";
import { groupNormRef } from "../../src/reference/group_norm.ts";
import { spatialAttentionRef } from "../../src/reference/spatial_attention.ts";
import { avgPool2x2Ref } from "../../src/reference/pool.ts";
import { vqLookupRef, vqSearchRef } from "../../src/reference/vq.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

type Dict = Map<string, { shape: number[]; data: Float32Array }>;

/** icetk-shaped state dict: enc (mults [1,2], 1 block), 1 down sampler, decs.0 (×4, attn in up.2), decs.1 (×2). */
function makeCheckpoint(seed: number, o: { c: number; hidden: number; d: number; n: number }): Dict {
  const m: Dict = new Map();
  let s = seed;
  const conv = (name: string, cout: number, cin: number, k = 3) => {
    const std = 1 / Math.sqrt(cin * k * k);
    m.set(`${name}.weight`, { shape: [cout, cin, k, k], data: randn(cout * cin * k * k, ++s, std) });
    m.set(`${name}.bias`, { shape: [cout], data: randn(cout, ++s, 0.1) });
  };
  const norm = (name: string, c: number) => {
    m.set(`${name}.weight`, { shape: [c], data: randn(c, ++s, 0.15).map((v) => 1 + v) });
    m.set(`${name}.bias`, { shape: [c], data: randn(c, ++s, 0.1) });
  };
  const res = (name: string, cin: number, cout: number) => {
    norm(`${name}.norm1`, cin);
    conv(`${name}.conv1`, cout, cin);
    norm(`${name}.norm2`, cout);
    conv(`${name}.conv2`, cout, cout);
    if (cin !== cout) conv(`${name}.nin_shortcut`, cout, cin, 1);
  };
  const attn = (name: string, c: number) => {
    norm(`${name}.norm`, c);
    for (const p of ["q", "k", "v", "proj_out"]) conv(`${name}.${p}`, c, c, 1);
  };
  const mid = (p: string, c: number) => {
    res(`${p}.mid.block_1`, c, c);
    attn(`${p}.mid.attn_1`, c);
    res(`${p}.mid.block_2`, c, c);
  };
  const { c, hidden, d, n } = o;
  conv("enc.conv_in", c, 3);
  res("enc.down.0.block.0", c, c);
  conv("enc.down.0.downsample.conv", c, c);
  res("enc.down.1.block.0", c, 2 * c);
  mid("enc", 2 * c);
  norm("enc.norm_out", 2 * c);
  conv("enc.conv_out", hidden, 2 * c);
  conv("down_samplers.0.conv_down_sampler.conv", hidden, hidden);
  conv("quantize.proj", d, hidden, 1);
  m.set("quantize.embed.weight", { shape: [n, d], data: randn(n * d, ++s, 0.6) });
  m.set("quantize.embed_avg", { shape: [n, d], data: randn(n * d, ++s) });
  m.set("quantize.cluster_size", { shape: [n], data: randn(n, ++s) });
  // decs.0: mults [1, 1, 2] (×4); decs.1: mults [1, 2] (×2).
  for (const [k, mults] of [[0, [1, 1, 2]], [1, [1, 2]]] as const) {
    const p = `decs.${k}`;
    let cin = c * mults[mults.length - 1];
    conv(`${p}.conv_in`, cin, d);
    mid(p, cin);
    for (let i = mults.length - 1; i >= 0; i--) {
      res(`${p}.up.${i}.block.0`, cin, c * mults[i]);
      cin = c * mults[i];
      if (k === 0 && i === 2) attn(`${p}.up.${i}.attn.0`, cin);
      if (i !== 0) conv(`${p}.up.${i}.upsample.conv`, cin, cin);
    }
    norm(`${p}.norm_out`, cin);
    conv(`${p}.conv_out`, 3, cin);
  }
  return m;
}

/** A WeightSource over the dict, storing each tensor as f16 or f32 (values rounded to what is stored). */
function source(dict: Dict, dtype: "f16" | "f32"): WeightSource {
  const bytes = new Map<string, Uint8Array>();
  for (const [k, v] of dict) {
    if (dtype === "f16") {
      const bits = f32ToF16Bits(v.data);
      v.data = f16BitsToF32(bits);
      bytes.set(k, new Uint8Array(bits.buffer));
    } else bytes.set(k, new Uint8Array(v.data.slice().buffer));
  }
  const info = (name: string): WeightInfo => {
    const v = dict.get(name);
    if (!v) throw new Error(`memory: no tensor ${name}`);
    return { name, dtype, shape: v.shape, byteLength: bytes.get(name)!.length };
  };
  return {
    origin: "memory",
    names: () => [...dict.keys()],
    info,
    has: (n) => dict.has(n),
    read: (n) => Promise.resolve(bytes.get(n)!.slice()),
    readRange: (n, off, len) => Promise.resolve(bytes.get(n)!.slice(off, off + len)),
    close() {},
  };
}

/** CPU forward of the same checkpoint (float64 accumulation in each twin). */
class CpuVqvae {
  constructor(readonly m: Dict) {}
  t(n: string) {
    const v = this.m.get(n);
    if (!v) throw new Error(`cpu: no ${n}`);
    return v.data;
  }
  has(n: string) {
    return this.m.has(n);
  }
  conv(
    x: Float32Array,
    p: string,
    h: number,
    w: number,
    o: { stride?: number; pad?: number; padEnd?: number; upsample?: boolean; resid?: Float32Array } = {},
  ) {
    const [cout, cin, ks] = this.m.get(`${p}.weight`)!.shape;
    return conv2dRef(x, this.t(`${p}.weight`), { cin, cout, ks, h, w, bias: this.t(`${p}.bias`), ...o });
  }
  gn(x: Float32Array, p: string, silu: boolean) {
    const g = this.t(`${p}.weight`);
    return groupNormRef(x, g, this.t(`${p}.bias`), { c: g.length, silu });
  }
  res(x: Float32Array, p: string, h: number, w: number) {
    let t = this.conv(this.gn(x, `${p}.norm1`, true), `${p}.conv1`, h, w).out;
    const skip = this.has(`${p}.nin_shortcut.weight`) ? this.conv(x, `${p}.nin_shortcut`, h, w).out : x;
    t = this.conv(this.gn(t, `${p}.norm2`, true), `${p}.conv2`, h, w, { resid: skip }).out;
    return t;
  }
  attn(x: Float32Array, p: string, h: number, w: number) {
    const n = this.gn(x, `${p}.norm`, false);
    const [q, k, v] = ["q", "k", "v"].map((s) => this.conv(n, `${p}.${s}`, h, w).out);
    const c = x.length / (h * w);
    const a = spatialAttentionRef(q, k, v, { c, n: h * w });
    return this.conv(a, `${p}.proj_out`, h, w, { resid: x }).out;
  }
  decode(codes: Int32Array, side: number, dec: number): Float32Array {
    const e = this.t("quantize.embed.weight");
    const d = this.m.get("quantize.embed.weight")!.shape[1];
    const p = `decs.${dec}`;
    let h = side, w = side;
    let x: Float32Array = this.conv(vqLookupRef(codes, e, d), `${p}.conv_in`, h, w).out;
    x = this.res(x, `${p}.mid.block_1`, h, w);
    x = this.attn(x, `${p}.mid.attn_1`, h, w);
    x = this.res(x, `${p}.mid.block_2`, h, w);
    for (let i = 3; i >= 0; i--) {
      if (!this.has(`${p}.up.${i}.block.0.conv1.weight`)) continue;
      x = this.res(x, `${p}.up.${i}.block.0`, h, w);
      if (this.has(`${p}.up.${i}.attn.0.q.weight`)) x = this.attn(x, `${p}.up.${i}.attn.0`, h, w);
      if (this.has(`${p}.up.${i}.upsample.conv.weight`)) {
        x = this.conv(x, `${p}.up.${i}.upsample.conv`, h, w, { upsample: true }).out;
        h *= 2, w *= 2;
      }
    }
    x = this.conv(this.gn(x, `${p}.norm_out`, true), `${p}.conv_out`, h, w).out;
    const plane = h * w;
    return x.map((v, i) => v * ICETK_STD[Math.floor(i / plane)] + ICETK_MEAN[Math.floor(i / plane)]);
  }
  encodeZe(img: Float32Array, h: number, w: number, level: number): Float32Array {
    const plane = h * w;
    let x: Float32Array = img.map((v, i) =>
      (v - ICETK_MEAN[Math.floor(i / plane)]) / ICETK_STD[Math.floor(i / plane)]
    );
    x = this.conv(x, "enc.conv_in", h, w).out;
    x = this.res(x, "enc.down.0.block.0", h, w);
    let r = this.conv(x, "enc.down.0.downsample.conv", h, w, { stride: 2, pad: 0, padEnd: 1 });
    x = r.out, h = r.oh, w = r.ow;
    x = this.res(x, "enc.down.1.block.0", h, w);
    x = this.res(x, "enc.mid.block_1", h, w);
    x = this.attn(x, "enc.mid.attn_1", h, w);
    x = this.res(x, "enc.mid.block_2", h, w);
    x = this.conv(this.gn(x, "enc.norm_out", true), "enc.conv_out", h, w).out;
    for (let l = 0; l < level; l++) {
      const pooled = avgPool2x2Ref(x, { planes: x.length / (h * w), h, w });
      r = this.conv(x, `down_samplers.${l}.conv_down_sampler.conv`, h, w, {
        stride: 2,
        pad: 0,
        padEnd: 1,
        resid: pooled,
      });
      x = r.out, h = r.oh, w = r.ow;
    }
    const [cout, cin] = this.m.get("quantize.proj.weight")!.shape;
    return conv2dRef(x, this.t("quantize.proj.weight"), {
      cin,
      cout,
      ks: 1,
      h,
      w,
      bias: this.t("quantize.proj.bias"),
      channelsLast: true,
    }).out;
  }
}

const SIZES = { c: 32, hidden: 32, d: 16, n: 37 };

Deno.test("vqvae: architecture and config.json section are read from names and shapes", () => {
  const src = source(makeCheckpoint(1, SIZES), "f32");
  const a = inferVqvaeArch(src);
  assert.deepEqual(a, {
    encChannels: 32,
    encLevels: [32, 64],
    encBlocks: 1,
    encFactor: 2,
    hidden: 32,
    embedDim: 16,
    nEmbed: 37,
    decChannels: 32,
    decoders: 2,
    decFactors: [4, 2],
    downSamplers: 1,
  });
  assert.deepEqual(inferVqvaeConfig(src), {
    n_embed: 37,
    enc_channels: 32,
    dec_channels: 32,
    hidden_dim: 32,
    embedding_dim: 16,
    levels: 2,
    compress_rates: [2, 4],
  });
});

Deno.test("vqvae: the fixture's ice_image.pt reads as icetk's 3-level HVQVAE at the README's widths", async () => {
  const src = await openTorchCheckpoint(
    new URL("../testdata/cogview2-tiny/icetk/ice_image.pt", import.meta.url).pathname,
  );
  try {
    const a = inferVqvaeArch(src);
    assert.deepEqual(
      [a.encChannels, a.encLevels, a.encBlocks, a.encFactor, a.hidden, a.embedDim, a.nEmbed, a.decChannels],
      [32, [32, 64, 128], 2, 4, 64, 48, 20000, 32],
    );
    assert.deepEqual([a.decoders, a.decFactors, a.downSamplers], [3, [16, 8, 4], 2]);
    assert.deepEqual(inferVqvaeConfig(src).compress_rates, [4, 8, 16]);
  } finally {
    src.close();
  }
});

// Both storages (#14): the f32 checkpoint's random values are not f16-representable, so a path that narrowed f32
// weights would miss the CPU forward (which uses the exact f32 values). The f32 case takes ~30 s on lavapipe.
for (const dtype of ["f16", "f32"] as const) {
  Deno.test(`vqvae (${dtype} weights): decode and encode match the CPU forward at both compress rates`, async () => {
    const ctx = await sharedContext();
    const dict = makeCheckpoint(dtype === "f16" ? 11 : 23, SIZES);
    const src = source(dict, dtype);
    const cpu = new CpuVqvae(dict);
    for (const [rate, dec, level] of [[4, 0, 1], [2, 1, 0]]) {
      const m = await Vqvae.fromWeights(ctx, src, { compressRate: rate });
      try {
        assert.equal(m.rate, rate);
        // Decode: a square grid of odd side.
        const side = 3;
        const r = rng(rate);
        const codes = Int32Array.from({ length: side * side }, () => Math.floor(r() * SIZES.n));
        const got = await m.decode(codes, side);
        const want = cpu.decode(codes, side, dec);
        assert.equal(got.length, 3 * (side * rate) ** 2);
        assertClose(`decode rate ${rate}`, got, want, { atol: 2e-4, rtol: 2e-4 });
        // Encode a 4·rate × 3·rate image (non-square), values in [0, 1].
        const h = 4 * rate, w = 3 * rate;
        const img = Float32Array.from({ length: 3 * h * w }, () => r());
        const enc = await m.encodeDetailed(img, h, w);
        assert.deepEqual([enc.h, enc.w], [4, 3]);
        const ze = cpu.encodeZe(img, h, w, level);
        assertClose(`z_e rate ${rate}`, enc.ze, ze, { atol: 2e-4, rtol: 2e-4 });
        const ref = vqSearchRef(ze, dict.get("quantize.embed.weight")!.data, { n: SIZES.n, d: SIZES.d });
        for (let p = 0; p < ref.best.length; p++) {
          const ok = enc.best[p] === ref.best[p] || (ref.gap[p] < 1e-3 && enc.best[p] === ref.second[p]);
          assert.ok(
            ok,
            `rate ${rate} position ${p}: code ${enc.best[p]}, CPU ${ref.best[p]} (gap ${ref.gap[p]})`,
          );
        }
        assert.deepEqual(await m.encode(img, h, w), enc.best);
        // The search kernel (vq.wgsl) agrees with the matmul search.
        const viaKernel = await m.encodeDetailed(img, h, w, { search: "kernel" });
        assert.deepEqual(viaKernel.best, enc.best);
        assertClose(`gap rate ${rate}`, viaKernel.gap, enc.gap, { atol: 1e-4, rtol: 1e-4 });
      } finally {
        m.release();
      }
    }
  });
}

// Issue #14: every map above a lowered max storage binding. 160 KiB: the 32-channel maps of the 44x44 decode and the
// 48x40 encode (245-248 KB), the f16 codebook (6000 x 16: 192 KB) and the image do not fit; one output row with its
// input halo does, and so does the windows schedule's smallest packed block (139 KB). Conv row bands, group-norm
// pieces, the codebook's row blocks in the matmul search, all against the CPU forward.
Deno.test("vqvae: decode and encode at a 160 KiB max storage binding match the CPU forward", async () => {
  const shared = await sharedContext();
  const limit = 160 * 1024;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  const sizes = { c: 32, hidden: 32, d: 16, n: 6000 };
  const dict = makeCheckpoint(31, sizes);
  const src = source(dict, "f16");
  const cpu = new CpuVqvae(dict);
  const m = await Vqvae.fromWeights(ctx, src, { compressRate: 4 });
  try {
    const side = 11, r = rng(7);
    assert.ok(sizes.c * (side * 4) ** 2 * 4 > limit && sizes.n * sizes.d * 2 > limit);
    const codes = Int32Array.from({ length: side * side }, () => Math.floor(r() * sizes.n));
    assertClose("decode at 160 KiB", await m.decode(codes, side), cpu.decode(codes, side, 0), {
      atol: 2e-4,
      rtol: 2e-4,
    });
    const h = 48, w = 40;
    const img = Float32Array.from({ length: 3 * h * w }, () => r());
    const enc = await m.encodeDetailed(img, h, w);
    const ze = cpu.encodeZe(img, h, w, 1);
    assertClose("z_e at 160 KiB", enc.ze, ze, { atol: 2e-4, rtol: 2e-4 });
    const ref = vqSearchRef(ze, dict.get("quantize.embed.weight")!.data, { n: sizes.n, d: sizes.d });
    for (let p = 0; p < ref.best.length; p++) {
      const ok = enc.best[p] === ref.best[p] || (ref.gap[p] < 1e-3 && enc.best[p] === ref.second[p]);
      assert.ok(ok, `position ${p}: code ${enc.best[p]}, CPU ${ref.best[p]} (gap ${ref.gap[p]})`);
    }
  } finally {
    m.release();
  }
});

Deno.test("vqvae: bad inputs and checkpoints give named errors", async () => {
  const ctx = await sharedContext();
  const dict = makeCheckpoint(5, SIZES);
  const m = await Vqvae.fromWeights(ctx, source(dict, "f32"), { compressRate: 4 });
  try {
    await assert.rejects(m.decode(new Int32Array(10), 3), /10 codes do not form a 3x3 grid/);
    await assert.rejects(
      m.decode(Int32Array.from({ length: 4 }, (_, i) => i * 20), 2),
      /code 40 at position 2 is outside \[0, 37\)/,
    );
    await assert.rejects(
      m.encode(new Float32Array(3 * 10 * 8), 10, 8),
      /not a multiple of the compress rate 4/,
    );
    await assert.rejects(m.encode(new Float32Array(5), 8, 8), /expected 3x8x8/);
  } finally {
    m.release();
  }
  await assert.rejects(
    Vqvae.fromWeights(ctx, source(makeCheckpoint(5, SIZES), "f32"), { compressRate: 8 }),
    /compressRate 8 is not supported by memory \(rates: 2, 4\)/,
  );
  const broken = makeCheckpoint(6, SIZES);
  broken.delete("quantize.proj.weight");
  await assert.rejects(
    Vqvae.fromWeights(ctx, source(broken, "f32")),
    /memory: missing tensor quantize\.proj\.weight/,
  );
});
