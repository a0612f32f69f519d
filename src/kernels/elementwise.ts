// Launchers for elementwise f32 ops (shaders/elementwise.wgsl): add, mul, scale, gelu, silu, copy.
// Not fused epilogues: matmul carries its own bias/GELU/residual options.

import { f32, type GpuContext } from "../gpu/context.ts";
import { type Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

type BinaryOp = "ADD" | "MUL";
type UnaryOp = "SCALE" | "GELU" | "SILU" | "COPY";

function binary(ctx: GpuContext, op: BinaryOp, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  check(a.dtype === "f32" && b.dtype === "f32", op, "inputs must be f32");
  check(a.size === b.size, op, () => `sizes differ: [${a.shape}] vs [${b.shape}]`);
  const o = out ?? ctx.empty(a.shape, "f32");
  const k = ctx.kernel({
    name: op.toLowerCase(),
    shader: "elementwise.wgsl",
    defines: { BINARY: 1, [op]: 1 },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(k, [a.size, b.size, f32(0), 0, 0, 0], [a, b, o], grid1d(a.size, 256));
  return o;
}

function unary(ctx: GpuContext, op: UnaryOp, a: Tensor, s = 1, out?: Tensor): Tensor {
  check(a.dtype === "f32", op, "input must be f32");
  const o = out ?? ctx.empty(a.shape, "f32");
  const k = ctx.kernel({
    name: op.toLowerCase(),
    shader: "elementwise.wgsl",
    defines: { [op]: 1 },
    bindings: ["read", "write"],
  });
  ctx.dispatch(k, [a.size, 0, f32(s), 0, 0, 0], [a, o], grid1d(a.size, 256));
  return o;
}

/** out = a + b (same size). `out` must not alias an input (WebGPU forbids read + write binding of one buffer). */
export const add = (ctx: GpuContext, a: Tensor, b: Tensor, out?: Tensor): Tensor =>
  binary(ctx, "ADD", a, b, out);
/** out = a * b (same size). */
export const mul = (ctx: GpuContext, a: Tensor, b: Tensor, out?: Tensor): Tensor =>
  binary(ctx, "MUL", a, b, out);
/** out = a * s. */
export const scale = (ctx: GpuContext, a: Tensor, s: number, out?: Tensor): Tensor =>
  unary(ctx, "SCALE", a, s, out);
/** SwissArmyTransformer's tanh-approximation GELU. */
export const gelu = (ctx: GpuContext, a: Tensor, out?: Tensor): Tensor => unary(ctx, "GELU", a, 1, out);
/** x·sigmoid(x). */
export const silu = (ctx: GpuContext, a: Tensor, out?: Tensor): Tensor => unary(ctx, "SILU", a, 1, out);
/** out = a. */
export const copy = (ctx: GpuContext, a: Tensor, out?: Tensor): Tensor => unary(ctx, "COPY", a, 1, out);
