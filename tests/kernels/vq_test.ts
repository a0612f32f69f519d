import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { vqLookup, vqSearch } from "../../src/kernels/vq.ts";
import { vqLookupRef, vqSearchRef } from "../../src/reference/vq.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

Deno.test("vqSearch finds the nearest code, the runner-up and the gap like the CPU reference", async () => {
  const ctx = await sharedContext();
  // [positions, codes, D]: 1, primes, more codes than threads; f16 and f32 codebooks.
  for (
    const [np, n, d, dtype] of [[1, 2, 1, "f32"], [7, 257, 5, "f32"], [23, 2003, 48, "f16"], [
      40,
      20000,
      17,
      "f16",
    ]] as const
  ) {
    const eRaw = randn(n * d, n + d);
    const e = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(eRaw)) : eRaw;
    const z = randn(np * d, np + 1);
    const tz = ctx.upload(z, [np, d]), te = ctx.upload(eRaw, [n, d], dtype);
    const got = await vqSearch(ctx, tz, te);
    const ref = vqSearchRef(z, e, { n, d });
    // f32 distance error: a few ulps of |z|² + |e|² (≤ ~4·d here); positions whose reference gap is below it may swap.
    const eps = 1e-5 * 4 * d;
    for (let p = 0; p < np; p++) {
      const nearTie = ref.gap[p] < eps;
      const ok = got.best[p] === ref.best[p] || (nearTie && got.best[p] === ref.second[p]);
      if (!ok) {
        throw new Error(
          `vqSearch ${np}x${n}x${d} position ${p}: got ${got.best[p]}, expected ${ref.best[p]} (gap ${
            ref.gap[p]
          })`,
        );
      }
    }
    assertClose(`vqSearch dist ${np}x${n}x${d}`, got.dist, ref.dist, { atol: eps, rtol: 1e-5 });
    assertClose(`vqSearch gap ${np}x${n}x${d}`, got.gap, ref.gap, { atol: 2 * eps, rtol: 1e-4 });
    [tz, te].forEach((t) => t.release());
  }
});

Deno.test("vqSearch keeps the first index on exact ties", async () => {
  const ctx = await sharedContext();
  const d = 3, n = 600;
  const e = new Float32Array(n * d);
  for (const c of [5, 300, 599]) e.set([1, 2, 3], c * d); // three identical best codes
  const tz = ctx.upload(new Float32Array([1, 2, 3]), [1, d]), te = ctx.upload(e, [n, d]);
  const got = await vqSearch(ctx, tz, te);
  if (got.best[0] !== 5 || got.second[0] !== 300 || got.gap[0] !== 0) {
    throw new Error(
      `expected best 5, second 300, gap 0; got ${got.best[0]}, ${got.second[0]}, ${got.gap[0]}`,
    );
  }
  [tz, te].forEach((t) => t.release());
});

Deno.test("vqLookup gathers codebook rows into an NCHW map", async () => {
  const ctx = await sharedContext();
  for (const [np, n, d] of [[1, 3, 1], [37, 101, 48], [400, 20000, 7]]) {
    const e = randn(n * d, d);
    const r = rng(np);
    const codes = Int32Array.from({ length: np }, () => Math.floor(r() * n));
    const tc = ctx.upload(codes, [np], "i32"), te = ctx.upload(e, [n, d], "f16");
    const out = vqLookup(ctx, tc, te);
    assertClose(
      `vqLookup ${np}x${n}x${d}`,
      await ctx.readF32(out),
      vqLookupRef(codes, f16BitsToF32(f32ToF16Bits(e)), d),
      { atol: 0 },
    );
    [tc, te, out].forEach((t) => t.release());
  }
});

Deno.test("vqSearch and vqLookup with a codebook above the max storage binding (row blocks) match the CPU reference", async () => {
  const shared = await sharedContext();
  // 16 KiB binding: a 2003 x 17 f16 codebook (68 KB) is 5 row blocks of 475 codes (odd D: blocks start mid-word),
  // f32 (136 KB) 9 blocks; a near-duplicate of code 1999 at code 3 puts best and runner-up in different blocks.
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: 16384 },
  });
  const np = 41, n = 2003, d = 17;
  for (const dtype of ["f16", "f32"] as const) {
    const eRaw = randn(n * d, 3 * d);
    for (let k = 0; k < d; k++) eRaw[3 * d + k] = eRaw[1999 * d + k] + (k === 0 ? 0.05 : 0);
    const e = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(eRaw)) : eRaw;
    const z = randn(np * d, 5);
    z.set(e.subarray(1999 * d, 2000 * d), 0);
    const tz = ctx.upload(z, [np, d]), te = ctx.upload(eRaw, [n, d], dtype);
    assert.ok(te.byteLength > 4 * 16384);
    const got = await vqSearch(ctx, tz, te);
    const ref = vqSearchRef(z, e, { n, d });
    assert.equal(got.best[0], 1999);
    assert.equal(got.second[0], 3);
    const eps = 1e-5 * 4 * d;
    for (let p = 0; p < np; p++) {
      const nearTie = ref.gap[p] < eps;
      assert.ok(
        got.best[p] === ref.best[p] || (nearTie && got.best[p] === ref.second[p]),
        `${dtype} position ${p}: got ${got.best[p]}, expected ${ref.best[p]}`,
      );
      assert.ok(nearTie || got.second[p] === ref.second[p], `${dtype} position ${p}: runner-up`);
    }
    assertClose(`blocked vqSearch dist ${dtype}`, got.dist, ref.dist, { atol: eps, rtol: 1e-5 });
    assertClose(`blocked vqSearch gap ${dtype}`, got.gap, ref.gap, { atol: 2 * eps, rtol: 1e-4 });
    const r = rng(9);
    const codes = Int32Array.from({ length: 200 }, (_, i) => i < 2 ? n - 1 - i : Math.floor(r() * n));
    const tc = ctx.upload(codes, [codes.length], "i32");
    const out = vqLookup(ctx, tc, te);
    assertClose(`blocked vqLookup ${dtype}`, await ctx.readF32(out), vqLookupRef(codes, e, d), { atol: 0 });
    [tz, te, tc, out].forEach((t) => t.release());
  }
});
