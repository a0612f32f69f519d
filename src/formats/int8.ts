// Weight-only int8 quantisation: the storage format of `deno task convert --weights int8` and its quantiser.
// A Linear weight [N,K] is stored as int8 codes (safetensors "I8", same name and shape) plus f32 scales
// `<name>.qscale` [N, K/G]: element (n,k) is q[n,k]·scale[n, floor(k/G)] — symmetric, absmax per group of G
// consecutive elements along K (G chosen by the converter; the loader derives it from the two shapes).
// Not a kernel: the GPU dequantises in registers (shaders/matmul.wgsl, src/kernels/matmul_windows.ts).
import type { WeightDType, WeightInfo, WeightSource } from "./weights.ts";

/** Suffix of the scales tensor that accompanies an int8 weight. */
export const QSCALE_SUFFIX = ".qscale";

/** The default group: the one the conversion uses when K allows (chosen by measurement, see README). */
export const DEFAULT_GROUP = 64;

/**
 * The group used for a row of K elements: `want` when it divides K, else the largest power of two >= 16 below it
 * that does, or null when none does (the tensor then stays floating point).
 */
export function groupFor(K: number, want: number = DEFAULT_GROUP): number | null {
  for (let g = want; g >= 16; g /= 2) if (K % g === 0) return g;
  return null;
}

/**
 * Quantises `rows` rows of K values (row-major) with symmetric absmax groups of `group` along K:
 * scale = max|w| / 127 (0 for an all-zero group), q = round(w / scale) clamped to ±127.
 */
export function quantizeInt8(
  w: ArrayLike<number>,
  K: number,
  group: number,
): { q: Int8Array; scales: Float32Array } {
  if (K % group) throw new Error(`int8: K=${K} is not a multiple of the group ${group}`);
  if (w.length % K) throw new Error(`int8: ${w.length} values are not whole rows of ${K}`);
  const q = new Int8Array(w.length);
  const scales = new Float32Array(w.length / group);
  for (let g = 0; g < scales.length; g++) {
    const o = g * group;
    let m = 0;
    for (let i = 0; i < group; i++) m = Math.max(m, Math.abs(w[o + i]));
    if (!Number.isFinite(m)) throw new Error(`int8: group ${g} holds a non-finite value`);
    const s = Math.fround(m / 127);
    scales[g] = s;
    if (s === 0) continue;
    for (let i = 0; i < group; i++) q[o + i] = Math.max(-127, Math.min(127, Math.round(w[o + i] / s)));
  }
  return { q, scales };
}

/**
 * Whether the int8 conversion quantises a tensor: 2-D `*.weight` matrices of linear layers whose K has a group
 * (embedding tables, read by row, stay floating point, as do norms, biases and convolutions).
 */
export function isInt8Candidate(name: string, shape: readonly number[], group = DEFAULT_GROUP): boolean {
  return shape.length === 2 && name.endsWith(".weight") && !/embedding/i.test(name) &&
    groupFor(shape[1], group) !== null;
}

/** Floats of a little-endian f16/bf16/f32 tensor. */
export function floatsOf(bytes: Uint8Array, dtype: WeightDType): Float32Array {
  const b = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (dtype === "f32") return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  const u16 = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  if (dtype === "f16") return Float32Array.from(new Float16Array(u16.buffer, u16.byteOffset, u16.length));
  if (dtype === "bf16") return new Float32Array(Uint32Array.from(u16, (x) => x << 16).buffer);
  throw new Error(`int8: cannot read ${dtype} as floats`);
}

/**
 * A view of `src` with its linear weights quantised (int8 codes + `<name>.qscale`, the layout the conversion
 * writes), or with `dequantized` the same weights as f32 after the round trip (the unquantised path on the same
 * values, for tests and quality reports). In memory, tensor by tensor on first read: for synthetic and small models.
 */
export function quantizedSource(
  src: WeightSource,
  o: { group?: number; dequantized?: boolean } = {},
): WeightSource {
  const want = o.group ?? DEFAULT_GROUP;
  const cache = new Map<string, { info: WeightInfo; bytes: Uint8Array }>();
  const names: string[] = [];
  const plan = new Map<string, { base: string; part: "q" | "s" | "deq"; group: number }>();
  for (const n of src.names()) {
    const info = src.info(n);
    names.push(n);
    if (!isInt8Candidate(n, info.shape, want) || !["f16", "bf16", "f32"].includes(info.dtype)) continue;
    const group = groupFor(info.shape[1], want)!;
    if (o.dequantized) plan.set(n, { base: n, part: "deq", group });
    else {
      plan.set(n, { base: n, part: "q", group });
      plan.set(n + QSCALE_SUFFIX, { base: n, part: "s", group });
      names.push(n + QSCALE_SUFFIX);
    }
  }
  const info = (name: string): WeightInfo => {
    const p = plan.get(name);
    if (!p) return src.info(name);
    const [N, K] = src.info(p.base).shape;
    if (p.part === "q") return { name, dtype: "i8", shape: [N, K], byteLength: N * K };
    if (p.part === "s") {
      return { name, dtype: "f32", shape: [N, K / p.group], byteLength: 4 * N * K / p.group };
    }
    return { name, dtype: "f32", shape: [N, K], byteLength: 4 * N * K };
  };
  const read = async (name: string): Promise<Uint8Array> => {
    const p = plan.get(name);
    if (!p) return await src.read(name);
    const hit = cache.get(name);
    if (hit) return hit.bytes;
    const base = src.info(p.base);
    const { q, scales } = quantizeInt8(floatsOf(await src.read(p.base), base.dtype), base.shape[1], p.group);
    let bytes: Uint8Array;
    if (p.part === "q") bytes = new Uint8Array(q.buffer);
    else if (p.part === "s") bytes = new Uint8Array(scales.buffer);
    else {
      const w = new Float32Array(q.length);
      for (let i = 0; i < q.length; i++) w[i] = q[i] * scales[Math.floor(i / p.group)];
      bytes = new Uint8Array(w.buffer);
    }
    cache.set(name, { info: info(name), bytes });
    return bytes;
  };
  return {
    origin: `${src.origin} (${o.dequantized ? "int8 round trip as f32" : "int8"}, group ${want})`,
    names: () => [...names],
    info,
    has: (name) => plan.has(name) || src.has(name),
    read,
    readRange: async (name, off, len) => (await read(name)).subarray(off, off + len),
    close: () => src.close(),
  };
}
