import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { groupNorm } from "../../src/kernels/group_norm.ts";
import { groupNormRef } from "../../src/reference/group_norm.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

// [channels, groups, pixels]: 1-pixel maps, prime pixel counts, groups of one channel, more than 256·k elements.
const CASES: [number, number, number][] = [[32, 32, 1], [64, 32, 7], [96, 32, 131], [6, 3, 1009], [
  32,
  32,
  4099,
]];

Deno.test("groupNorm (f32/f16 affine, with and without SiLU) matches the CPU reference", async () => {
  const ctx = await sharedContext();
  for (const [c, groups, hw] of CASES) {
    // A large common offset checks the centred (two-pass) variance.
    const x = randn(c * hw, c + hw, 2).map((v) => v + 3);
    const g = randn(c, 1, 0.2).map((v) => v + 1), b = randn(c, 2, 0.1);
    for (const dtype of ["f32", "f16"] as const) {
      const tx = ctx.upload(x, [c, hw]), tg = ctx.upload(g, [c], dtype), tb = ctx.upload(b, [c], dtype);
      const gr = await ctx.readF32(tg), br = await ctx.readF32(tb);
      for (const silu of [false, true]) {
        const out = groupNorm(ctx, tx, tg, tb, { c, groups, silu });
        // f32 sums over up to 4099·1 elements; normalised outputs are O(1).
        assertClose(
          `groupNorm c=${c} g=${groups} hw=${hw} ${dtype} silu=${silu}`,
          await ctx.readF32(out),
          groupNormRef(x, gr, br, { c, groups, silu }),
          {
            atol: 2e-5,
            rtol: 1e-5,
          },
        );
        out.release();
      }
      [tx, tg, tb].forEach((t) => t.release());
    }
  }
});

Deno.test("groupNorm rejects channels that are not a multiple of the groups", async () => {
  const ctx = await sharedContext();
  const tx = ctx.upload(new Float32Array(30), [30, 1]), tg = ctx.upload(new Float32Array(30), [30]);
  let msg = "";
  try {
    groupNorm(ctx, tx, tg, tg, { c: 30 });
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("channels 30 are not a multiple of 32 groups")) {
    throw new Error(`unexpected error: ${msg}`);
  }
  [tx, tg].forEach((t) => t.release());
});

Deno.test("groupNorm: a map above the max storage binding is normalised in group blocks (or group pieces) and element pieces", async () => {
  const shared = await sharedContext();
  const limit = 16384;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  // Groups of 2018 and 1179 floats (below the limit's 4096), maps 16-30x the limit, pieces not on group edges.
  for (const [c, groups, hw] of [[64, 32, 1009], [96, 32, 393]]) {
    const x = randn(c * hw, c + hw, 2).map((v) => v + 3);
    const g = randn(c, 1, 0.2).map((v) => v + 1), b = randn(c, 2, 0.1);
    const tx = ctx.upload(x, [c, hw]), tg = ctx.upload(g, [c], "f16"), tb = ctx.upload(b, [c], "f16");
    assert.ok(tx.byteLength > 8 * limit);
    const gr = await ctx.readF32(tg), br = await ctx.readF32(tb);
    const out = groupNorm(ctx, tx, tg, tb, { c, groups, silu: true });
    assertClose(
      `split groupNorm c=${c} hw=${hw}`,
      await ctx.readF32(out),
      groupNormRef(x, gr, br, { c, groups, silu: true }),
      { atol: 2e-5, rtol: 1e-5 },
    );
    [tx, tg, tb, out].forEach((t) => t.release());
  }
  // Groups above the binding (3 x 5003 = 15009 floats, 3.7x the 4096): partial sums over 4 pieces each, then
  // centred sums of squares about the group mean (the large common offset checks it is centred).
  {
    const [c, groups, hw] = [96, 32, 5003];
    const x = randn(c * hw, 77, 2).map((v) => v + 30);
    const g = randn(c, 1, 0.2).map((v) => v + 1), b = randn(c, 2, 0.1);
    const tx = ctx.upload(x, [c, hw]), tg = ctx.upload(g, [c]), tb = ctx.upload(b, [c]);
    const out = groupNorm(ctx, tx, tg, tb, { c, groups, silu: false });
    assertClose(
      "groupNorm with groups above the binding",
      await ctx.readF32(out),
      groupNormRef(x, g, b, { c, groups, silu: false }),
      { atol: 5e-5, rtol: 1e-5 },
    );
    [tx, tg, tb, out].forEach((t) => t.release());
  }
});
