// CPU twin of shaders/fill.wgsl (src/kernels/fill.ts): seeded uniform values, f32 arithmetic.

/** Values are offset + scale·u, u uniform in [−1, 1) (src/kernels/fill.ts FillSpec). */
export interface FillSpec {
  seed: number;
  scale: number;
  offset: number;
}

function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** Elements base .. base + n − 1 of the seeded uniform tensor (as f32; the kernel's f16 variant rounds these). */
export function fillUniformRef(n: number, spec: FillSpec, base = 0): Float32Array {
  const key = lowbias32(spec.seed >>> 0);
  const out = new Float32Array(n);
  const s = Math.fround(spec.scale), o = Math.fround(spec.offset);
  for (let i = 0; i < n; i++) {
    const h = lowbias32((base + i + key) >>> 0);
    const u = (h >>> 8) / 8388608 - 1; // exact in f32
    out[i] = Math.fround(o + Math.fround(s * u));
  }
  return out;
}
