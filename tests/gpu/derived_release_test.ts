// Tensors derived from a weight (Tensor.attach: the windows matmul's packed copy, conv's f32 copy) are released with
// it, also when attached through a view; the context's registered caches are dropped by dropCaches. Stage residency
// relies on both: an unloaded model must leave nothing of itself in the pool.
import nodeAssert from "node:assert/strict";
import { GpuContext, sharedContext } from "../../src/gpu/context.ts";
import { packedWeight } from "../../src/kernels/matmul_windows.ts";

Deno.test("Tensor.attach: derived tensors are released with their owner (through views too)", async () => {
  const ctx = new GpuContext((await sharedContext()).gpu);
  const w = ctx.upload(new Float32Array(64 * 40).fill(1), [64, 40], "f32");
  const view = w.reshape([40, 64]);
  // A row block bound on its own (alignedView: the VQ codebook's blocks get packed copies of their own).
  const block = ctx.alignedView(view, 64 * 7 + 3, 64 * 20).t;
  const a = ctx.empty([100]), b = ctx.empty([200]), c = ctx.empty([300]);
  w.attach(a);
  view.attach(b);
  block.attach(c);
  const base = ctx.poolBytes;
  w.release();
  nodeAssert.ok(a.released && b.released && c.released, "every derived tensor released with the owner");
  ctx.trim();
  nodeAssert.equal(ctx.poolBytes, 0, `nothing left after trim (was ${base})`);
});

Deno.test("packedWeight: the windows matmul's packed copy leaves the pool with its weight", async () => {
  const ctx = new GpuContext((await sharedContext()).gpu);
  const w = ctx.upload(new Float32Array(24 * 64).fill(0.5), [24, 64], "f16");
  const before = ctx.poolBytes;
  const packed = packedWeight(ctx, w, { N: 24, K: 64, ldw: 64, wOff: 0 });
  await ctx.sync();
  nodeAssert.ok(ctx.poolBytes > before, "the packed copy is in the pool");
  nodeAssert.equal(packedWeight(ctx, w, { N: 24, K: 64, ldw: 64, wOff: 0 }), packed, "cached");
  w.release();
  nodeAssert.ok(packed.released, "released with the weight");
  ctx.trim();
  nodeAssert.equal(ctx.poolBytes, 0);
});

Deno.test("GpuContext.dropCaches calls every registered cache's drop", async () => {
  const ctx = new GpuContext((await sharedContext()).gpu);
  const t = ctx.empty([64]);
  let drops = 0;
  ctx.registerCache(() => {
    drops++;
    t.release();
  });
  ctx.dropCaches();
  nodeAssert.equal(drops, 1);
  ctx.trim();
  nodeAssert.equal(ctx.poolBytes, 0);
});
