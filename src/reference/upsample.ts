// Plain TypeScript twin of shaders/upsample.wgsl: nearest ×2 upsampling of [planes, h, w].
// Not a general resize.

export function upsampleNearest2xRef(
  x: Float32Array,
  o: { planes: number; h: number; w: number },
): Float32Array {
  const { planes, h, w } = o;
  const out = new Float32Array(planes * 4 * h * w);
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < 2 * h; y++) {
      for (let xx = 0; xx < 2 * w; xx++) {
        out[(c * 2 * h + y) * 2 * w + xx] = x[(c * h + (y >> 1)) * w + (xx >> 1)];
      }
    }
  }
  return out;
}
