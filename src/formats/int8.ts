// Weight-only int8 quantisation: the storage format of `deno task convert --weights int8` and its quantiser.
// A Linear weight [N,K] is stored as int8 codes (safetensors "I8", same name and shape) plus f32 scales
// `<name>.qscale` [N, K/G]: element (n,k) is q[n,k]·scale[n, floor(k/G)] — symmetric, absmax per group of G
// consecutive elements along K (G chosen by the converter; the loader derives it from the two shapes).
// Not a kernel: the GPU dequantises in registers (shaders/matmul.wgsl, src/kernels/matmul_windows.ts).

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
