// The project's seeded random generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11), counter-based, so the GPU and this TypeScript mirror produce the same bits for the same
// (key, counter) without any state. shaders/sampling_rng.wgsl is the WGSL twin, word for word.
// Not torch's generator: same seed → same tokens within this project, never the original's tokens.
//
// Keying used by the samplers (src/sampling/strategy.ts):
//   key     = (seed, seedHi)                 — the job seed (a u32; seedHi = 0 unless a 64-bit seed is given)
//   counter = (row, step, stream, 0)         — row = global row id (e.g. b·3600 + position), step = decoding step /
//                                              LoPAR round, stream = which sampler (STREAM_*)
//   outputs: word 0 → the cluster draw, word 1 → the token draw (uniform floats in [0, 1) with 24 bits).

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** Streams that keep samplers apart when they share (seed, step, row). */
export const STREAM_COGLM = 1;
export const STREAM_DSR = 2;
export const STREAM_TOPK = 3;

/** High 32 bits of the 64-bit product of two u32 (exact, via 16-bit halves; the WGSL twin does the same). */
export function mulhi32(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 of counter (c0..c3) under key (k0, k1): four u32 words. */
export function philox4x32(
  k0: number,
  k1: number,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let a = k0 >>> 0, b = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, x0), lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi32(M1, x2), lo1 = Math.imul(M1, x2) >>> 0;
    const n0 = (hi1 ^ x1 ^ a) >>> 0;
    const n2 = (hi0 ^ x3 ^ b) >>> 0;
    x0 = n0;
    x1 = lo1;
    x2 = n2;
    x3 = lo0;
    a = (a + W0) >>> 0;
    b = (b + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

/** A u32 word as a uniform float in [0, 1): its top 24 bits / 2^24 (exact in f32, identical on the GPU). */
export function toUniform(word: number): number {
  return (word >>> 8) / 16777216;
}

/** The key words of a job seed: any integer in [0, 2^53) (the low and high 32 bits). */
export function seedKey(seed: number): [number, number] {
  if (!Number.isInteger(seed) || seed < 0) {
    throw new Error(`Seed must be a non-negative integer, got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** The two uniforms a sampler uses for (seed, step, row, stream): [cluster draw, token draw]. */
export function samplerUniforms(seed: number, step: number, row: number, stream: number): [number, number] {
  const [k0, k1] = seedKey(seed);
  const w = philox4x32(k0, k1, row, step, stream, 0);
  return [toUniform(w[0]), toUniform(w[1])];
}
