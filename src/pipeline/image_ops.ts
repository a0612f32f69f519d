// Small CPU image operations on planar [C, H, W] float images with torch's index conventions (completion needs them).
// Not an image library: no colour management, no antialiasing; codecs and the bilinear resize live in
// src/formats/image.ts.

/** torch F.interpolate(mode="nearest"): source index floor(dst · in / out). */
export function resizeNearestChw(
  src: Float32Array,
  dims: { c: number; h: number; w: number },
  outH: number,
  outW: number,
): Float32Array {
  const { c, h, w } = dims;
  const out = new Float32Array(c * outH * outW);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < outH; y++) {
      const sy = Math.min(h - 1, Math.floor(y * h / outH));
      for (let x = 0; x < outW; x++) {
        const sx = Math.min(w - 1, Math.floor(x * w / outW));
        out[(ch * outH + y) * outW + x] = src[(ch * h + sy) * w + sx];
      }
    }
  }
  return out;
}

/** Rows [y0, y1) and columns [x0, x1) of a [C, H, W] image. */
export function cropChw(
  src: Float32Array,
  dims: { c: number; h: number; w: number },
  box: { y0: number; x0: number; y1: number; x1: number },
): Float32Array {
  const { c, h, w } = dims;
  const oh = box.y1 - box.y0, ow = box.x1 - box.x0;
  if (box.y0 < 0 || box.x0 < 0 || box.y1 > h || box.x1 > w || oh <= 0 || ow <= 0) {
    throw new Error(`cropChw: box ${JSON.stringify(box)} is outside the ${h}×${w} image`);
  }
  const out = new Float32Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < oh; y++) {
      const s = (ch * h + box.y0 + y) * w + box.x0;
      out.set(src.subarray(s, s + ow), (ch * oh + y) * ow);
    }
  }
  return out;
}
