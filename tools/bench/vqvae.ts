// VQ-VAE benchmarks: ms per image decode (20×20 codes → 160×160, 60×60 → 480×480, compress rate 8) and per 160×160
// encode on the adapter, for the test fixture's tiny checkpoint and (full runs) a random checkpoint at icetk's real
// widths; effective GFLOP/s from the convolution/attention FLOP count, to compare with the matmul suite's peak.
// Not a quality check: weights are random or tiny (conformance covers correctness).

import type { GpuContext } from "../../src/gpu/context.ts";
import type { WeightInfo, WeightSource } from "../../src/formats/weights.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { f32ToF16Bits } from "../../src/gpu/f16.ts";
import { inferVqvaeArch, Vqvae } from "../../src/models/vqvae.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";
import { median } from "./_timing.ts";

const FIXTURE = new URL("../../tests/testdata/cogview2-tiny/icetk/ice_image.pt", import.meta.url).pathname;

/** Names and shapes of icetk's HVQVAE (load_default_HVQVAE layout) at the given widths. */
export function icetkShapes(o: { c: number; hidden: number; d: number; n: number }): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const conv = (p: string, cout: number, cin: number, k = 3) => {
    m.set(`${p}.weight`, [cout, cin, k, k]);
    m.set(`${p}.bias`, [cout]);
  };
  const norm = (p: string, c: number) => (m.set(`${p}.weight`, [c]), m.set(`${p}.bias`, [c]));
  const res = (p: string, cin: number, cout: number) => {
    norm(`${p}.norm1`, cin),
      conv(`${p}.conv1`, cout, cin),
      norm(`${p}.norm2`, cout),
      conv(`${p}.conv2`, cout, cout);
    if (cin !== cout) conv(`${p}.nin_shortcut`, cout, cin, 1);
  };
  const attn = (p: string, c: number) => {
    norm(`${p}.norm`, c);
    for (const s of ["q", "k", "v", "proj_out"]) conv(`${p}.${s}`, c, c, 1);
  };
  const mid = (
    p: string,
    c: number,
  ) => (res(`${p}.mid.block_1`, c, c), attn(`${p}.mid.attn_1`, c), res(`${p}.mid.block_2`, c, c));
  const { c, hidden, d, n } = o;
  const em = [1, 2, 4];
  conv("enc.conv_in", c, 3);
  let cin = c;
  em.forEach((mult, i) => {
    for (let j = 0; j < 2; j++) res(`enc.down.${i}.block.${j}`, j ? c * mult : cin, c * mult);
    cin = c * mult;
    if (i !== em.length - 1) conv(`enc.down.${i}.downsample.conv`, cin, cin);
  });
  mid("enc", cin);
  norm("enc.norm_out", cin);
  conv("enc.conv_out", hidden, cin);
  for (let i = 0; i < 2; i++) conv(`down_samplers.${i}.conv_down_sampler.conv`, hidden, hidden);
  conv("quantize.proj", d, hidden, 1);
  m.set("quantize.embed.weight", [n, d]);
  [[1, 1, 1, 2, 4], [1, 1, 2, 4], [1, 2, 4]].forEach((mults, k) => {
    const p = `decs.${k}`;
    let ci = c * mults[mults.length - 1];
    conv(`${p}.conv_in`, ci, d);
    mid(p, ci);
    for (let i = mults.length - 1; i >= 0; i--) {
      res(`${p}.up.${i}.block.0`, ci, c * mults[i]);
      ci = c * mults[i];
      if (k === 0 && i === 4) attn(`${p}.up.${i}.attn.0`, ci);
      if (i !== 0) conv(`${p}.up.${i}.upsample.conv`, ci, ci);
    }
    norm(`${p}.norm_out`, ci);
    conv(`${p}.conv_out`, 3, ci);
  });
  return m;
}

/** A WeightSource of random f16 values for `shapes`, generated on each read (nothing held). */
export function randomSource(shapes: Map<string, number[]>, origin: string): WeightSource {
  const gen = (name: string): Uint8Array => {
    const shape = shapes.get(name)!;
    const n = shape.reduce((a, b) => a * b, 1);
    const vals = new Float32Array(n);
    const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : shape.length === 2 ? shape[1] : 1;
    const isNormW = shape.length === 1 && name.endsWith(".weight");
    let s = 0;
    for (const ch of name) s = (s * 31 + ch.charCodeAt(0)) >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const u = s / 2 ** 32 - 0.5;
      vals[i] = isNormW
        ? 1 + 0.3 * u
        : shape.length === 1
        ? 0.2 * u
        : (2 * u * Math.sqrt(3)) / Math.sqrt(fanIn);
    }
    return new Uint8Array(f32ToF16Bits(vals).buffer);
  };
  const info = (name: string): WeightInfo => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`${origin}: no tensor ${name}`);
    return { name, dtype: "f16", shape, byteLength: 2 * shape.reduce((a, b) => a * b, 1) };
  };
  return {
    origin,
    names: () => [...shapes.keys()],
    info,
    has: (n) => shapes.has(n),
    read: (n) => Promise.resolve(gen(n)),
    readRange: (n, off, len) => Promise.resolve(gen(n).slice(off, off + len)),
    close() {},
  };
}

async function benchModel(
  ctx: GpuContext,
  label: string,
  src: WeightSource,
  report: (r: BenchResult) => void,
  o: { sides: number[]; iters: number; encode: boolean },
): Promise<void> {
  const arch = inferVqvaeArch(src);
  const t0 = performance.now();
  const m = await Vqvae.fromWeights(ctx, src, { compressRate: 8 });
  report({ name: "vqvae_load_ms", params: { model: label }, value: performance.now() - t0, unit: "ms" });
  try {
    for (const side of o.sides) {
      const codes = Int32Array.from({ length: side * side }, (_, i) => (i * 7919) % arch.nEmbed);
      await m.decode(codes, side); // warm-up: pipelines compile here
      const times: number[] = [];
      for (let i = 0; i < o.iters; i++) {
        const t = performance.now();
        await m.decode(codes, side);
        times.push(performance.now() - t);
      }
      const ms = median(times);
      const params = { model: label, codes: `${side}x${side}`, pixels: `${side * 8}x${side * 8}` };
      report({ name: "vqvae_decode_ms", params, value: ms, unit: "ms/image" });
      report({
        name: "vqvae_decode_gflops",
        params,
        value: m.decodeFlops(side) / ms / 1e6,
        unit: "GFLOP/s",
        baseline: "matmul suite peak",
      });
    }
    if (o.encode) {
      const img = Float32Array.from({ length: 3 * 160 * 160 }, (_, i) => ((i * 2654435761) % 1000) / 1000);
      await m.encode(img, 160, 160);
      const times: number[] = [];
      for (let i = 0; i < o.iters; i++) {
        const t = performance.now();
        await m.encode(img, 160, 160);
        times.push(performance.now() - t);
      }
      report({
        name: "vqvae_encode_ms",
        params: { model: label, pixels: "160x160" },
        value: median(times),
        unit: "ms/image",
      });
    }
  } finally {
    m.release();
  }
}

export const vqvaeSuite: BenchSuite = {
  name: "vqvae",
  description:
    "VQ-VAE ms per 20x20 / 60x60 decode and 160x160 encode (fixture tiny checkpoint; full runs add icetk's real widths, random f16: timed on GPUs, FLOPs only on CPU adapters)",
  async run(ctx, report, { quick }) {
    const tiny = await openTorchCheckpoint(FIXTURE);
    try {
      await benchModel(ctx, "fixture-tiny", tiny, report, {
        sides: quick ? [20] : [20, 60],
        iters: quick ? 1 : 3,
        encode: !quick,
      });
    } finally {
      tiny.close();
    }
    if (!quick) {
      const full = randomSource(
        icetkShapes({ c: 128, hidden: 256, d: 256, n: 20000 }),
        "random icetk widths",
      );
      if (ctx.gpu.isFallback) {
        // A CPU adapter runs a real-width decode at well under 1 GFLOP/s (20×20 took minutes on lavapipe): report
        // the work per image instead of timing it.
        const m = await Vqvae.fromWeights(ctx, full, { compressRate: 8 });
        try {
          for (const side of [20, 60]) {
            report({
              name: "vqvae_decode_gflop",
              params: { model: "icetk-widths", codes: `${side}x${side}`, timed: false },
              value: m.decodeFlops(side) / 1e9,
              unit: "GFLOP/image",
            });
          }
        } finally {
          m.release();
        }
      } else {
        await benchModel(ctx, "icetk-widths-random-f16", full, report, {
          sides: [20, 60],
          iters: 3,
          encode: true,
        });
      }
    }
  },
};
