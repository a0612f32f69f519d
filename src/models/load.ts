// Streams named weights from a WeightSource into GPU tensors, one tensor (or row block) at a time.
// Not a cache: callers own the returned tensors and release them when a model is unloaded.
import type { GpuContext } from "../gpu/context.ts";
import { type DType, type RowChunkedTensor, Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { fillUniform } from "../kernels/fill.ts";
import { QSCALE_SUFFIX } from "../formats/int8.ts";

function gpuDtype(src: WeightSource, name: string): DType {
  const { dtype } = src.info(name);
  if (dtype === "f16" || dtype === "f32" || dtype === "i8") return dtype;
  throw new Error(
    `${src.origin}: tensor ${name} has dtype ${dtype}; the GPU loader takes f16 or f32 (re-run deno task convert)`,
  );
}

/** Loads one tensor as stored (f16 stays packed f16, f32 stays f32), checking its shape when `shape` is given. */
export async function loadTensor(
  ctx: GpuContext,
  src: WeightSource,
  name: string,
  shape?: number[],
): Promise<Tensor> {
  const info = src.info(name);
  if (shape && (shape.length !== info.shape.length || shape.some((d, i) => d !== info.shape[i]))) {
    throw new Error(`${src.origin}: tensor ${name} has shape [${info.shape}], expected [${shape}]`);
  }
  const dtype = gpuDtype(src, name);
  // int8 (convert --weights int8): the scales come from `<name>.qscale` [rows, K/group], the group from the shapes.
  let scales: Tensor | null = null;
  let group = 0;
  if (dtype === "i8") {
    const sname = name + QSCALE_SUFFIX;
    const si = src.has(sname) ? src.info(sname) : null;
    const K = info.shape[info.shape.length - 1];
    const rows = info.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    if (!si || si.dtype !== "f32" || si.shape.length !== 2 || si.shape[0] !== rows || K % si.shape[1]) {
      throw new Error(
        `${src.origin}: int8 tensor ${name} [${info.shape}] needs f32 scales ${sname} [${rows}, K/group]` +
          (si ? `, found ${si.dtype} [${si.shape}]` : ", found none"),
      );
    }
    group = K / si.shape[1];
    scales = await streamTensor(ctx, src, sname, si.shape, "f32", si.byteLength);
  }
  const t = await streamTensor(ctx, src, name, info.shape, dtype, info.byteLength);
  if (scales) t.quant = { scales, group };
  return t;
}

async function streamTensor(
  ctx: GpuContext,
  src: WeightSource,
  name: string,
  shape: number[],
  dtype: DType,
  byteLength: number,
): Promise<Tensor> {
  const t = ctx.empty(shape, dtype);
  // Random weights (published-shape benchmarks) are made on the GPU instead of read.
  const fill = src.randomFill?.(name);
  if (fill) {
    fillUniform(ctx, t, fill);
    return t;
  }
  // Stream in slices of at most 64 MiB so a large tensor never sits whole in the JS heap twice.
  const step = 64 * 2 ** 20;
  for (let off = 0; off < byteLength; off += step) {
    const n = Math.min(step, byteLength - off);
    ctx.write(t, await src.readRange(name, off, n), off);
  }
  return t;
}

/** Loads a 2-D tensor as row blocks that each fit the adapter's max storage binding (embedding tables). */
export async function loadRowChunked(
  ctx: GpuContext,
  src: WeightSource,
  name: string,
): Promise<RowChunkedTensor> {
  const info = src.info(name);
  if (info.shape.length !== 2) {
    throw new Error(`${src.origin}: tensor ${name} must be 2-D, has shape [${info.shape}]`);
  }
  const [rows, cols] = info.shape;
  const dtype = gpuDtype(src, name);
  if (dtype === "i8") {
    throw new Error(
      `${src.origin}: tensor ${name} is int8; tables read by row (embeddings) must be f16 or f32`,
    );
  }
  const eb = dtype === "f16" ? 2 : 4;
  const blocks: { row0: number; rows: number; tensor: Tensor }[] = [];
  const layout = ctx.rowChunked(rows, cols, dtype, (row0, n, t) => blocks.push({ row0, rows: n, tensor: t }));
  const fill = src.randomFill?.(name);
  if (fill) {
    // Element indices of the whole table: the blocks hold the same values however the binding limit splits it.
    for (const b of blocks) fillUniform(ctx, b.tensor, fill, b.row0 * cols);
    return layout;
  }
  for (const b of blocks) {
    const step = Math.max(1, Math.floor((64 * 2 ** 20) / (cols * eb)));
    for (let r = 0; r < b.rows; r += step) {
      const nr = Math.min(step, b.rows - r);
      ctx.write(b.tensor, await src.readRange(name, (b.row0 + r) * cols * eb, nr * cols * eb), r * cols * eb);
    }
  }
  return layout;
}
