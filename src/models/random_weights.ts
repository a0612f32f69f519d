// Seeded random weights made on the GPU (benchmarks at the published sizes: nothing is read or uploaded). A
// WeightSource over names and shapes whose tensors the loaders (load.ts) fill with src/kernels/fill.ts; `read` fills
// a temporary tensor and reads it back (for the few loaders that need host values, e.g. the VQ-VAE code norms).
// Scales keep activations tame: linear/conv weights ±√(3/fan_in), norm weights 1 ± 0.1, biases ±0.02, tables ±0.5.
import type { GpuContext } from "../gpu/context.ts";
import type { WeightInfo, WeightSource } from "../formats/weights.ts";
import { fillUniform } from "../kernels/fill.ts";

function nameSeed(seed: number, name: string): number {
  let s = seed >>> 0;
  for (let i = 0; i < name.length; i++) s = (Math.imul(s, 31) + name.charCodeAt(i)) >>> 0;
  return s;
}

/** The fill spec of one named tensor. */
export function randomSpec(
  name: string,
  shape: number[],
  seed: number,
): { seed: number; scale: number; offset: number } {
  const s = nameSeed(seed, name);
  if (shape.length === 1) {
    const norm = name.endsWith(".weight");
    return { seed: s, scale: norm ? 0.1 : 0.02, offset: norm ? 1 : 0 };
  }
  if (name.includes("embed")) return { seed: s, scale: 0.5, offset: 0 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { seed: s, scale: Math.sqrt(3 / fanIn), offset: 0 };
}

/** A WeightSource of `shapes` (all `dtype`) whose values are generated on `ctx`'s device. */
export function randomWeightSource(
  ctx: GpuContext,
  shapes: Map<string, number[]>,
  o: { origin: string; seed: number; dtype: "f16" | "f32" },
): WeightSource {
  const eb = o.dtype === "f16" ? 2 : 4;
  const info = (name: string): WeightInfo => {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`${o.origin}: no tensor ${name}`);
    return { name, dtype: o.dtype, shape, byteLength: eb * shape.reduce((a, b) => a * b, 1) };
  };
  const read = async (name: string): Promise<Uint8Array> => {
    const i = info(name);
    const t = ctx.empty(i.shape, o.dtype);
    try {
      fillUniform(ctx, t, randomSpec(name, i.shape, o.seed));
      return (await ctx.readBytes(t)).slice(0, i.byteLength);
    } finally {
      t.release();
    }
  };
  return {
    origin: o.origin,
    names: () => [...shapes.keys()],
    info,
    has: (n) => shapes.has(n),
    read,
    readRange: async (n, off, len) => (await read(n)).slice(off, off + len),
    close() {},
    randomFill: (n) => randomSpec(n, info(n).shape, o.seed),
  };
}
