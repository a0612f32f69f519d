// Seeded random weights made on the GPU (benchmarks at the published sizes: nothing is read or uploaded). A
// WeightSource over names and shapes whose tensors the loaders (load.ts) fill with src/kernels/fill.ts; `read` fills
// a temporary tensor and reads it back (for the few loaders that need host values, e.g. the VQ-VAE code norms).
// Scales keep activations tame: linear/conv weights ±√(3/fan_in), norm weights 1 ± 0.1, biases ±0.02, tables ±0.5.
import type { GpuContext } from "../gpu/context.ts";
import type { WeightInfo, WeightSource } from "../formats/weights.ts";
import { fillUniform } from "../kernels/fill.ts";
import { DEFAULT_GROUP, groupFor, isInt8Candidate, QSCALE_SUFFIX } from "../formats/int8.ts";

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

/**
 * A WeightSource of `shapes` (all `dtype`) whose values are generated on `ctx`'s device. "int8": the layout of
 * `convert --weights int8` (linear weights as int8 codes + `<name>.qscale` scales, group 64, the same ±√(3/fan_in)
 * range; every other tensor f16).
 */
export function randomWeightSource(
  ctx: GpuContext,
  shapes: Map<string, number[]>,
  o: { origin: string; seed: number; dtype: "f16" | "f32" | "int8" },
): WeightSource {
  const all = new Map(shapes);
  const scalesOf = new Map<string, { base: string; group: number }>();
  if (o.dtype === "int8") {
    for (const [n, shape] of shapes) {
      if (!isInt8Candidate(n, shape)) continue;
      const group = groupFor(shape[1], DEFAULT_GROUP)!;
      all.set(n + QSCALE_SUFFIX, [shape[0], shape[1] / group]);
      scalesOf.set(n + QSCALE_SUFFIX, { base: n, group });
    }
  }
  const dtypeOf = (name: string) =>
    o.dtype !== "int8"
      ? o.dtype
      : scalesOf.has(name)
      ? "f32"
      : scalesOf.has(name + QSCALE_SUFFIX)
      ? "i8"
      : "f16";
  const info = (name: string): WeightInfo => {
    const shape = all.get(name);
    if (!shape) throw new Error(`${o.origin}: no tensor ${name}`);
    const dtype = dtypeOf(name);
    const eb = dtype === "f16" ? 2 : dtype === "i8" ? 1 : 4;
    return { name, dtype, shape, byteLength: eb * shape.reduce((a, b) => a * b, 1) };
  };
  /** int8: codes uniform in ±127 and a constant scale, so the weights span the same range as the float ones. */
  const spec = (name: string) => {
    const sc = scalesOf.get(name);
    if (sc) {
      const base = randomSpec(sc.base, shapes.get(sc.base)!, o.seed);
      return { seed: base.seed, scale: 0, offset: base.scale / 127 };
    }
    const s = randomSpec(name, all.get(name)!, o.seed);
    return dtypeOf(name) === "i8" ? { seed: s.seed, scale: 127, offset: 0 } : s;
  };
  const read = async (name: string): Promise<Uint8Array> => {
    const i = info(name);
    const t = ctx.empty(i.shape, i.dtype as "f16" | "f32" | "i8");
    try {
      fillUniform(ctx, t, spec(name));
      return (await ctx.readBytes(t)).slice(0, i.byteLength);
    } finally {
      t.release();
    }
  };
  return {
    origin: o.origin,
    names: () => [...all.keys()],
    info,
    has: (n) => all.has(n),
    read,
    readRange: async (n, off, len) => (await read(n)).slice(off, off + len),
    close() {},
    randomFill: (n) => (info(n), spec(n)),
  };
}
