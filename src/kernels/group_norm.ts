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
  check(x.dtype === "f32", "groupNorm", `input must be f32, got ${x.dtype}`);
  check(c % groups === 0, "groupNorm", `channels ${c} are not a multiple of ${groups} groups`);
  check(x.size % c === 0, "groupNorm", `input [${x.shape}] is not a multiple of ${c} channels`);
  check(gamma.size === c && beta.size === c, "groupNorm", `gamma/beta must have ${c} elements`);
  check(
    gamma.dtype === beta.dtype && (gamma.dtype === "f16" || gamma.dtype === "f32"),
    "groupNorm",
    "gamma/beta must be both f16 or both f32",
  );
  const hw = x.size / c;
  const params = [c, hw, groups, f32(o.eps ?? 1e-6)];
  const stats = ctx.empty([groups, 2], "f32");
  const ks = ctx.kernel({
    name: "group_norm_stats",
    shader: "group_norm.wgsl",
    entry: "stats",
    defines: { STATS: 1 },
    bindings: ["read", "write"],
  });
  ctx.dispatch(ks, params, [x, stats], [groups, 1, 1]);
  const out = o.out ?? ctx.empty(x.shape, "f32");
  const k = ctx.kernel({
    name: "group_norm",
    shader: "group_norm.wgsl",
    defines: { W_F16: gamma.dtype === "f16", SILU: !!o.silu },
    bindings: ["read", "read", "read", "read", "write"],
  });
  ctx.dispatch(k, params, [x, stats, gamma, beta, out], grid1d(x.size, 256));
  stats.release();
  return out;
}
