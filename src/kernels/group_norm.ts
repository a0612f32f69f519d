// Launcher for GroupNorm (shaders/group_norm.wgsl) over one NCHW f32 image, optionally followed by SiLU.
// Not LayerNorm: statistics are per group of contiguous channels over all pixels (icetk's Normalize: 32 groups).

import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

export interface GroupNormOptions {
  /** Channels (x is [c, h·w]). */
  c: number;
  groups?: number;
  eps?: number;
  silu?: boolean;
  out?: Tensor;
}

/** y = (x − mean_g)/sqrt(var_g + eps)·gamma[c] + beta[c] (then SiLU when asked). Defaults: 32 groups, eps 1e-6. */
export function groupNorm(
  ctx: GpuContext,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  o: GroupNormOptions,
): Tensor {
  const groups = o.groups ?? 32;
  const { c } = o;
  check(x.dtype === "f32", "groupNorm", () => `input must be f32, got ${x.dtype}`);
  check(c % groups === 0, "groupNorm", () => `channels ${c} are not a multiple of ${groups} groups`);
  check(x.size % c === 0, "groupNorm", () => `input [${x.shape}] is not a multiple of ${c} channels`);
  check(gamma.size === c && beta.size === c, "groupNorm", () => `gamma/beta must have ${c} elements`);
  check(
    gamma.dtype === beta.dtype && (gamma.dtype === "f16" || gamma.dtype === "f32"),
    "groupNorm",
    "gamma/beta must be both f16 or both f32",
  );
  const hw = x.size / c;
  const eps = f32(o.eps ?? 1e-6);
  const stats = ctx.empty([groups, 2], "f32");
  const ks = ctx.kernel({
    name: "group_norm_stats",
    shader: "group_norm.wgsl",
    entry: "stats",
    defines: { STATS: 1 },
    bindings: ["read", "write"],
  });
  const out = o.out ?? ctx.empty(x.shape, "f32");
  check(out.size === x.size, "groupNorm", () => `out [${out.shape}] differs from the input [${x.shape}]`);
  const k = ctx.kernel({
    name: "group_norm",
    shader: "group_norm.wgsl",
    defines: { W_F16: gamma.dtype === "f16", SILU: !!o.silu },
    bindings: ["read", "read", "read", "read", "write"],
  });
  if (x.byteLength <= ctx.maxBinding && out.byteLength <= ctx.maxBinding) {
    ctx.dispatch(ks, [c, hw, groups, eps, 0, 0, 0, 0, 0], [x, stats], [groups, 1, 1]);
    ctx.dispatch(
      k,
      [c, hw, groups, eps, 0, 0, 0, 0, x.size],
      [x, stats, gamma, beta, out],
      grid1d(x.size, 256),
    );
    stats.release();
    return out;
  }
  // A map above the max storage binding: statistics over blocks of whole groups (a group is contiguous), the
  // normalisation over element pieces, each bound as an aligned view of x and of out.
  const n = (c / groups) * hw;
  const span = Math.floor(ctx.maxBinding / 4) - ctx.gpu.limits.minStorageBufferOffsetAlignment / 4;
  if (n <= span) {
    const gb = Math.floor(span / n);
    for (let g0 = 0; g0 < groups; g0 += gb) {
      const g1 = Math.min(groups, g0 + gb);
      const v = ctx.alignedView(x, g0 * n, g1 * n);
      ctx.dispatch(ks, [c, hw, groups, eps, v.off, 0, g0, 0, 0], [v.t, stats], [g1 - g0, 1, 1]);
    }
  } else {
    // A group above the binding: partial sums over its pieces, then centred sums of squares about the group mean.
    const pp = Math.ceil(n / span), pl = Math.ceil(n / pp);
    const part = ctx.empty([groups * pp * 2], "f32");
    for (const entry of ["piece_sum", "piece_sq"]) {
      const kp = ctx.kernel({
        name: `group_norm_${entry}`,
        shader: "group_norm.wgsl",
        entry,
        defines: { STATS: 1 },
        bindings: ["read", "write"],
      });
      for (let g = 0; g < groups; g++) {
        for (let j = 0; j < pp; j++) {
          const e0 = g * n + j * pl, ne = Math.min(pl, n - j * pl);
          const v = ctx.alignedView(x, e0, e0 + ne);
          ctx.dispatch(kp, [c, hw, groups, eps, v.off, pp, g, g * pp + j, ne], [v.t, part], [1, 1, 1]);
        }
      }
    }
    const kf = ctx.kernel({
      name: "group_norm_piece_final",
      shader: "group_norm.wgsl",
      entry: "piece_final",
      defines: { STATS: 1 },
      bindings: ["read", "write"],
    });
    ctx.dispatch(kf, [c, hw, groups, eps, 0, pp, 0, 0, 0], [part, stats], [Math.ceil(groups / 64), 1, 1]);
    part.release();
  }
  for (let e0 = 0; e0 < x.size; e0 += span) {
    const ne = Math.min(span, x.size - e0);
    const xv = ctx.alignedView(x, e0, e0 + ne), ov = ctx.alignedView(out, e0, e0 + ne);
    ctx.dispatch(
      k,
      [c, hw, groups, eps, xv.off, ov.off, 0, e0, ne],
      [xv.t, stats, gamma, beta, ov.t],
      grid1d(ne, 256),
    );
  }
  stats.release();
  return out;
}
