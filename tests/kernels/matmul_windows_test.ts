// The "windows" matmul schedule (constant W repacked, both operands in 64 KiB uniform windows; CPU adapters)
// against the CPU twin: several A windows with a ragged last one, N not a multiple of 8, K split into chunks that
// accumulate in C, strided A, W offsets and strides, f32/f16 W and the epilogue (applied after the last chunk).
import assert from "node:assert/strict";
import { matmul, resolveMatmul } from "../../src/kernels/matmul.ts";
import { cpuMatmulSchedule } from "../../src/kernels/choices.ts";
import { packedLayout, planWindows, windowsChunk, windowsShader } from "../../src/kernels/matmul_windows.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { assertClose, randn, sharedContext } from "../_util.ts";
import { matmulCase } from "./_matmul_case.ts";

Deno.test("matmul windows: chunks, windows, ragged edges, f32/f16 W and the epilogue match the CPU reference", async () => {
  const ctx = await sharedContext();
  // [M, N, K, lda, epilogue]. K=64: 256-row A windows (M=301 takes two), 8 W groups per lane from one window;
  // K=1024: 16-row windows, one group per lane from each of 8 windows; K=2560: four 640-wide chunks; M=3: a
  // 3x12 tile over 12 windows.
  const cases: [number, number, number, number, boolean][] = [
    [301, 37, 64, 64, true],
    [37, 45, 1024, 1024, false],
    [45, 70, 2560, 2568, true],
    [19, 203, 144, 148, true],
    [3, 203, 1024, 1032, true], // decode-like: 3 rows per lane, 12 W windows
  ];
  for (const f16 of [false, true]) {
    for (const [M, N, K, lda, epi] of cases) {
      const t = matmulCase(ctx, { M, N, K, lda, epi, f16, aOff: 4, wPad: 8 });
      assert.equal(resolveMatmul(ctx, t.a, t.w, { ...t.o, variant: "windows" }).plan.variant, "windows");
      // Constant W twice (the second call reuses the cached packed weight), then packed for the call only.
      for (const [rep, constantW] of [[1, true], [2, true], [3, false]] as const) {
        matmul(ctx, t.a, t.w, { ...t.run, variant: "windows", constantW });
        assertClose(
          `windows ${t.label} call ${rep} constantW=${constantW}`,
          await ctx.readF32(t.c),
          t.want,
          t.tol,
        );
      }
      t.release();
    }
  }
});

Deno.test("matmul windows: activations as W, stored [K,N], per-head batches match the CPU reference", async () => {
  const ctx = await sharedContext();
  // Attention-like: 3 heads, scores = Q·Kᵀ (W [N,K] per head), then out = P·V (V stored [N, d] per head: W [K,N]).
  const B = 3, M = 70, N = 45, d = 64;
  const q = randn(B * M * d, 1), k = randn(B * N * d, 2), v = randn(B * N * d, 3);
  const tq = ctx.upload(q, [q.length]), tk = ctx.upload(k, [k.length]), tv = ctx.upload(v, [v.length]);
  const oS = { M, N, K: d, batch: B, wBatchStride: N * d, variant: "windows" as const };
  const s = matmul(ctx, tq, tk, oS);
  const wantS = matmulStridedRef(q, k, new Float32Array(B * M * N), oS);
  assertClose("windows Q·Kᵀ heads", await ctx.readF32(s), wantS, { atol: 2e-5 * Math.sqrt(d), rtol: 1e-5 });
  // K must be a multiple of 8: the first 40 of the 45 key rows.
  const oO = {
    M,
    N: d,
    K: 40,
    lda: N,
    aBatchStride: M * N,
    transW: false,
    ldw: d,
    wBatchStride: N * d,
    batch: B,
    variant: "windows" as const,
  };
  const o2 = matmul(ctx, s, tv, oO);
  const want2 = matmulStridedRef(wantS, v, new Float32Array(B * M * d), oO);
  assertClose("windows P·V heads ([K,N] W)", await ctx.readF32(o2), want2, { atol: 2e-4, rtol: 1e-5 });
  [tq, tk, tv, s, o2].forEach((t) => t.release());
});

Deno.test("matmul windows: taken automatically on CPU adapters for weights, and for activations from M = 64", async () => {
  const ctx = await sharedContext();
  const ta = ctx.upload(new Float32Array(64 * 32), [64, 32]),
    tw = ctx.upload(new Float32Array(16 * 32), [16, 32]);
  const o = { M: 64, N: 16, K: 32 };
  const cpu = ctx.gpu.isFallback;
  // CPU adapters: the backend's measured schedule for this class (src/kernels/choices.ts: windows on wgpu, ubo on
  // Dawn's lavapipe for K <= 128).
  const want = (M: number) => cpu ? cpuMatmulSchedule(ctx, M, 32) : "tiled";
  assert.equal(resolveMatmul(ctx, ta, tw, o).plan.variant, want(64));
  assert.notEqual(resolveMatmul(ctx, ta, tw, { ...o, M: 32 }).plan.variant, "windows"); // too few rows to pack
  assert.equal(
    resolveMatmul(ctx, ta, tw, { ...o, M: 32, constantW: true }).plan.variant,
    want(32),
  );
  // K that cannot be chunked (not a multiple of 8) keeps the other schedules; asking for windows names K.
  const tk = ctx.upload(new Float32Array(64 * 36), [64, 36]),
    twk = ctx.upload(new Float32Array(16 * 36), [16, 36]);
  assert.notEqual(
    resolveMatmul(ctx, tk, twk, { M: 64, N: 16, K: 36 }).plan.variant,
    "windows",
  );
  assert.throws(() => resolveMatmul(ctx, tk, twk, { M: 64, N: 16, K: 36, variant: "windows" }), /K=36/);
  [ta, tw, tk, twk].forEach((t) => t.release());
});

Deno.test("matmul windows: chunking and tile plans", () => {
  assert.equal(windowsChunk(1024, false), 1024);
  assert.equal(windowsChunk(4096, false), 1024);
  assert.equal(windowsChunk(1920, true), 960);
  assert.equal(windowsChunk(36, false), null);
  assert.equal(windowsChunk(24, true), null);
  const p = planWindows(1024, 1024, 1024, false);
  assert.deepEqual([p.ra, p.r, p.gw, p.nw, p.cpl, p.chunks], [16, 8, 2, 8, 1, 1]);
  const q = planWindows(3600, 192, 64, true);
  assert.deepEqual([q.ra, q.r, q.gw, q.nw, q.cpl], [256, 16, 24, 1, 8]);
  const code = windowsShader({
    r: 2,
    nw: 3,
    cpl: 1,
    f16: false,
    bias: true,
    biasF16: false,
    biasRow: false,
    gelu: true,
    resid: false,
    accum: true,
    final: true,
  });
  assert.match(code, /var<uniform> W2: array<vec4<u32>, 4096>/);
  assert.match(code, /v \+= C\[i\];/);
  assert.equal((code.match(/var acc/g) ?? []).length, 6);
});

Deno.test("matmul windows: a packed copy larger than the max storage binding is packed in bound pieces", async () => {
  const shared = await sharedContext();
  // The same device with the binding limit lowered to 1 MiB: W [255, 1024] f32 is 1,044,480 bytes (fits), its packed
  // copy (padded groups + one 64 KiB window of slack) does not, as a vocabulary table's row block at the limit.
  const limit = 2 ** 20;
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: limit },
  });
  for (const f16 of [false, true]) {
    const K = 1024, N = f16 ? 511 : 255;
    const t = matmulCase(ctx, { M: 37, N, K, lda: K, epi: true, f16, aOff: 0, wPad: 0 });
    assert.ok(t.w.byteLength <= limit, `W ${t.w.byteLength} bytes fits the binding`);
    const pl = planWindows(1, N, K, f16);
    assert.ok(packedLayout(pl, N).words * 4 > limit, "the packed copy exceeds the binding");
    for (const constantW of [true, false]) {
      matmul(ctx, t.a, t.w, { ...t.run, variant: "windows", constantW });
      assertClose(
        `windows split pack ${t.label} constantW=${constantW}`,
        await ctx.readF32(t.c),
        t.want,
        t.tol,
      );
    }
    t.release();
  }
});
