// Launcher of shaders/fill.wgsl: a tensor filled with seeded uniform values made on the GPU (random weights for the
// published-shape benchmark; nothing uploaded). CPU twin: src/reference/fill.ts.
import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

export interface FillSpec {
  seed: number;
  /** Values are offset + scale·u, u uniform in [−1, 1). */
  scale: number;
  offset: number;
}

/**
 * Fills `t` (f32, f16, or i8: the values rounded to integers and clamped to ±127) with the values of elements base..
 * of a seeded uniform tensor (recorded, not flushed).
 */
export function fillUniform(ctx: GpuContext, t: Tensor, spec: FillSpec, base = 0): void {
  check(
    t.dtype === "f32" || t.dtype === "f16" || t.dtype === "i8",
    "fill_uniform",
    () => `dtype ${t.dtype} (f32, f16, i8)`,
  );
  check(
    Number.isInteger(base) && base >= 0 && base + t.size <= 2 ** 32,
    "fill_uniform",
    () => `base ${base}`,
  );
  const f16 = t.dtype === "f16";
  const k = ctx.kernel({
    name: "fill_uniform",
    shader: "fill.wgsl",
    defines: { F16: f16 ? 1 : 0, I8: t.dtype === "i8" ? 1 : 0 },
    bindings: ["write"],
  });
  const words = f16 ? Math.ceil(t.size / 2) : t.dtype === "i8" ? Math.ceil(t.size / 4) : t.size;
  ctx.dispatch(
    k,
    [t.size, spec.seed >>> 0, f32(spec.scale), f32(spec.offset), base >>> 0],
    [t],
    grid1d(words, 256),
  );
}
