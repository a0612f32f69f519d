// Plain TypeScript twin of shaders/conv2d.wgsl: direct 2-D convolution of one NCHW image, float64 accumulation.
// Not fast: tests and the model's CPU check use it on small sizes.

export interface Conv2dRefOptions {
  cin: number;
  h: number;
  w: number;
  cout: number;
  ks: number;
  stride?: number;
  pad?: number;
  padEnd?: number;
  bias?: Float32Array;
  resid?: Float32Array;
  upsample?: boolean;
  channelsLast?: boolean;
}

/** Returns [cout, oh, ow] (or [oh·ow, cout]) and the output size. */
export function conv2dRef(
  x: Float32Array,
  wt: Float32Array,
  o: Conv2dRefOptions,
): { out: Float32Array; oh: number; ow: number } {
  const { cin, cout, ks } = o;
  const stride = o.stride ?? 1, pad = o.pad ?? (ks - 1) / 2, padEnd = o.padEnd ?? 0;
  const up = o.upsample ? 2 : 1;
  const lh = o.h * up, lw = o.w * up;
  const oh = Math.floor((lh + 2 * pad + padEnd - ks) / stride) + 1;
  const ow = Math.floor((lw + 2 * pad + padEnd - ks) / stride) + 1;
  const out = new Float32Array(cout * oh * ow);
  for (let co = 0; co < cout; co++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = 0;
        for (let ci = 0; ci < cin; ci++) {
          for (let ky = 0; ky < ks; ky++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= lh) continue;
            for (let kx = 0; kx < ks; kx++) {
              const ix = ox * stride + kx - pad;
              if (ix < 0 || ix >= lw) continue;
              s += wt[((co * cin + ci) * ks + ky) * ks + kx] *
                x[(ci * o.h + Math.floor(iy / up)) * o.w + Math.floor(ix / up)];
            }
          }
        }
        const p = oy * ow + ox;
        const idx = o.channelsLast ? p * cout + co : co * oh * ow + p;
        out[idx] = s + (o.bias ? o.bias[co] : 0) + (o.resid ? o.resid[idx] : 0);
      }
    }
  }
  return { out, oh, ow };
}
