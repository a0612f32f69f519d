// gemvRows (shaders/gemv_rows.wgsl, the GPU decode GEMV) against the CPU matmul twin, every named variant: M = 1, 3,
// 5, 8 rows, odd N (columns past the last workgroup's), K a multiple of the load but not of 256 (several unrolled
// steps and a ragged last one), strided A/C with offsets, W with a row pad and an offset, f16 / f32 / int8 (group
// scales) W, every epilogue. Subgroup variants use subgroupAdd where the device has fixed-size subgroups (Dawn here:
// `COGVIEW2_GPU=dawn`), else the tree; the test names say which ran.
import assert from "node:assert/strict";
import {
  GEMV_VARIANTS,
  gemvReduceUsed,
  gemvRows,
  gemvRowsApplies,
  gemvVariantName,
  parseGemvVariant,
} from "../../src/kernels/gemv.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { CHOICES, choicesKey, gemvChoice } from "../../src/kernels/choices.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { dequantizeInt8Ref } from "../../src/reference/int8.ts";
import { quantizeInt8 } from "../../src/formats/int8.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

type W = "f16" | "f32" | "i8";
interface Case {
  M: number;
  K: number;
  w: W;
  /** W row pad = offset (elements; int8: whole groups). */
  pad: number;
  /** int8 scale group. */
  G?: number;
  epi: "none" | "bias16+gelu+resid" | "bias32+gelu+resid" | "bias32+resid";
}
const N = 37;
const CASES: Case[] = [
  { M: 1, K: 136, w: "f16", pad: 8, epi: "none" },
  { M: 3, K: 144, w: "i8", pad: 48, G: 48, epi: "bias16+gelu+resid" },
  { M: 5, K: 1096, w: "f32", pad: 4, epi: "bias32+gelu+resid" },
  { M: 8, K: 2056, w: "f16", pad: 0, epi: "bias32+resid" },
];

/** One case through gemvRows (variant by name, or the matmul() route when `viaMatmul`), against the twin. */
async function runCase(ctx: GpuContext, s: Case, variant: string | undefined, viaMatmul = false) {
  const { M, K } = s;
  const lda = K + 4, aOff = 4, ldc = N + 3, cOff = 2, ldw = K + s.pad, wOff = s.pad;
  const a = randn(aOff + M * lda, M + K, 1);
  const wRaw = randn(wOff + N * ldw, N + K + M, 0.2);
  let wt: Tensor, wq: Float32Array;
  if (s.w === "i8") {
    const { q, scales } = quantizeInt8(wRaw, s.G!, s.G!); // groups are runs of G elements along the padded rows
    wq = dequantizeInt8Ref(q, scales, s.G!);
    wt = ctx.uploadInt8(q, scales, [q.length / s.G!, s.G!], s.G!);
  } else {
    wq = s.w === "f16" ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw;
    wt = ctx.upload(wRaw, [wRaw.length], s.w);
  }
  const b16 = s.epi.startsWith("bias16");
  const biasRaw = randn(N, 5, 0.5), bias = b16 ? f16BitsToF32(f32ToF16Bits(biasRaw)) : biasRaw;
  const resid = randn(cOff + M * ldc, 9, 1);
  const at = ctx.upload(a, [a.length]), bt = ctx.upload(biasRaw, [N], b16 ? "f16" : "f32");
  const rt = ctx.upload(resid, [resid.length]);
  const withEpi = s.epi !== "none", gelu = s.epi.includes("gelu");
  const o = {
    M,
    N,
    K,
    lda,
    aOff,
    ldw,
    wOff,
    ldc,
    cOff,
    ...(withEpi ? { alpha: 0.75, gelu, bias: bt, resid: rt, rOff: cOff, ldr: ldc } : {}),
  };
  assert.ok(gemvRowsApplies(wt, o), `applies: ${JSON.stringify(s)}`);
  const out = ctx.empty([cOff + M * ldc]);
  const init = new Float32Array(out.size).fill(7);
  ctx.write(out, init);
  if (viaMatmul) matmul(ctx, at, wt, { ...o, out, constantW: true });
  else gemvRows(ctx, at, wt, { ...o, out, gemv: variant });
  const { bias: _b, resid: _r, ...layout } = o as typeof o & { bias?: Tensor; resid?: Tensor };
  const want = matmulStridedRef(a, wq, init.slice(), { ...layout, ...(withEpi ? { bias, resid } : {}) });
  // f32 sums of K products of O(0.2)·O(1) terms in a different order than the float64 twin; GELU in f32.
  assertClose(
    `gemv ${variant ?? "routed"} ${s.w} M=${M} K=${K} ${s.epi}`,
    await ctx.readF32(out),
    want,
    { atol: 3e-6 * Math.sqrt(K) + 2e-5, rtol: 1e-4 },
  );
  [at, wt, bt, rt, out].forEach((t) => t.release());
}

const ctx0 = await sharedContext();
// The named variants, and 8 lanes per column (one lavapipe subgroup: the single-subgroup store path that 32 lanes
// take on 32-wide hardware).
for (const name of [...Object.keys(GEMV_VARIANTS), "l8g8c2u2-sg"]) {
  const reduce = gemvReduceUsed(ctx0, parseGemvVariant(name));
  Deno.test(`gemvRows "${name}" (${GEMV_VARIANTS[name] ?? "spec"}, ${reduce} here) matches the CPU twin (M 1/3/5/8, f16/f32/int8 W, epilogues, strides)`, async () => {
    for (const s of CASES) await runCase(ctx0, s, name);
  });
}

Deno.test("gemvRows: variant specs parse, bad names say what is accepted, layouts it does not take", async () => {
  const ctx = await sharedContext();
  assert.deepEqual(parseGemvVariant("l64g2c4u2-tree"), {
    lanes: 64,
    groups: 2,
    cols: 4,
    unroll: 2,
    reduce: "tree",
  });
  assert.throws(() => parseGemvVariant("u8"), /unknown GEMV variant "u8".*rows8/);
  assert.throws(() => parseGemvVariant("l64g8c1u1-sg"), /exceed 256/);
  // Without fixed-size subgroups a subgroup variant runs the tree.
  const noSg = new GpuContext({ ...ctx.gpu, subgroupSize: null });
  assert.equal(gemvReduceUsed(noSg, parseGemvVariant("u4")), "tree");
  // The option beats COGVIEW2_GEMV, which beats the table; a bad name in the variable names it.
  assert.equal(gemvVariantName(ctx, { M: 1, gemv: "u2" }, "c4u1"), "u2");
  assert.equal(gemvVariantName(ctx, { M: 1 }, "l64g2c1u4-sg"), "l64g2c1u4-sg");
  assert.equal(gemvVariantName(ctx, { M: 3 }, ""), gemvChoice(ctx, 3));
  assert.throws(() => gemvVariantName(ctx, { M: 1 }, "fast"), /COGVIEW2_GEMV=fast: .*unknown GEMV variant/);
  // Every table entry names variants; a per-class entry is read by M.
  for (const [key, c] of Object.entries(CHOICES)) {
    for (const v of typeof c.gemv === "string" ? [c.gemv] : Object.values(c.gemv)) {
      assert.ok(parseGemvVariant(v), key);
    }
  }
  const key = choicesKey(ctx), saved = CHOICES[key].gemv;
  try {
    CHOICES[key].gemv = { m1: "u4", m2_4: "c2u2", m5_8: "c8u2" };
    assert.deepEqual([1, 2, 4, 5, 8].map((M) => gemvVariantName(ctx, { M }, "")), [
      "u4",
      "c2u2",
      "c2u2",
      "c8u2",
      "c8u2",
    ]);
  } finally {
    CHOICES[key].gemv = saved;
  }
  // Layouts it does not take: K not a multiple of 8 (f16), 9 rows, int8 groups not a multiple of 16.
  const w = ctx.empty([4, 12], "f16");
  assert.equal(gemvRowsApplies(w, { M: 1, N: 4, K: 12 }), false);
  assert.equal(gemvRowsApplies(w, { M: 9, N: 4, K: 8, ldw: 12 }), false);
  w.release();
  const { q, scales } = quantizeInt8(randn(4 * 24, 1), 24, 8);
  const w8 = ctx.uploadInt8(q, scales, [4, 24], 8);
  assert.equal(gemvRowsApplies(w8, { M: 1, N: 4, K: 16, ldw: 24 }), false);
  w8.release();
});

Deno.test("matmul on a GPU adapter routes decode rows to gemvRows (same device, isFallback false), f16 and int8, and matches the CPU; CPU adapters do not", async () => {
  const shared = await sharedContext();
  const ctx = shared.withGpuSchedules();
  for (const s of [CASES[0], CASES[1]]) {
    assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
    await runCase(ctx, s, undefined, true);
    assert.deepEqual((await ctx.stopProfile()).map((k) => k.name), ["gemv_rows"], s.w);
  }
  // The CPU adapter itself (lavapipe: isFallback) keeps its own decode schedule.
  if (shared.gpu.isFallback) {
    assert.ok(shared.startProfile());
    await runCase(shared, CASES[0], undefined, true);
    assert.ok(!(await shared.stopProfile()).some((k) => k.name === "gemv_rows"), "CPU adapter ran gemv_rows");
  }
});
