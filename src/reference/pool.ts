// Plain TypeScript twin of shaders/pool.wgsl: 2×2 stride-2 average pooling of [planes, h, w].
// Not general pooling.

export function avgPool2x2Ref(x: Float32Array, o: { planes: number; h: number; w: number }): Float32Array {
  const { planes, h, w } = o;
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
  const out = new Float32Array(planes * oh * ow);
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < oh; y++) {
      for (let xx = 0; xx < ow; xx++) {
        const b = c * h * w + 2 * y * w + 2 * xx;
        out[(c * oh + y) * ow + xx] = (x[b] + x[b + 1] + x[b + w] + x[b + w + 1]) / 4;
      }
    }
  }
  return out;
}
