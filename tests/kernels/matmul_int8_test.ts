// int8 weights (per-group scales, dequantised in registers) through every matmul schedule, against the CPU twin:
// dequantizeInt8Ref then matmulStridedRef. The dequantisation is exact in f32 (a small integer times the scale), so
// the tolerance is the f32 accumulation-order bound of the f32 tests.
import assert from "node:assert/strict";
import { matmul, type MatmulVariant, resolveMatmul } from "../../src/kernels/matmul.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { dequantizeInt8Ref } from "../../src/reference/int8.ts";
import { groupFor, quantizeInt8 } from "../../src/formats/int8.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";

type Case = {
  M: number;
  N: number;
  K: number;
  G: number;
  pad: number;
  batch: number;
  epi: boolean;
  f16b: boolean;
};

// Odd M and N everywhere; K multiples of the group; W with a row pad and an offset of whole groups.
const CASES: Case[] = [
  { M: 1, N: 37, K: 64, G: 64, pad: 0, batch: 1, epi: false, f16b: false },
  { M: 3, N: 130, K: 192, G: 64, pad: 64, batch: 1, epi: true, f16b: true },
  { M: 17, N: 33, K: 256, G: 128, pad: 128, batch: 2, epi: true, f16b: false },
  { M: 97, N: 65, K: 48, G: 16, pad: 16, batch: 1, epi: true, f16b: true },
  { M: 7, N: 9, K: 96, G: 32, pad: 0, batch: 3, epi: false, f16b: true },
];

async function runCase(s: Case, variant: MatmulVariant | "auto", vec4 = true, constantW = false) {
  const ctx = await sharedContext();
  const { M, N, K, G, batch, epi } = s;
  const ldw = K + s.pad, wOff = s.pad;
  const wRaw = randn(wOff + N * ldw, N + K + G, 0.3);
  const { q, scales } = quantizeInt8(wRaw, G, G); // groups are runs of G elements, rows or not
  const w = dequantizeInt8Ref(q, scales, G);
  const a = randn(batch * M * K, M + 5);
  const biasRaw = randn(N, 3);
  const bias = s.f16b ? f16BitsToF32(f32ToF16Bits(biasRaw)) : biasRaw;
  const resid = randn(batch * M * N, 4);
  const tw = ctx.uploadInt8(q, scales, [q.length / G, G], G);
  const ta = ctx.upload(a, [batch * M, K]);
  const tb = ctx.upload(biasRaw, [N], s.f16b ? "f16" : "f32"), tr = ctx.upload(resid, [batch * M, N]);
  const o = { M, N, K, batch, ldw, wOff, ...(epi ? { alpha: 0.75, gelu: true } : {}) };
  const run = { ...o, variant, vec4, constantW, ...(epi ? { bias: tb, resid: tr } : {}) };
  const launch = resolveMatmul(ctx, ta, tw, run);
  const c = matmul(ctx, ta, tw, run);
  const want = matmulStridedRef(a, w, new Float32Array(batch * M * N), {
    ...o,
    ...(epi ? { bias, resid } : {}),
  });
  assertClose(
    `int8 ${launch.name} ${M}x${N}x${K} G=${G} batch=${batch} epilogue=${epi}`,
    await ctx.readF32(c),
    want,
    { atol: 2e-5 * Math.sqrt(K) + (epi ? 1e-4 : 0), rtol: 1e-5 },
  );
  [ta, tw, tb, tr, c].forEach((t) => t.release());
  return launch;
}

for (const variant of ["tiled", "direct", "gemv", "auto"] as const) {
  Deno.test(`matmul int8 W (${variant}) matches dequantise + the CPU twin on odd sizes`, async () => {
    for (const s of CASES) await runCase(s, variant);
  });
}

// Windows (CPU adapters): int8 stays int8 in the packed operand, scales interleaved per group of 8 rows; K over
// several chunks (2304 = 3 x 768 with 6 groups of 128 per chunk: two scale steps, the second half used), a cached
// constant W (run twice: the second call reuses the packed copy) and a per-call packed one.
const WINDOWS_CASES: Case[] = [
  ...CASES,
  { M: 5, N: 77, K: 2304, G: 128, pad: 0, batch: 1, epi: true, f16b: true },
  { M: 70, N: 19, K: 3072, G: 64, pad: 64, batch: 1, epi: false, f16b: false },
  // SR width: 2560 = 4 chunks of 640, 10 groups of 64 per chunk (3 scale steps of data, padded to 4).
  { M: 9, N: 21, K: 2560, G: 64, pad: 0, batch: 1, epi: true, f16b: true },
];
Deno.test("matmul int8 W (windows, constant and per-call packed) matches dequantise + the CPU twin", async () => {
  for (const s of WINDOWS_CASES) {
    for (const constantW of [true, false]) {
      const launch = await runCase(s, "windows", true, constantW);
      assert.equal(launch.name, "matmul_windows");
    }
  }
});

Deno.test("matmul int8 W: the scalar (non-vec4) path", async () => {
  const launch = await runCase(CASES[3], "direct", false);
  assert.equal(launch.vec4, false);
});

Deno.test("matmul int8 W: the ubo schedule", async () => {
  const launch = await runCase(
    { M: 37, N: 45, K: 128, G: 64, pad: 0, batch: 1, epi: true, f16b: true },
    "ubo",
  );
  assert.equal(launch.name, "matmul_ubo");
});

Deno.test("int8 quantiser: absmax groups, codes within ±127, error at most half a step", () => {
  const K = 128, G = 64;
  const w = randn(3 * K, 9);
  w[5] = 0; // a zero stays zero
  for (let i = 0; i < G; i++) w[K + i] = 0; // an all-zero group gets scale 0
  const { q, scales } = quantizeInt8(w, K, G);
  assert.equal(scales.length, 3 * K / G);
  assert.equal(scales[2], 0);
  const back = dequantizeInt8Ref(q, scales, G);
  for (let i = 0; i < w.length; i++) {
    assert.ok(Math.abs(q[i]) <= 127);
    assert.ok(Math.abs(back[i] - w[i]) <= scales[Math.floor(i / G)] / 2 + 1e-7, `element ${i}`);
  }
  assert.equal(back[5], 0);
  assert.equal(groupFor(64 * 3), 64);
  assert.equal(groupFor(48), 16);
  assert.equal(groupFor(40), null);
  assert.throws(() => quantizeInt8(w, 100, 64), /not a multiple/);
});

Deno.test("matmul rejects an i8 W without scales or with misaligned groups", async () => {
  const ctx = await sharedContext();
  const a = ctx.upload(randn(64, 1), [1, 64]);
  const { q, scales } = quantizeInt8(randn(2 * 64, 2), 64, 64);
  const w = ctx.uploadInt8(q, scales, [2, 64], 64);
  assert.throws(
    () => matmul(ctx, a, w, { M: 1, N: 1, K: 32, ldw: 64, wOff: 32 }),
    /multiples of its group 64/,
  );
  assert.throws(() => matmul(ctx, a, w, { M: 1, N: 2, K: 64, transW: false }), /transW/);
  const bare = ctx.upload(q, [2, 64], "i8");
  assert.throws(() => matmul(ctx, a, bare, { M: 1, N: 2, K: 64 }), /no scales/);
  [a, w, bare].forEach((t) => t.release());
});
