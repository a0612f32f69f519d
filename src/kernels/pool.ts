// Launcher for 2×2 stride-2 average pooling (shaders/pool.wgsl) of NCHW f32 planes.
// Not general pooling: the encoder's ResidualDownSample needs exactly F.avg_pool2d(x, 2, 2).

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

/** [planes, h, w] → [planes, ⌊h/2⌋, ⌊w/2⌋]. */
export function avgPool2x2(
  ctx: GpuContext,
  x: Tensor,
  o: { planes: number; h: number; w: number; out?: Tensor },
): Tensor {
  check(x.dtype === "f32", "avgPool2x2", () => `input must be f32, got ${x.dtype}`);
  check(
    x.size === o.planes * o.h * o.w,
    "avgPool2x2",
    () => `input [${x.shape}] is not ${o.planes}x${o.h}x${o.w}`,
  );
  const oh = Math.floor(o.h / 2), ow = Math.floor(o.w / 2);
  const out = o.out ?? ctx.empty([o.planes, oh, ow], "f32");
  const k = ctx.kernel({ name: "avg_pool2x2", shader: "pool.wgsl", bindings: ["read", "write"] });
  if (x.byteLength <= ctx.maxBinding && out.byteLength <= ctx.maxBinding) {
    ctx.dispatch(k, [o.planes, o.h, o.w, 0, 0], [x, out], grid1d(out.size, 256));
    return out;
  }
  // Maps above the max storage binding: blocks of whole planes, each bound as aligned views of x and out.
  const span = Math.floor(ctx.maxBinding / 4) - ctx.gpu.limits.minStorageBufferOffsetAlignment / 4;
  const pb = Math.floor(span / (o.h * o.w));
  check(
    pb >= 1,
    "avgPool2x2",
    () => `one ${o.h}x${o.w} plane exceeds the max storage binding (${ctx.maxBinding} bytes)`,
  );
  for (let p0 = 0; p0 < o.planes; p0 += pb) {
    const n = Math.min(pb, o.planes - p0);
    const xv = ctx.alignedView(x, p0 * o.h * o.w, (p0 + n) * o.h * o.w);
    const ov = ctx.alignedView(out, p0 * oh * ow, (p0 + n) * oh * ow);
    ctx.dispatch(k, [n, o.h, o.w, xv.off, ov.off], [xv.t, ov.t], grid1d(n * oh * ow, 256));
  }
  return out;
}
