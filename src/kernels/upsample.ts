// Launcher for nearest ×2 upsampling (shaders/upsample.wgsl) of NCHW f32 planes.
// Not used by the decoder's hot path (conv2d fuses it); kept as the plain op and for checks.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

/** [planes, h, w] → [planes, 2h, 2w], nearest. */
export function upsampleNearest2x(
  ctx: GpuContext,
  x: Tensor,
  o: { planes: number; h: number; w: number; out?: Tensor },
): Tensor {
  check(x.dtype === "f32", "upsampleNearest2x", `input must be f32, got ${x.dtype}`);
  check(
    x.size === o.planes * o.h * o.w,
    "upsampleNearest2x",
    `input [${x.shape}] is not ${o.planes}x${o.h}x${o.w}`,
  );
  const out = o.out ?? ctx.empty([o.planes, 2 * o.h, 2 * o.w], "f32");
  const k = ctx.kernel({ name: "upsample_nearest2x", shader: "upsample.wgsl", bindings: ["read", "write"] });
  ctx.dispatch(k, [o.planes, o.h, o.w], [x, out], grid1d(out.size, 256));
  return out;
}
