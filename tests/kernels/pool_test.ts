import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { avgPool2x2 } from "../../src/kernels/pool.ts";
import { avgPool2x2Ref } from "../../src/reference/pool.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

Deno.test("avgPool2x2 averages 2x2 windows, dropping an odd last row/column", async () => {
  const ctx = await sharedContext();
  for (
    const [planes, h, w] of [[1, 2, 2], [3, 5, 7], [17, 4, 31], [64, 40, 33]] as [number, number, number][]
  ) {
    const x = randn(planes * h * w, planes * h + w);
    const tx = ctx.upload(x, [planes, h, w]);
    const out = avgPool2x2(ctx, tx, { planes, h, w });
    // Same summation order as the reference up to float64 vs float32 rounding of four terms.
    assertClose(`avgPool ${[planes, h, w]}`, await ctx.readF32(out), avgPool2x2Ref(x, { planes, h, w }), {
      atol: 1e-6,
      rtol: 1e-6,
    });
    [tx, out].forEach((t) => t.release());
  }
});

Deno.test("avgPool2x2: planes above the max storage binding are pooled in plane blocks", async () => {
  const shared = await sharedContext();
  const limit = 16384;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  const [planes, h, w] = [37, 41, 35]; // 1435 floats a plane: 2 planes a block, 19 blocks, odd last row/column
  const x = randn(planes * h * w, 7);
  const tx = ctx.upload(x, [planes, h, w]);
  assert.ok(tx.byteLength > 8 * limit);
  const out = avgPool2x2(ctx, tx, { planes, h, w });
  assertClose("split avgPool", await ctx.readF32(out), avgPool2x2Ref(x, { planes, h, w }), {
    atol: 1e-6,
    rtol: 1e-6,
  });
  [tx, out].forEach((t) => t.release());
});
