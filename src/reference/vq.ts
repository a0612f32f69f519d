// Plain TypeScript twins of shaders/vq.wgsl: nearest-codebook search (float64 distances) and code lookup.
// Not the GPU's float32 rounding: near-ties can legitimately differ, and tests compare gaps accordingly.

export function vqSearchRef(
  z: Float32Array,
  e: Float32Array,
  o: { n: number; d: number },
): { best: Int32Array; second: Int32Array; dist: Float64Array; gap: Float64Array } {
  const { n, d } = o;
  const np = z.length / d;
  const best = new Int32Array(np),
    second = new Int32Array(np),
    dist = new Float64Array(np),
    gap = new Float64Array(np);
  const ee = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += e[c * d + k] ** 2;
    ee[c] = s;
  }
  for (let p = 0; p < np; p++) {
    let zz = 0;
    for (let k = 0; k < d; k++) zz += z[p * d + k] ** 2;
    let d1 = Infinity, i1 = -1, d2 = Infinity, i2 = -1;
    for (let c = 0; c < n; c++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += z[p * d + k] * e[c * d + k];
      const v = zz - 2 * dot + ee[c];
      if (v < d1) {
        d2 = d1, i2 = i1, d1 = v, i1 = c;
      } else if (v < d2) {
        d2 = v, i2 = c;
      }
    }
    best[p] = i1, second[p] = i2, dist[p] = d1, gap[p] = d2 - d1;
  }
  return { best, second, dist, gap };
}

/** [D, np] = E[codes]ᵀ. */
export function vqLookupRef(codes: ArrayLike<number>, e: Float32Array, d: number): Float32Array {
  const np = codes.length;
  const out = new Float32Array(d * np);
  for (let p = 0; p < np; p++) for (let k = 0; k < d; k++) out[k * np + p] = e[codes[p] * d + k];
  return out;
}
