// gemmTiles (shaders/gemm_tiles.wgsl, the register-blocked GPU GEMM) against the CPU matmul twin: M and N not
// multiples of the 128 tile (edge tiles), K not a multiple of the 8-wide slice, strided batches with a shared W,
// f16 and f32 W, every epilogue, each variant (double-buffered or single-buffered K slices; f32 or, where the adapter
// has shader-f16 — lavapipe does — f16 arithmetic; the subgroup variants where the device has `subgroups`: Dawn here,
// refused with the reason elsewhere); and matmul()'s routing on a GPU adapter.
import assert from "node:assert/strict";
import {
  GEMM_ENV,
  GEMM_VARIANT_NAMES,
  GEMM_VARIANTS,
  gemmF16Math,
  gemmSgGroup,
  gemmTiles,
  gemmTilesApplies,
  type GemmTiling,
  gemmVariantOverride,
  gemmVariantUnsupported,
} from "../../src/kernels/gemm.ts";
import { CHOICES, choicesKey } from "../../src/kernels/choices.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { geluRef, matmulRef } from "../../src/reference/matmul.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

/** The variants gemmTiles has, those needing shader-f16 only where the adapter has it. */
function variants(ctx: GpuContext) {
  return [
    { tiling: "gemm_tiles" as const, f16Math: false },
    { tiling: "gemm_tiles_1buf" as const, f16Math: false },
    ...(ctx.gpu.hasF16
      ? [
        { tiling: "gemm_tiles" as const, f16Math: true },
        { tiling: "gemm_tiles_1buf" as const, f16Math: true },
      ]
      : []),
  ];
}

Deno.test("gemmTiles matches the CPU matmul (edge tiles, K % 8 = 4, batches, f16/f32 W, bias, GELU, residual)", async () => {
  const ctx = await sharedContext();
  const M = 133, N = 137, K = 60, batch = 2, lda = K + 4, ldc = N + 1;
  for (const v of variants(ctx).filter((v) => !v.f16Math)) {
    for (const dtype of ["f16", "f32"] as const) {
      const aBs = M * lda + 8;
      const a = randn(batch * aBs, 1, 1), wv = randn(N * K, 2, 0.2), bias = randn(N, 3, 0.5);
      const resid = randn(batch * M * ldc, 4, 1);
      const wq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(wv)) : wv;
      const bq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(bias)) : bias;
      const at = ctx.upload(a, [a.length]),
        wt = ctx.upload(wv, [N, K], dtype),
        bt = ctx.upload(bias, [N], dtype);
      const rt = ctx.upload(resid, [resid.length]);
      for (const [gelu, withResid] of [[false, false], [true, true]] as const) {
        const o = {
          M,
          N,
          K,
          batch,
          lda,
          ldc,
          aOff: 4,
          aBatchStride: aBs,
          alpha: 0.5,
          bias: bt,
          gelu,
          resid: withResid ? rt : undefined,
        };
        assert.ok(gemmTilesApplies(wt, o));
        const c = gemmTiles(ctx, at, wt, { ...o, ...v, out: ctx.empty([batch * M * ldc]) });
        const got = await ctx.readF32(c);
        for (let b = 0; b < batch; b++) {
          const dense = new Float32Array(M * K);
          for (let m = 0; m < M; m++) {
            dense.set(a.subarray(b * aBs + 4 + m * lda, b * aBs + 4 + m * lda + K), m * K);
          }
          const base = matmulRef(dense, wq, { M, N, K, alpha: 0.5, bias: bq });
          const want = new Float32Array(M * ldc), have = got.subarray(b * M * ldc, (b + 1) * M * ldc);
          for (let m = 0; m < M; m++) {
            for (let n = 0; n < N; n++) {
              let v = base[m * N + n];
              if (gelu) v = geluRef(v);
              if (withResid) v += resid[b * M * ldc + m * ldc + n];
              want[m * ldc + n] = v;
            }
            for (let n = N; n < ldc; n++) want[m * ldc + n] = have[m * ldc + n]; // padding columns: not written
          }
          // f32 sums of 60 products of O(0.2) terms; GELU via exp in f32.
          assertClose(`gemm ${JSON.stringify(v)} ${dtype} gelu=${gelu} b=${b}`, have, want, {
            atol: 2e-5,
            rtol: 1e-4,
          });
        }
        c.release();
      }
      [at, wt, bt, rt].forEach((t) => t.release());
    }
  }
});

Deno.test({
  name:
    "gemmTiles f16 arithmetic (shader-f16) stays within f16 rounding of the CPU twin and accumulates K in f32",
  ignore: !(await sharedContext()).gpu.hasF16,
  async fn() {
    const ctx = await sharedContext();
    // Odd M/N, K % 8 = 4 and long enough (2,052) that summing all of K in f16 would show.
    const M = 67, N = 75, K = 2052;
    const a = randn(M * K, 21, 1), w = f16BitsToF32(f32ToF16Bits(randn(N * K, 22, 0.05)));
    const bias = randn(N, 23, 0.5);
    const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16"), bt = ctx.upload(bias, [N]);
    const want = matmulRef(a, w, { M, N, K, alpha: 0.5, bias });
    // Per element, f16 rounding of a (2⁻¹¹ relative) and of each product and 8-term slice sum (f16 ulp of |slice|)
    // gives |error| ≲ 2⁻¹¹·Σ_k|a_k·w_k| in the worst case; a random walk of those roundings is far smaller. Bound:
    // max |error| ≤ 0.3·2⁻¹¹·alpha·Σ|a||w| and RMS relative to the result ≤ 1e-3 (lavapipe: 0.152 and 4.95e-4).
    // Rounding the running sum to f16 after each slice (f16 accumulation over K) measured 1.004 and 2.19e-3.
    const absSum = matmulRef(a.map(Math.abs), w.map(Math.abs), { M, N, K, alpha: 0.5 });
    for (const v of variants(ctx).filter((v) => v.f16Math)) {
      const got = await ctx.readF32(gemmTiles(ctx, at, wt, { M, N, K, alpha: 0.5, bias: bt, ...v }));
      let worst = 0, se = 0, sw = 0;
      for (let i = 0; i < want.length; i++) {
        const e = Math.abs(got[i] - want[i]);
        worst = Math.max(worst, e / (2 ** -11 * absSum[i]));
        se += e * e, sw += want[i] * want[i];
      }
      const rms = Math.sqrt(se / sw);
      assert.ok(
        worst <= 0.3,
        `${JSON.stringify(v)}: max error ${worst.toFixed(4)} of the f16 worst-case bound > 0.3`,
      );
      assert.ok(rms <= 1e-3, `${JSON.stringify(v)}: RMS error ${rms.toExponential(2)} of the result > 1e-3`);
      console.log(
        `${JSON.stringify(v)}: max error ${worst.toFixed(4)} of the bound, RMS ${rms.toExponential(2)}`,
      );
    }
    [at, wt, bt].forEach((t) => t.release());
  },
});

Deno.test("matmul on a GPU adapter routes weight products (M > 8) to gemmTiles (same device, isFallback false)", async () => {
  const shared = await sharedContext();
  const ctx = new GpuContext({ ...shared.gpu, isFallback: false, hasF16: false });
  const M = 40, N = 24, K = 32;
  const a = randn(M * K, 5, 1), w = randn(N * K, 6, 0.2);
  const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16");
  assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
  const c = matmul(ctx, at, wt, { M, N, K, constantW: true });
  assert.deepEqual((await ctx.stopProfile()).map((k) => k.name), ["gemm_tiles"]);
  const want = matmulRef(a, f16BitsToF32(f32ToF16Bits(w)), { M, N, K });
  assertClose("routed", await ctx.readF32(c), want, { atol: 2e-5, rtol: 1e-4 });
  [at, wt, c].forEach((t) => t.release());
  // f16 arithmetic only when asked (COGVIEW2_F16_MATH=1), with shader-f16 and f16 weights.
  const withF16 = new GpuContext({ ...shared.gpu, hasF16: true }), w32 = ctx.empty([N, K]);
  assert.equal(gemmF16Math(withF16, wt, undefined), false, "not asked");
  assert.equal(gemmF16Math(withF16, wt, "1"), true, "asked, shader-f16, f16 W");
  assert.equal(gemmF16Math(withF16, w32, "1"), false, "f32 W keeps f32 arithmetic");
  assert.equal(gemmF16Math(ctx, wt, "1"), false, "no shader-f16");
  w32.release();
});

Deno.test("every GEMM variant matches the CPU matmul (edge tiles both ways, K not a multiple of its slice, batches, epilogue)", async () => {
  const ctx = await sharedContext();
  // N = 261 > 256 and M = 133 > 128: edge tiles for every tiling; K = 72 (w8 needs K % 8 = 0) is 4.5 slices of 16
  // and 2.25 of 32; K = 60 (K % 8 = 4) for the others; batch 2 with padded strides.
  const M = 133, N = 261, batch = 2, ldc = N + 3;
  let ran = 0, runnable = 0;
  // The tensor-core variants round A to f16 (beyond this test's tolerance): tests/kernels/gemm_sgmat_test.ts.
  for (const name of GEMM_VARIANT_NAMES.filter((v) => !(GEMM_VARIANTS[v] as GemmTiling).sgmat)) {
    const why = gemmVariantUnsupported(ctx, name);
    // Only the subgroup variants may be refused here, and only on a device without usable subgroups.
    assert.ok(!why || (GEMM_VARIANTS[name].sg && !gemmSgGroup(ctx)), `${name} refused: ${why}`);
    if (why) {
      console.log(`skipped on this adapter: ${why}`);
      continue;
    }
    runnable++;
    const w8 = GEMM_VARIANTS[name].w8, K = w8 ? 72 : 60, lda = K + 8, aBs = M * lda + 8;
    // f32 W has no 8-wide loads: a w8 variant with f32 W is its plain twin. The subgroup variants share the W path
    // with the others and differ only in A: f32 W once (gemm_sg_il), f16 W for each (cold compiles on Dawn/lavapipe
    // take ~1.5 s per pipeline, and CI's time is short).
    const f16Only = w8 || (GEMM_VARIANTS[name].sg && name !== "gemm_sg_il");
    for (const dtype of f16Only ? ["f16"] as const : ["f16", "f32"] as const) {
      const a = randn(batch * aBs, 31, 1), wv = randn(N * K, 32, 0.2), bias = randn(N, 33, 0.5);
      const resid = randn(batch * M * ldc, 34, 1);
      const wq = dtype === "f16" ? f16BitsToF32(f32ToF16Bits(wv)) : wv;
      const at = ctx.upload(a, [a.length]), wt = ctx.upload(wv, [N, K], dtype), bt = ctx.upload(bias, [N]);
      const rt = ctx.upload(resid, [resid.length]);
      const o = {
        M,
        N,
        K,
        batch,
        lda,
        ldc,
        aOff: 8,
        aBatchStride: aBs,
        alpha: 0.5,
        bias: bt,
        gelu: true,
        resid: rt,
        tiling: name,
      };
      assert.ok(gemmTilesApplies(wt, o), `${name} applies`);
      const c = gemmTiles(ctx, at, wt, { ...o, out: ctx.empty([batch * M * ldc]) });
      const got = await ctx.readF32(c);
      for (let b = 0; b < batch; b++) {
        const dense = new Float32Array(M * K);
        for (let m = 0; m < M; m++) {
          dense.set(a.subarray(b * aBs + 8 + m * lda, b * aBs + 8 + m * lda + K), m * K);
        }
        const base = matmulRef(dense, wq, { M, N, K, alpha: 0.5, bias });
        const have = got.subarray(b * M * ldc, (b + 1) * M * ldc), want = new Float32Array(M * ldc);
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            want[m * ldc + n] = geluRef(base[m * N + n]) + resid[b * M * ldc + m * ldc + n];
          }
          for (let n = N; n < ldc; n++) want[m * ldc + n] = have[m * ldc + n]; // padding columns: not written
        }
        // f32 sums of 60-72 products of O(0.2) terms; GELU via exp in f32.
        assertClose(`${name} ${dtype} b=${b}`, have, want, { atol: 3e-5, rtol: 1e-4 });
      }
      [at, wt, bt, rt, c].forEach((t) => t.release());
      ran++;
    }
  }
  assert.ok(ran >= runnable && runnable > 0, `${ran} runs over ${runnable} runnable variants`);
});

Deno.test("GEMM variant choice: the table per shape class, COGVIEW2_GEMM overrides it, unknown names are errors", async () => {
  assert.equal(gemmVariantOverride(undefined), null);
  assert.equal(gemmVariantOverride(""), null);
  assert.equal(gemmVariantOverride("gemm_tiles_64x128"), "gemm_tiles_64x128");
  assert.throws(
    () => gemmVariantOverride("gemm_huge"),
    /COGVIEW2_GEMM=gemm_huge: unknown GEMM variant; expected one of gemm_tiles,/,
  );
  for (const c of Object.values(CHOICES)) {
    for (const v of Object.values(c.gpuGemm)) assert.ok(v in GEMM_VARIANTS, `${v} is a variant`);
  }
  // matmul() on a GPU adapter runs the variant the table names for the shape's class.
  const shared = await sharedContext();
  const ctx = new GpuContext({ ...shared.gpu, isFallback: false, hasF16: false });
  const table = CHOICES[choicesKey(ctx)].gpuGemm, saved = { ...table };
  const M = 300, N = 40, K = 32;
  const a = randn(M * K, 41, 1), w = randn(N * K, 42, 0.2);
  const at = ctx.upload(a, [M, K]), wt = ctx.upload(w, [N, K], "f16");
  try {
    table.narrowN = "gemm_tiles_64x128";
    assert.ok(ctx.startProfile());
    const c = matmul(ctx, at, wt, { M, N, K, constantW: true });
    assert.deepEqual((await ctx.stopProfile()).map((k) => k.name), ["gemm_tiles_64x128"]);
    assertClose("routed", await ctx.readF32(c), matmulRef(a, f16BitsToF32(f32ToF16Bits(w)), { M, N, K }), {
      atol: 2e-5,
      rtol: 1e-4,
    });
    c.release();
  } finally {
    Object.assign(table, saved);
    [at, wt].forEach((t) => t.release());
  }
});

Deno.test("subgroup GEMM variants: refused without subgroups (variant and feature named), COGVIEW2_GEMM runs them in matmul() where the device has them", async () => {
  const shared = await sharedContext();
  const sgNames = GEMM_VARIANT_NAMES.filter((v) => (GEMM_VARIANTS[v] as GemmTiling).sg);
  assert.ok(sgNames.length >= 1, "at least one subgroup variant");
  // Without subgroups (Deno's wgpu here; simulated on Dawn), or with subgroups narrower than 4: refused, never
  // replaced by another kernel.
  const noSg = new GpuContext({
    ...shared.gpu,
    isFallback: false,
    hasSubgroups: false,
    subgroupMinSize: null,
  });
  const narrow = new GpuContext({ ...shared.gpu, isFallback: false, hasSubgroups: true, subgroupMinSize: 2 });
  for (const v of sgNames) {
    assert.match(
      gemmVariantUnsupported(noSg, v) ?? "",
      new RegExp(`^${v} needs the subgroups feature, which the`),
    );
    assert.match(
      gemmVariantUnsupported(narrow, v) ?? "",
      /needs subgroups of at least 4 .* subgroupMinSize 2/,
    );
  }
  const M = 40, N = 24, K = 36;
  const a = randn(M * K, 51, 1), w = randn(N * K, 52, 0.2);
  const at = noSg.upload(a, [M, K]), wt = noSg.upload(w, [N, K], "f16");
  assert.throws(
    () => gemmTiles(noSg, at, wt, { M, N, K, tiling: "gemm_sg_il" }),
    /gemm_sg_il needs the subgroups/,
  );
  const saved = Deno.env.get(GEMM_ENV);
  try {
    Deno.env.set(GEMM_ENV, "gemm_sg_il");
    assert.throws(() => matmul(noSg, at, wt, { M, N, K, constantW: true }), /gemm_sg_il needs the subgroups/);
    if (gemmSgGroup(shared)) {
      // The models' path: matmul() on a GPU adapter with the override compiles and runs the subgroup kernel.
      const gpu = shared.withGpuSchedules();
      assert.ok(gpu.startProfile(), "timestamp queries (kernel names come from the profile)");
      const c = matmul(gpu, at, wt, { M, N, K, constantW: true });
      assert.deepEqual((await gpu.stopProfile()).map((k) => k.name), ["gemm_sg_il"]);
      assertClose(
        "COGVIEW2_GEMM=gemm_sg_il",
        await gpu.readF32(c),
        matmulRef(a, f16BitsToF32(f32ToF16Bits(w)), { M, N, K }),
        {
          atol: 2e-5,
          rtol: 1e-4,
        },
      );
      c.release();
    }
  } finally {
    if (saved === undefined) Deno.env.delete(GEMM_ENV);
    else Deno.env.set(GEMM_ENV, saved);
    [at, wt].forEach((t) => t.release());
  }
});
