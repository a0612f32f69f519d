import assert from "node:assert/strict";
import {
  localSimilar,
  localWeighting,
  qkvRows,
  srAttentionOverride,
  srLocalAttention,
} from "../../src/kernels/local_attention.ts";
import { softmax } from "../../src/kernels/softmax.ts";
import { CHOICES, choicesKey, UNROLL_ENV, unrollFor } from "../../src/kernels/choices.ts";
import {
  fSimilarRef,
  fWeightingRef,
  softmaxLastRef,
  srAttentionRef,
} from "../../src/reference/local_attention.ts";
import { patchSize } from "../../src/geometry/sr.ts";
import { assertClose, randn, sharedContext, withEnv } from "../_util.ts";

// f32 dot products of ≤ 33 terms of N(0,1) values: the GPU and the CPU differ only by summation rounding.
const SCORE_TOL = { atol: 2e-5, rtol: 1e-5 };

Deno.test("localSimilar / localWeighting match f_similar / f_weighting (same grid, causal, cross-resolution, batch expand)", async () => {
  const ctx = await sharedContext();
  const cases = [
    { B: 2, Bk: 2, C: 8, H: 9, W: 7, h: 9, w: 7, kH: 9, kW: 5, causal: false },
    { B: 3, Bk: 3, C: 5, H: 11, W: 13, h: 11, w: 13, kH: 9, kW: 5, causal: true },
    { B: 2, Bk: 2, C: 7, H: 12, W: 12, h: 4, w: 4, kH: 5, kW: 5, causal: false },
    { B: 4, Bk: 2, C: 3, H: 9, W: 6, h: 3, w: 2, kH: 3, kW: 3, causal: true },
    { B: 1, Bk: 1, C: 33, H: 1, W: 1, h: 1, w: 1, kH: 4, kW: 2, causal: false },
  ];
  for (const [n, c] of cases.entries()) {
    const what = JSON.stringify(c);
    const q = randn(c.B * c.C * c.H * c.W, 10 + n), k = randn(c.Bk * c.C * c.h * c.w, 20 + n);
    const v = randn(c.Bk * c.C * c.h * c.w, 30 + n);
    const win = { kH: c.kH, kW: c.kW, causal: c.causal };
    const P = patchSize(c.kH, c.kW, c.causal);
    const tq = ctx.upload(q, [c.B, c.C, c.H, c.W]), tk = ctx.upload(k, [c.Bk, c.C, c.h, c.w]);
    const tv = ctx.upload(v, [c.Bk, c.C, c.h, c.w]);
    const s = localSimilar(ctx, tq, tk, win);
    assert.deepEqual(s.shape, [c.B, c.H, c.W, P]);
    const sRef = fSimilarRef(q, [c.B, c.C, c.H, c.W], k, [c.Bk, c.C, c.h, c.w], win);
    assertClose(`similar ${what}`, await ctx.readF32(s), sRef, SCORE_TOL);
    softmax(ctx, s, { rows: c.B * c.H * c.W, n: P, out: s });
    const pRef = softmaxLastRef(sRef, P);
    const out = localWeighting(ctx, tv, s, win);
    assert.deepEqual(out.shape, [c.B, c.C, c.H, c.W]);
    assertClose(
      `weighting ${what}`,
      await ctx.readF32(out),
      fWeightingRef(v, [c.Bk, c.C, c.h, c.w], pRef, [c.B, c.H, c.W, P], win),
      {
        atol: 2e-5,
        rtol: 1e-4,
      },
    );
    [tq, tk, tv, s, out].forEach((t) => t.release());
  }
});

Deno.test("localSimilar rejects grids that do not divide and even causal windows", async () => {
  const ctx = await sharedContext();
  const q = ctx.empty([2, 3, 5, 5]), k = ctx.empty([2, 3, 2, 2]), k5 = ctx.empty([2, 3, 5, 5]);
  assert.throws(() => localSimilar(ctx, q, k, { kH: 3, kW: 3 }), /not a multiple of the key grid/);
  assert.throws(() => localSimilar(ctx, q, k5, { kH: 4, kW: 3, causal: true }), /odd sides/);
  [q, k, k5].forEach((t) => t.release());
});

interface FusedCase {
  batch: number;
  heads: number;
  headDim: number;
  side: number;
  kernelSize: number;
  mode: "lowres" | "text" | "none";
  low?: number;
  kernelSize2?: number;
  text?: number;
  mask?: "none" | "shared" | "batch";
  logw?: boolean;
  addScalar?: number;
  /** queriesPerInvocation (default: the adapter's choice). */
  g?: number;
  /** The uniform-window variant forced on / off (default: the adapter's choice), its query rows per tile. */
  windows?: boolean;
  tileRows?: number;
  /** The tiled (K/V-once, workgroup memory) GPU variant forced on / off. */
  tiles?: boolean;
}

async function runFused(c: FusedCase, seed: number) {
  const ctx = await sharedContext();
  const { batch, heads, headDim, side } = c;
  const hidden = heads * headDim, S = side * side;
  // Level-1 tokens sit after `pre` other tokens in their QKV (iterative SR: text first; DSR: own QKV, pre = 0).
  const T = c.text ?? 0, L = c.low ?? 0, textLen = 3;
  const pre = c.mode === "text" ? T : 0;
  const seq1 = pre + S;
  const qkv1 = randn(batch * seq1 * 3 * hidden, seed);
  // DSR level-0 QKV: textLen text tokens then the L×L low-res grid.
  const seq0 = textLen + L * L;
  const qkv0 = randn(batch * seq0 * 3 * hidden, seed + 1);
  const host = (data: Float32Array, part: number, seqLen: number, first: number) => ({
    data,
    offset: first * 3 * hidden + part * hidden,
    rowStride: 3 * hidden,
    batchStride: seqLen * 3 * hidden,
  });
  const mBatch = c.mask === "batch" ? batch : 1;
  const maskHost = c.mask && c.mask !== "none"
    ? Float32Array.from({ length: mBatch * T }, (_, i) => (i % T === 0 || (i * 7) % 5 === 1 ? 0 : 1))
    : undefined;
  const logwHost = c.logw ? randn(mBatch * T, seed + 2, 0.5) : undefined;
  const ref = srAttentionRef({
    batch,
    heads,
    headDim,
    side,
    kernelSize: c.kernelSize,
    q: host(qkv1, 0, seq1, pre),
    k: host(qkv1, 1, seq1, pre),
    v: host(qkv1, 2, seq1, pre),
    lowres: c.mode === "lowres"
      ? {
        side: L,
        kernelSize: c.kernelSize2!,
        k: host(qkv0, 1, seq0, textLen),
        v: host(qkv0, 2, seq0, textLen),
        addScalar: c.addScalar,
      }
      : undefined,
    text: c.mode === "text"
      ? {
        length: T,
        k: host(qkv1, 1, seq1, 0),
        v: host(qkv1, 2, seq1, 0),
        mask: maskHost,
        logWeights: logwHost,
      }
      : undefined,
  });
  const t1 = ctx.upload(qkv1, [batch * seq1, 3 * hidden]), t0 = ctx.upload(qkv0, [batch * seq0, 3 * hidden]);
  const tm = maskHost ? ctx.upload(maskHost, [mBatch, T]) : undefined;
  const tl = logwHost ? ctx.upload(logwHost, [mBatch, T]) : undefined;
  // Output written into rows of a wider buffer at the level-1 tokens' place (as the iterative SR model's concat).
  const out = ctx.empty([batch * seq1, hidden]);
  ctx.write(out, new Float32Array(batch * seq1 * hidden).fill(7));
  const r1 = (p: "q" | "k" | "v") => qkvRows(t1, p, { hidden, seqLen: seq1, firstToken: pre });
  srLocalAttention(ctx, {
    batch,
    heads,
    headDim,
    side,
    kernelSize: c.kernelSize,
    q: r1("q"),
    k: r1("k"),
    v: r1("v"),
    lowres: c.mode === "lowres"
      ? {
        side: L,
        kernelSize: c.kernelSize2!,
        k: qkvRows(t0, "k", { hidden, seqLen: seq0, firstToken: textLen }),
        v: qkvRows(t0, "v", { hidden, seqLen: seq0, firstToken: textLen }),
        addScalar: c.addScalar,
      }
      : undefined,
    text: c.mode === "text"
      ? {
        length: T,
        k: qkvRows(t1, "k", { hidden, seqLen: seq1 }),
        v: qkvRows(t1, "v", { hidden, seqLen: seq1 }),
        mask: tm,
        logWeights: tl,
      }
      : undefined,
    out: { tensor: out, offset: pre * hidden, rowStride: hidden, batchStride: seq1 * hidden },
    queriesPerInvocation: c.g,
    windows: c.windows,
    tileRows: c.tileRows,
    tiles: c.tiles,
  });
  const got = await ctx.readF32(out);
  const mine = new Float32Array(batch * S * hidden);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq1; t++) {
      for (let x = 0; x < hidden; x++) {
        const g = got[(b * seq1 + t) * hidden + x];
        if (t < pre) assert.equal(g, 7, `row ${b},${t} before the grid was overwritten`);
        else mine[(b * S + t - pre) * hidden + x] = g;
      }
    }
  }
  // Softmax-weighted means of N(0,1) values; online vs two-pass softmax and f32 sums differ by ~1e-6.
  assertClose(`srLocalAttention ${JSON.stringify(c)}`, mine, ref, { atol: 3e-5, rtol: 1e-4 });
  [t1, t0, tm, tl, out].forEach((t) => t?.release());
}

Deno.test("srLocalAttention (DSR: 9x5 window + low-res 5x5 window, one softmax) matches the composed reference", async () => {
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 16,
    side: 12,
    kernelSize: 5,
    mode: "lowres",
    low: 4,
    kernelSize2: 5,
  }, 1);
  await runFused({
    batch: 1,
    heads: 3,
    headDim: 16,
    side: 9,
    kernelSize: 5,
    mode: "lowres",
    low: 3,
    kernelSize2: 5,
    addScalar: 0.7,
  }, 2);
  await runFused({
    batch: 3,
    heads: 2,
    headDim: 5,
    side: 7,
    kernelSize: 3,
    mode: "lowres",
    low: 7,
    kernelSize2: 3,
  }, 3);
});

Deno.test("srLocalAttention (iterative SR: window + all text keys with mask / log-weights) matches the composed reference", async () => {
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 16,
    side: 9,
    kernelSize: 5,
    mode: "text",
    text: 5,
    mask: "shared",
    logw: true,
  }, 4);
  await runFused({
    batch: 3,
    heads: 2,
    headDim: 16,
    side: 7,
    kernelSize: 5,
    mode: "text",
    text: 4,
    mask: "batch",
  }, 5);
  await runFused({ batch: 1, heads: 1, headDim: 7, side: 11, kernelSize: 2, mode: "text", text: 1 }, 6);
  await runFused({ batch: 2, heads: 2, headDim: 16, side: 13, kernelSize: 5, mode: "none" }, 7);
  await runFused({ batch: 1, heads: 2, headDim: 6, side: 9, kernelSize: 3, mode: "none", g: 3 }, 8);
});

Deno.test({
  name:
    "srLocalAttention with its channel and query loops unrolled (UNROLL: wgpu on GPUs) matches the composed reference",
  // The table sets UNROLL for wgpu on GPUs only; COGVIEW2_UNROLL=1 expands the loops on any adapter (Dawn: not run,
  // as flash_attention_test's unrolled case: Mesa 25 compiles unrolled kernels slowly and the table never asks it).
  ignore: (await sharedContext()).gpu.backend !== "wgpu",
  async fn() {
    const ctx = await sharedContext();
    await withEnv(UNROLL_ENV, "1", async () => {
      assert.equal(unrollFor(ctx), true);
      // The GPUs' per-query route (vec4 views, one query per invocation): DSR and iterative SR.
      const q = { g: 1, windows: false, tiles: false };
      await runFused({
        batch: 2,
        heads: 2,
        headDim: 16,
        side: 12,
        kernelSize: 5,
        mode: "lowres",
        low: 4,
        kernelSize2: 5,
        addScalar: 0.7,
        ...q,
      }, 31);
      await runFused({
        batch: 2,
        heads: 2,
        headDim: 16,
        side: 9,
        kernelSize: 5,
        mode: "text",
        text: 5,
        mask: "shared",
        logw: true,
        ...q,
      }, 32);
      // Scalar views and three queries per invocation (the query loop unrolled too), and the tiled variant.
      await runFused({ batch: 1, heads: 2, headDim: 6, side: 9, kernelSize: 3, mode: "none", g: 3 }, 33);
      await runFused({
        batch: 1,
        heads: 3,
        headDim: 24,
        side: 20,
        kernelSize: 5,
        mode: "lowres",
        low: 10,
        kernelSize2: 5,
        tiles: true,
      }, 34);
    });
  },
});

Deno.test("srLocalAttention tiled variant (16x4 queries per workgroup, K/V once through workgroup memory) matches the composed reference", async () => {
  // Grids smaller and larger than a 16x4 tile (partial tiles at the right and bottom), low-res ratios 1-3, channel
  // chunks of 4 vec4 (headDim 16, 64: 1 and 4 chunks) and of 3 (headDim 24: 2 chunks), text keys with mask / log
  // weights, no extra keys.
  const ctx = await sharedContext();
  assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
  const t = { tiles: true };
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 16,
    side: 12,
    kernelSize: 5,
    mode: "lowres",
    low: 4,
    kernelSize2: 5,
    ...t,
  }, 21);
  await runFused({
    batch: 1,
    heads: 3,
    headDim: 24,
    side: 20,
    kernelSize: 5,
    mode: "lowres",
    low: 10,
    kernelSize2: 5,
    addScalar: 0.7,
    ...t,
  }, 22);
  await runFused({
    batch: 1,
    heads: 1,
    headDim: 16,
    side: 7,
    kernelSize: 3,
    mode: "lowres",
    low: 7,
    kernelSize2: 3,
    ...t,
  }, 23);
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 64,
    side: 18,
    kernelSize: 5,
    mode: "text",
    text: 5,
    mask: "batch",
    logw: true,
    ...t,
  }, 24);
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 16,
    side: 9,
    kernelSize: 5,
    mode: "text",
    text: 5,
    mask: "shared",
    logw: true,
    ...t,
  }, 25);
  await runFused({ batch: 1, heads: 2, headDim: 8, side: 13, kernelSize: 5, mode: "none", ...t }, 26);
  const names = (await ctx.stopProfile()).map((k) => k.name).sort();
  assert.deepEqual(
    names,
    ["sr_local_attention_tiles", "sr_local_attention_tiles_lowres", "sr_local_attention_tiles_text"],
    "the tiled kernels ran",
  );
  await assert.rejects(
    () =>
      runFused({ batch: 1, heads: 1, headDim: 7, side: 11, kernelSize: 2, mode: "text", text: 1, ...t }, 27),
    /the tiled variant needs vec4 views/,
  );
  assert.equal(srAttentionOverride(undefined), null);
  assert.equal(srAttentionOverride("tiles"), "tiles");
  assert.throws(() => srAttentionOverride("flash"), /COGVIEW2_SR_ATTENTION=flash: expected query or tiles/);
  // Routing on a GPU adapter (same device, isFallback false): the table's srAttention picks the schedule.
  const gpu = ctx.withGpuSchedules();
  const table = CHOICES[choicesKey(gpu)], saved = table.srAttention;
  const qkv = gpu.upload(randn(16 * 12, 9), [16, 12]);
  const r = (p: "q" | "k" | "v") => qkvRows(qkv, p, { hidden: 4, seqLen: 16 });
  const call = () =>
    srLocalAttention(gpu, {
      batch: 1,
      heads: 1,
      headDim: 4,
      side: 4,
      kernelSize: 3,
      q: r("q"),
      k: r("k"),
      v: r("v"),
    });
  try {
    for (
      const [schedule, kernel] of [["tiles", "sr_local_attention_tiles"], [
        "query",
        "sr_local_attention",
      ]] as const
    ) {
      table.srAttention = schedule;
      assert.ok(gpu.startProfile());
      call().release();
      assert.deepEqual((await gpu.stopProfile()).map((k) => k.name), [kernel], `table says ${schedule}`);
    }
  } finally {
    table.srAttention = saved;
    qkv.release();
  }
});

Deno.test("srLocalAttention uniform-window variant (packed K/V in 64 KiB windows, several tiles) matches the composed reference", async () => {
  // headDim 32/48/64: 2-4 windows of 16 channels per K and V; tiles of a few query rows, so window starts are clamped
  // at the top (y0 = 0), move down the grid and the last tile is short; low-res windows start at the tile's rows.
  const ctx = await sharedContext();
  assert.ok(ctx.startProfile(), "lavapipe has timestamp queries (kernel names come from the profile)");
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 32,
    side: 12,
    kernelSize: 5,
    mode: "lowres",
    low: 4,
    kernelSize2: 5,
    windows: true,
    tileRows: 3,
  }, 11);
  const names = (await ctx.stopProfile()).map((k) => k.name);
  assert.ok(names.includes("sr_local_attention_windows_lowres"), `kernels run: ${names}`);
  await runFused({
    batch: 1,
    heads: 1,
    headDim: 48,
    side: 9,
    kernelSize: 5,
    mode: "lowres",
    low: 3,
    kernelSize2: 5,
    addScalar: 0.7,
    windows: true,
    tileRows: 6,
  }, 12);
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 64,
    side: 13,
    kernelSize: 5,
    mode: "text",
    text: 5,
    mask: "batch",
    logw: true,
    windows: true,
    tileRows: 2,
  }, 13);
  await runFused({
    batch: 1,
    heads: 3,
    headDim: 16,
    side: 9,
    kernelSize: 5,
    mode: "text",
    text: 4,
    mask: "shared",
    windows: true,
    tileRows: 6,
    g: 3,
  }, 14);
  await runFused({
    batch: 1,
    heads: 2,
    headDim: 16,
    side: 11,
    kernelSize: 3,
    mode: "none",
    windows: true,
    tileRows: 4,
  }, 15);
  // headDim 32 on an even grid: 2 queries per invocation (the CPU default at wide heads), windows and storage.
  await runFused({
    batch: 2,
    heads: 2,
    headDim: 32,
    side: 10,
    kernelSize: 5,
    mode: "text",
    text: 3,
    mask: "shared",
    logw: true,
    windows: true,
    tileRows: 4,
    g: 2,
  }, 17);
  await runFused({
    batch: 1,
    heads: 2,
    headDim: 32,
    side: 10,
    kernelSize: 5,
    mode: "text",
    text: 3,
    windows: false,
    g: 2,
  }, 18);
  // Where it cannot apply (headDim not a multiple of 16), forcing it is an error.
  await assert.rejects(
    () =>
      runFused({ batch: 1, heads: 1, headDim: 6, side: 5, kernelSize: 3, mode: "none", windows: true }, 16),
    /uniform-window variant does not apply/,
  );
});

Deno.test("srLocalAttention validates its views", async () => {
  const ctx = await sharedContext();
  const qkv = ctx.empty([2 * 16, 3 * 8]);
  const r = (p: "q" | "k" | "v", seqLen = 16) => qkvRows(qkv, p, { hidden: 8, seqLen });
  const base = { batch: 2, heads: 2, headDim: 4, side: 4, kernelSize: 3 };
  assert.throws(
    () => srLocalAttention(ctx, { ...base, q: r("q", 17), k: r("k"), v: r("v") }),
    /reaches element/,
  );
  assert.throws(
    () => srLocalAttention(ctx, { ...base, q: r("q"), k: r("k"), v: r("v"), out: qkv }),
    /reaches element|share a buffer/,
  );
  assert.throws(
    () =>
      srLocalAttention(ctx, {
        ...base,
        q: r("q"),
        k: r("k"),
        v: r("v"),
        lowres: { side: 3, kernelSize: 3, k: r("k"), v: r("v") },
      }),
    /does not divide/,
  );
  assert.throws(
    () => srLocalAttention(ctx, { ...base, q: r("q"), k: r("k"), v: r("v"), queriesPerInvocation: 3 }),
    /must divide/,
  );
  qkv.release();
});
