// Every row-reduction variant of shaders/row_reduce.wgsl (softmax, logProb, layerNorm, layerNormResidual) against
// the CPU twins on odd sizes: "workgroup" (64 invocations), "narrow" (8) and "wide" (256; with subgroup sums where the
// device has them) everywhere, "subgroup" where the device has the `subgroups` feature with a fixed size (Dawn:
// `deno task test-dawn`); the other backends list it as skipped.
// The default variant of each backend (src/kernels/choices.ts) is also what softmax_test / layernorm_test run.
import assert from "node:assert/strict";
import { layerNorm, layerNormResidual } from "../../src/kernels/layernorm.ts";
import { logProb, softmax } from "../../src/kernels/softmax.ts";
import {
  CHOICES,
  choices,
  DECODE_ROWS,
  ROW_REDUCE_DECODE_ENV,
  type RowReduce,
  rowReduceFor,
  rowReduceOverride,
  rowReduceUsed,
  UNROLL_ENV,
  unrollFor,
} from "../../src/kernels/choices.ts";
import { layerNormRef, layerNormResidualRef } from "../../src/reference/layernorm.ts";
import { logProbRef, softmaxRef } from "../../src/reference/softmax.ts";
import { assertClose, randn, rng, sharedContext, withEnv } from "../_util.ts";

const ctx = await sharedContext();
// [rows, n, std]: one element, widths below, at and above 8 and 64 lanes, a 20000-wide sampling row; std 100 makes
// exp overflow unless the row maximum subtracted first is the true one (a wrong max is invisible at small values).
const CASES: [number, number, number][] = [
  [1, 1, 3],
  [3, 7, 3],
  [5, 37, 3],
  [2, 129, 3],
  [9, 771, 3],
  [2, 20000, 3],
  [3, 129, 100],
  [2, 20000, 100],
];

for (const reduce of ["workgroup", "narrow", "subgroup", "wide"] as RowReduce[]) {
  const ignore = reduce === "subgroup" && !ctx.gpu.subgroupSize;
  Deno.test({
    name: `row reductions (${reduce}${ignore ? ": no subgroups on this device" : ""}) match the CPU twins`,
    ignore,
    async fn() {
      assert.equal(rowReduceUsed(ctx, reduce), reduce);
      for (const [rows, n, std] of CASES) {
        const x = randn(rows * n, rows * 13 + n, std).map((v) => v + 2);
        const g = randn(n, 1, 0.2).map((v) => v + 1), b = randn(n, 2, 0.1), r = randn(rows * n, 3, 2);
        const tx = ctx.upload(x, [rows, n]), tg = ctx.upload(g, [n]), tb = ctx.upload(b, [n]);
        const tr = ctx.upload(r, [rows, n]);
        // LayerNorm: f32 sums over <= 20000 O(1) values.
        const ln = layerNorm(ctx, tx, { weight: tg, bias: tb }, { eps: 1e-5, reduce });
        const tol = { atol: 5e-5, rtol: 1e-5 };
        assertClose(
          `layerNorm ${reduce} ${rows}x${n}`,
          await ctx.readF32(ln),
          layerNormRef(x, g, b, n, 1e-5),
          tol,
        );
        const ro = ctx.empty([rows, n]);
        const { out } = layerNormResidual(ctx, tx, tr, { weight: tg, bias: tb }, {
          eps: 1e-5,
          residOut: ro,
          post: { weight: tg, bias: tb },
          reduce,
        });
        const wantR = layerNormResidualRef(x, r, g, b, n, 1e-5);
        assertClose(`layerNormResidual ${reduce} ${rows}x${n}`, await ctx.readF32(ro), wantR, tol);
        assertClose(
          `layerNormResidual+post ${reduce} ${rows}x${n}`,
          await ctx.readF32(out!),
          layerNormRef(wantR, g, b, n, 1e-5),
          tol,
        );
        // Softmax with additive rows (mask / log-weights); probabilities in [0, 1].
        const rr = rng(n);
        const add = Float32Array.from({ length: 2 * n }, () => rr() < 0.3 ? -10000 : rr() < 0.5 ? 1.4 : 0);
        add[0] = 0;
        const ta = ctx.upload(add, [2, n]);
        const sm = softmax(ctx, tx, { n, rows, scale: 0.7, add: ta, reduce });
        assertClose(
          `softmax ${reduce} ${rows}x${n}`,
          await ctx.readF32(sm),
          softmaxRef(x, n, { scale: 0.7, add }),
          { atol: 1e-6, rtol: 1e-4 },
        );
        // logsumexp and the target's log-probability (row 0 without a target).
        const targets = Int32Array.from(
          { length: rows },
          (_, i) => i === 0 && rows > 1 ? -1 : (i * 7919) % n,
        );
        const tt = ctx.upload(targets, [rows], "i32");
        const lp = logProb(ctx, tx, tt, { n, rows, reduce });
        assertClose(`logProb ${reduce} ${rows}x${n}`, await ctx.readF32(lp), logProbRef(x, n, targets), {
          atol: 2e-5,
          rtol: 1e-5,
        });
        [tx, tg, tb, tr, ln, ro, out!, ta, sm, tt, lp].forEach((t) => t.release());
      }
    },
  });
}

// The layer norms with their row in registers ("regs": 256 invocations, "regs1024": 1024) on decode rows (1, 3, 8)
// and odd widths: below one value per invocation, PER 1..12 with a ragged last round (3072 = the published width,
// 4097 > 16 · 256 takes regs' WIDE fallback, PER 5 at 1024), f16 affine parameters (packed pairs, odd n).
const REGS_CASES: [number, number, "f32" | "f16"][] = [
  [1, 1, "f32"],
  [3, 37, "f16"],
  [8, 771, "f32"],
  [1, 3072, "f16"],
  [1, 4097, "f16"],
];
// Also with the PER loops unrolled (UNROLL, wgpu on GPUs; COGVIEW2_UNROLL=1 forces it), on wgpu only: the table
// never sets UNROLL for Dawn, and Mesa 25 compiles unrolled kernels slowly.
const unrollModes = ctx.gpu.backend === "wgpu" ? [false, true] : [false];
for (
  const [reduce, unroll] of (["regs", "regs1024"] as RowReduce[]).flatMap((r) =>
    unrollModes.map((u) => [r, u] as const)
  )
) {
  Deno.test(`layer norms with the row in registers (${reduce}${unroll ? ", unrolled" : ""}) match the CPU twins on decode rows`, async () => {
    await withEnv(UNROLL_ENV, unroll ? "1" : undefined, () => regsCase(reduce, unroll));
  });
}

async function regsCase(reduce: RowReduce, unroll: boolean) {
  assert.equal(unrollFor(ctx), unroll);
  assert.equal(
    rowReduceUsed(ctx, reduce),
    Math.min(ctx.gpu.limits.maxComputeInvocationsPerWorkgroup, ctx.gpu.limits.maxComputeWorkgroupSizeX) >=
        1024
      ? reduce
      : "regs",
  );
  for (const [rows, n, dtype] of REGS_CASES) {
    // A common offset checks the centred (two-pass) variance of both LayerNorms.
    const x = randn(rows * n, rows * 13 + n, 2).map((v) => v + 3), r = randn(rows * n, 3 + n, 3);
    const tg = ctx.upload(randn(n, 1, 0.2).map((v) => v + 1), [n], dtype),
      tb = ctx.upload(randn(n, 2, 0.1), [n], dtype);
    const tg2 = ctx.upload(randn(n, 5, 0.2).map((v) => v + 1), [n], dtype),
      tb2 = ctx.upload(randn(n, 6, 0.1), [n], dtype);
    const [g, b, g2, b2] = await Promise.all([tg, tb, tg2, tb2].map((t) => ctx.readF32(t)));
    const tx = ctx.upload(x, [rows, n]), tr = ctx.upload(r, [rows, n]);
    const tol = { atol: 5e-5, rtol: 1e-5 }, what = `${reduce} ${rows}x${n} ${dtype}`;
    const ln = layerNorm(ctx, tx, { weight: tg, bias: tb }, { eps: 1e-5, reduce });
    assertClose(`layerNorm ${what}`, await ctx.readF32(ln), layerNormRef(x, g, b, n, 1e-5), tol);
    const ro = ctx.empty([rows, n]), ro2 = ctx.empty([rows, n]);
    const { out } = layerNormResidual(ctx, tx, tr, { weight: tg, bias: tb }, {
      eps: 1e-5,
      residOut: ro,
      post: { weight: tg2, bias: tb2 },
      reduce,
    });
    layerNormResidual(ctx, tx, tr, { weight: tg, bias: tb }, { eps: 1e-5, residOut: ro2, reduce });
    const wantR = layerNormResidualRef(x, r, g, b, n, 1e-5);
    assertClose(`layerNormResidual ${what}`, await ctx.readF32(ro), wantR, tol);
    assertClose(`layerNormResidual (no post) ${what}`, await ctx.readF32(ro2), wantR, tol);
    assertClose(
      `layerNormResidual+post ${what}`,
      await ctx.readF32(out!),
      layerNormRef(wantR, g2, b2, n, 1e-5),
      tol,
    );
    [tx, tr, tg, tb, tg2, tb2, ln, ro, ro2, out!].forEach((t) => t.release());
  }
}

Deno.test("decode rows take the table's rowReduceDecode, other rows its rowReduce; the variable overrides both", () => {
  const c = choices(ctx);
  assert.equal(rowReduceFor(ctx, DECODE_ROWS), c.rowReduceDecode ?? c.rowReduce);
  assert.equal(rowReduceFor(ctx, DECODE_ROWS + 1), c.rowReduce);
  assert.equal(rowReduceFor(ctx, 1, "narrow"), "narrow");
  // dawn/gpu measured on the H200 (choices_test checks it against the record); wgpu/gpu unmeasured.
  assert.equal(CHOICES["wgpu/gpu"].rowReduceDecode, "regs");
  assert.equal(CHOICES["dawn/gpu"].rowReduceDecode, "regs1024");
  for (const key of ["wgpu/cpu", "dawn/cpu"]) {
    assert.equal(CHOICES[key].rowReduceDecode, undefined, `${key} unchanged`);
  }
});

Deno.test("COGVIEW2_ROW_REDUCE_DECODE: decode rows only, before COGVIEW2_ROW_REDUCE; a bad value names the variable", () => {
  const c = choices(ctx);
  const before = [Deno.env.get(ROW_REDUCE_DECODE_ENV), Deno.env.get("COGVIEW2_ROW_REDUCE")];
  try {
    Deno.env.set(ROW_REDUCE_DECODE_ENV, "narrow");
    Deno.env.delete("COGVIEW2_ROW_REDUCE");
    assert.equal(rowReduceFor(ctx, 1), "narrow");
    assert.equal(rowReduceFor(ctx, DECODE_ROWS), "narrow");
    assert.equal(rowReduceFor(ctx, DECODE_ROWS + 1), c.rowReduce, "SR / prompt rows keep the table's");
    assert.equal(rowReduceFor(ctx, 1, "wide"), "wide", "force first");
    Deno.env.set("COGVIEW2_ROW_REDUCE", "workgroup");
    assert.equal(rowReduceFor(ctx, 1), "narrow", "the decode variable wins on decode rows");
    assert.equal(rowReduceFor(ctx, DECODE_ROWS + 1), "workgroup");
    Deno.env.set(ROW_REDUCE_DECODE_ENV, "fastest");
    assert.throws(() => rowReduceFor(ctx, 1), /COGVIEW2_ROW_REDUCE_DECODE=fastest: expected workgroup/);
  } finally {
    const names = [ROW_REDUCE_DECODE_ENV, "COGVIEW2_ROW_REDUCE"];
    names.forEach((n, i) => before[i] === undefined ? Deno.env.delete(n) : Deno.env.set(n, before[i]!));
  }
});

Deno.test("asking for subgroup reductions without the feature names it", () => {
  if (ctx.gpu.subgroupSize) return; // the device has them: nothing to refuse
  assert.throws(() => rowReduceUsed(ctx, "subgroup"), /subgroups feature/);
});

Deno.test("COGVIEW2_ROW_REDUCE: a variant name overrides the table; another value is an error naming the variable", () => {
  assert.equal(rowReduceOverride(undefined), null);
  assert.equal(rowReduceOverride("wide"), "wide");
  assert.equal(rowReduceOverride("regs1024"), "regs1024");
  assert.throws(
    () => rowReduceOverride("fast"),
    /COGVIEW2_ROW_REDUCE=fast: expected workgroup, narrow, subgroup, wide, regs, regs1024/,
  );
});
