import assert from "node:assert/strict";
import {
  attention,
  attentionSplitFor,
  attentionSplitOverride,
  attentionWgOverride,
  kvStore,
} from "../../src/kernels/attention.ts";
import { CHOICES, UNROLL_ENV, unrollFor } from "../../src/kernels/choices.ts";
import type { GpuContext } from "../../src/gpu/context.ts";
import { coglmMaskRef, logWeightsRef, standardAttentionRef } from "../../src/reference/attention.ts";
import { assertClose, randn, sharedContext, withEnv } from "../_util.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";

// [heads, d, rows, keys, ctxCols]: head sizes that divide the workgroup (16, 64), that do not (37), larger than it
// (129); more keys than one 1024-key chunk.
const CASES: [number, number, number, number, number][] = [
  [4, 16, 13, 13, 9],
  [3, 37, 7, 7, 3],
  [2, 64, 5, 5, 0],
  [1, 129, 3, 3, 2],
  [2, 16, 3, 1301, 700],
];

function slice(a: Float32Array, rows: number, ld: number, off: number, w: number): Float32Array {
  const o = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) o.set(a.subarray(off + r * ld, off + r * ld + w), r * w);
  return o;
}

Deno.test("attention over a packed QKV buffer (CogLM mask, log-weights, batches) matches SAT's standard_attention", async () => {
  const ctx = await sharedContext();
  for (const [heads, d, rows0, keys, ctxCols] of CASES) {
    for (
      const [vec4, wg, path] of [
        [true, 32, "fused"],
        [false, 64, "fused"],
        [true, 256, "fused"], // GPUs' decode width: 4 key groups at d = 64, 16 at d = 16, one dim each at 37 / 129
        [true, 32, "matmul"],
        [true, 32, "flash"],
      ] as const
    ) {
      if (path === "flash" && d > 128) continue; // flashAttention takes head sizes up to 128
      const w = heads * d, batch = 2;
      // Prefill: queries = keys (rows = keys, causal offset 0); the long case uses its last 3 rows only.
      const rows = rows0 === keys ? keys : rows0;
      const causalOffset = keys - rows;
      const qkv = randn(batch * keys * 3 * w, heads * d + keys, 1.5);
      const t = ctx.upload(qkv, [batch * keys, 3 * w]);
      const out = ctx.empty([batch * rows, w]);
      const bs = keys * 3 * w;
      attention(ctx, {
        batch,
        heads,
        headDim: d,
        rows,
        keys,
        q: { t, off: causalOffset * 3 * w, ld: 3 * w, bs },
        k: { t, off: w, ld: 3 * w, bs },
        v: { t, off: 2 * w, ld: 3 * w, bs },
        out: { t: out, ld: w, bs: rows * w },
        mask: { ctxCols, causalOffset },
        logWeights: { cols: ctxCols, value: 1.4 },
        vec4,
        wg,
        path,
      });
      const got = await ctx.readF32(out);
      for (let b = 0; b < batch; b++) {
        const want = standardAttentionRef(
          slice(qkv, rows, 3 * w, b * bs + causalOffset * 3 * w, w),
          slice(qkv, keys, 3 * w, b * bs + w, w),
          slice(qkv, keys, 3 * w, b * bs + 2 * w, w),
          {
            heads,
            d,
            rows,
            keys,
            mask: coglmMaskRef(rows, keys, ctxCols, causalOffset),
            logw: logWeightsRef(rows, keys, ctxCols, 1.4),
          },
        );
        // Outputs are convex combinations of O(1.5) values; f32 dots over <= 129 and sums over <= 1301 keys.
        assertClose(
          `attention h=${heads} d=${d} rows=${rows} keys=${keys} b=${b}`,
          got.subarray(b * rows * w, (b + 1) * rows * w),
          want,
          {
            atol: 2e-5,
            rtol: 1e-4,
          },
        );
      }
      [t, out].forEach((x) => x.release());
    }
  }
});

// f16 caches (CogLM's KV cache): the stored values are the f16 roundings, accumulation stays f32, so the reference
// is the same attention over f16-rounded K and V at the f32 tolerance; vec4 and scalar key loads.
// fused: the step's row stored by the attention dispatch itself (storeNew) instead of a kvStore dispatch.
// unroll: COGVIEW2_UNROLL=1 (the loops over an invocation's output dims expanded, as wgpu on GPUs; wgpu only here),
// with d = 36 > 32 invocations, which do not divide it: each owns dims li and li + 32 (of MAXD / WG = 8 slots).
for (
  const [dt, vec4, wg, fused, unroll] of [
    ["f32", true, undefined, false, false],
    ["f16", true, undefined, false, false],
    ["f16", false, undefined, false, false],
    ["f16", true, 256, false, false],
    ["f16", true, 256, true, false],
    ["f16", false, undefined, true, false],
    ["f32", true, undefined, true, false],
    ["f32", false, 64, true, false],
    ["f32", false, 32, true, true],
    ["f16", true, 32, false, true],
  ] as const
) {
  Deno.test({
    name:
      `kvStore (${dt} cache) broadcasts a prompt, then a decode step attends over the cache like a full pass (vec4 ${vec4}${
        wg ? `, ${wg} invocations` : ""
      }${fused ? ", the step's row stored by the attention dispatch" : ""}${
        unroll ? ", unrolled, d = 36" : ""
      })`,
    ignore: unroll && (await sharedContext()).gpu.backend !== "wgpu",
    fn: async () => {
      const ctx = await sharedContext();
      await withEnv(UNROLL_ENV, unroll ? "1" : undefined, async () => {
        assert.equal(unrollFor(ctx), unroll);
        await decodeCase(ctx, dt, vec4, wg, fused, unroll ? 36 : 16);
      });
    },
  });
}

async function decodeCase(
  ctx: GpuContext,
  dt: "f32" | "f16",
  vec4: boolean,
  wg: 32 | 64 | 256 | undefined,
  fused: boolean,
  d: number,
) {
  const heads = 3, w = heads * d, prompt = 11, batch = 3, maxLen = 17, ctxCols = 10;
  const qkvP = randn(prompt * 3 * w, 1), qkvS = randn(batch * 3 * w, 2);
  const tp = ctx.upload(qkvP, [prompt, 3 * w]), ts = ctx.upload(qkvS, [batch, 3 * w]);
  const kc = ctx.upload(new Float32Array(batch * maxLen * w), [batch, maxLen, w], dt);
  const vc = ctx.upload(new Float32Array(batch * maxLen * w), [batch, maxLen, w], dt);
  const r16 = (x: Float32Array) => dt === "f16" ? f16BitsToF32(f32ToF16Bits(x)) : x;
  kvStore(ctx, tp, kc, vc, {
    batch,
    rows: prompt,
    width: w,
    t0: 0,
    ld: 3 * w,
    srcBs: 0,
    kOff: w,
    vOff: 2 * w,
  });
  if (!fused) {
    kvStore(ctx, ts, kc, vc, {
      batch,
      rows: 1,
      width: w,
      t0: prompt,
      ld: 3 * w,
      srcBs: 3 * w,
      kOff: w,
      vOff: 2 * w,
    });
  }
  const out = ctx.empty([batch, w]);
  const keys = prompt + 1;
  attention(ctx, {
    batch,
    heads,
    headDim: d,
    rows: 1,
    keys,
    q: { t: ts, ld: 3 * w, bs: 3 * w },
    k: { t: kc, ld: w, bs: maxLen * w },
    v: { t: vc, ld: w, bs: maxLen * w },
    out: { t: out, ld: w, bs: w },
    logWeights: { cols: ctxCols, value: 1.4 },
    vec4,
    wg,
    storeNew: fused ? { kOff: w, vOff: 2 * w } : undefined,
  });
  const got = await ctx.readF32(out);
  if (fused) {
    // The caches hold the step's rows at position `prompt` exactly as kvStore writes them (f16: the roundings).
    const [kr, vr] = [await ctx.readF32(kc), await ctx.readF32(vc)];
    for (let b = 0; b < batch; b++) {
      const at = (b * maxLen + prompt) * w;
      assertClose(
        `stored K row b=${b}`,
        kr.subarray(at, at + w),
        r16(qkvS.slice(b * 3 * w + w, b * 3 * w + 2 * w)),
        {
          atol: 0,
        },
      );
      assertClose(
        `stored V row b=${b}`,
        vr.subarray(at, at + w),
        r16(qkvS.slice(b * 3 * w + 2 * w, b * 3 * w + 3 * w)),
        { atol: 0 },
      );
    }
  }
  for (let b = 0; b < batch; b++) {
    const k = new Float32Array(keys * w), v = new Float32Array(keys * w);
    k.set(slice(qkvP, prompt, 3 * w, w, w)), v.set(slice(qkvP, prompt, 3 * w, 2 * w, w));
    k.set(qkvS.subarray(b * 3 * w + w, b * 3 * w + 2 * w), prompt * w);
    v.set(qkvS.subarray(b * 3 * w + 2 * w, b * 3 * w + 3 * w), prompt * w);
    const want = standardAttentionRef(qkvS.subarray(b * 3 * w, b * 3 * w + w), r16(k), r16(v), {
      heads,
      d,
      rows: 1,
      keys,
      logw: logWeightsRef(1, keys, ctxCols, 1.4),
    });
    assertClose(`decode step b=${b} ${dt}`, got.subarray(b * w, (b + 1) * w), want, {
      atol: 2e-5,
      rtol: 1e-4,
    });
  }
  if (dt === "f16") {
    // The cache holds the f16 roundings of the rows written (prompt row 4 of batch entry 2, the step's row).
    const kr = await ctx.readF32(kc);
    assertClose(
      "f16 cache row",
      kr.subarray((2 * maxLen + 4) * w, (2 * maxLen + 5) * w),
      r16(slice(qkvP, prompt, 3 * w, w, w).subarray(4 * w, 5 * w)),
      { atol: 0 },
    );
    // Many query rows over an f16 cache: the matmul path reads the f16 K/V through the matmul's W_F16.
    const rows = 19, qkv = randn(rows * 3 * w, 5), tq = ctx.upload(qkv, [rows, 3 * w]);
    const o2 = ctx.empty([rows, w]);
    attention(ctx, {
      batch: 1,
      heads,
      headDim: d,
      rows,
      keys: prompt,
      q: { t: tq, ld: 3 * w },
      k: { t: kc, ld: w },
      v: { t: vc, ld: w },
      out: { t: o2, ld: w },
      path: "matmul",
    });
    const want = standardAttentionRef(
      slice(qkv, rows, 3 * w, 0, w),
      r16(slice(qkvP, prompt, 3 * w, w, w)),
      r16(slice(qkvP, prompt, 3 * w, 2 * w, w)),
      { heads, d, rows, keys: prompt },
    );
    assertClose("matmul path over an f16 cache", await ctx.readF32(o2), want, { atol: 2e-5, rtol: 1e-4 });
    [tq, o2].forEach((x) => x.release());
  }
  [tp, ts, kc, vc, out].forEach((x) => x.release());
}

Deno.test("attention with per-row visible prefixes (completion's mask) matches SAT's standard_attention", async () => {
  const ctx = await sharedContext();
  const heads = 2, d = 16, w = heads * d, L = 23;
  // Text rows see the text (7), the <start_of_image> row itself and before, image rows all context (15) or causal.
  const vis = Int32Array.from({ length: L }, (_, i) => i < 7 ? 7 : i === 7 ? 8 : Math.max(15, i + 1));
  const qkv = randn(L * 3 * w, 77, 1.5);
  const t = ctx.upload(qkv, [L, 3 * w]), tv = ctx.upload(vis, [L], "i32");
  for (const path of ["fused", "matmul"] as const) {
    const out = ctx.empty([L, w]);
    attention(ctx, {
      path,
      visibleHost: vis,
      batch: 1,
      heads,
      headDim: d,
      rows: L,
      keys: L,
      q: { t, ld: 3 * w },
      k: { t, off: w, ld: 3 * w },
      v: { t, off: 2 * w, ld: 3 * w },
      out: { t: out, ld: w },
      visible: tv,
      logWeights: { cols: 7, value: 1.4 },
    });
    const mask = new Float32Array(L * L);
    for (let i = 0; i < L; i++) for (let j = 0; j < vis[i]; j++) mask[i * L + j] = 1;
    const want = standardAttentionRef(
      slice(qkv, L, 3 * w, 0, w),
      slice(qkv, L, 3 * w, w, w),
      slice(qkv, L, 3 * w, 2 * w, w),
      {
        heads,
        d,
        rows: L,
        keys: L,
        mask,
        logw: logWeightsRef(L, L, 7, 1.4),
      },
    );
    assertClose(`attention visible prefixes ${path}`, await ctx.readF32(out), want, {
      atol: 2e-5,
      rtol: 1e-4,
    });
    out.release();
  }
  [t, tv].forEach((x) => x.release());
});

Deno.test("COGVIEW2_ATTENTION_WG: a width overrides the table; another value is an error naming the variable", () => {
  assert.equal(attentionWgOverride(undefined), null);
  assert.equal(attentionWgOverride("64"), 64);
  assert.throws(() => attentionWgOverride("512"), /COGVIEW2_ATTENTION_WG=512: expected 32, 64, 128 or 256/);
  for (const key of ["wgpu/gpu", "dawn/gpu"]) assert.equal(CHOICES[key].attentionWg, 256, key);
  for (const key of ["wgpu/cpu", "dawn/cpu"]) assert.equal(CHOICES[key].attentionWg, 32, `${key} unchanged`);
});

// Flash-decoding (`split`): one query row per batch entry, each (head, batch) split over S key ranges and merged by
// the combine dispatch. [cache dtype, heads, d, keys, S, wg, chunk, storeNew, mask]: keys not divisible by S, S above
// the number of chunks, more splits than keys (S 8 taken as 5), more splits than visible keys (2 of 33 keys visible
// over 4 splits: empty ranges), several chunks per split (chunk 64), head
// sizes 64, odd 37 (scalar loads), 62, 129 (dims over the workgroup), 256; a CogLM prefix mask with the stored row
// itself masked out, a per-row visible prefix (VIS), log-weights everywhere; batch 2.
const SPLIT_CASES: [
  "f16" | "f32",
  number,
  number,
  number,
  number,
  32 | 64 | 256,
  number,
  boolean,
  { ctxCols: number; causalOffset: number } | { visible: number } | null,
][] = [
  ["f16", 3, 64, 301, 4, 256, 256, true, null],
  ["f16", 2, 64, 301, 7, 32, 64, true, { ctxCols: 100, causalOffset: 150 }],
  ["f32", 2, 37, 45, 16, 32, 256, true, null],
  ["f32", 1, 129, 5, 8, 64, 256, false, null],
  ["f16", 2, 62, 90, 3, 256, 256, true, { visible: 61 }],
  ["f32", 2, 256, 33, 4, 256, 256, true, { ctxCols: 2, causalOffset: 0 }],
];

Deno.test("split decode attention (flash-decoding: S key ranges, then the combine) matches SAT's standard_attention", async () => {
  const ctx = await sharedContext();
  for (const [dt, heads, d, keys, S, wg, chunk, store, mask] of SPLIT_CASES) {
    const batch = 2, w = heads * d, maxLen = keys + 2, logCols = Math.ceil(keys / 3);
    const label = `${dt} h=${heads} d=${d} keys=${keys} S=${S} wg=${wg} chunk=${chunk} store=${store} ${
      JSON.stringify(mask)
    }`;
    const r16 = (x: Float32Array) => dt === "f16" ? f16BitsToF32(f32ToF16Bits(x)) : x;
    const qkv = randn(batch * 3 * w, keys + d, 1.5);
    const cache = (seed: number) => {
      const c = randn(batch * maxLen * w, seed, 1.5);
      if (store) {
        for (let b = 0; b < batch; b++) c.fill(0, (b * maxLen + keys - 1) * w, (b * maxLen + keys) * w);
      }
      return c;
    };
    const kh = cache(keys + 1), vh = cache(keys + 2);
    const tq = ctx.upload(qkv, [batch, 3 * w]);
    const kc = ctx.upload(kh, [batch, maxLen, w], dt), vc = ctx.upload(vh, [batch, maxLen, w], dt);
    const vis = mask && "visible" in mask ? ctx.upload(Int32Array.of(mask.visible), [1], "i32") : undefined;
    const out = ctx.empty([batch, w]);
    attention(ctx, {
      batch,
      heads,
      headDim: d,
      rows: 1,
      keys,
      q: { t: tq, ld: 3 * w, bs: 3 * w },
      k: { t: kc, ld: w, bs: maxLen * w },
      v: { t: vc, ld: w, bs: maxLen * w },
      out: { t: out, ld: w, bs: w },
      mask: mask && "ctxCols" in mask ? mask : undefined,
      visible: vis,
      logWeights: { cols: logCols, value: 1.4 },
      storeNew: store ? { kOff: w, vOff: 2 * w } : undefined,
      split: S,
      wg,
      chunk,
    });
    const got = await ctx.readF32(out);
    const [kr, vr] = [await ctx.readF32(kc), await ctx.readF32(vc)];
    const m = new Float32Array(keys);
    for (let j = 0; j < keys; j++) {
      m[j] = !mask
        ? 1
        : "visible" in mask
        ? Number(j < mask.visible)
        : Number(j < mask.ctxCols || j <= mask.causalOffset);
    }
    for (let b = 0; b < batch; b++) {
      const k = kh.slice(b * maxLen * w, (b * maxLen + keys) * w),
        v = vh.slice(b * maxLen * w, (b * maxLen + keys) * w);
      if (store) {
        // The step's row, stored once by the split that owns the last key: exactly kvStore's (f16-rounded) values.
        k.set(qkv.subarray(b * 3 * w + w, b * 3 * w + 2 * w), (keys - 1) * w);
        v.set(qkv.subarray(b * 3 * w + 2 * w, b * 3 * w + 3 * w), (keys - 1) * w);
        const at = (b * maxLen + keys - 1) * w;
        assertClose(`${label}: stored K b=${b}`, kr.subarray(at, at + w), r16(k.subarray((keys - 1) * w)), {
          atol: 0,
        });
        assertClose(`${label}: stored V b=${b}`, vr.subarray(at, at + w), r16(v.subarray((keys - 1) * w)), {
          atol: 0,
        });
      }
      const want = standardAttentionRef(qkv.subarray(b * 3 * w, b * 3 * w + w), r16(k), r16(v), {
        heads,
        d,
        rows: 1,
        keys,
        mask: m,
        logw: logWeightsRef(1, keys, logCols, 1.4),
      });
      // f32 dots over <= 256 dims and sums over <= 301 keys, merged in f32 over S partials (exp(m_s − M) rescaling).
      assertClose(`${label} b=${b}`, got.subarray(b * w, (b + 1) * w), want, { atol: 2e-5, rtol: 1e-4 });
    }
    [tq, kc, vc, out, vis].forEach((x) => x?.release());
  }
});

Deno.test("attention split choice: COGVIEW2_ATTENTION_SPLIT overrides the table, 1 everywhere; capped at the keys; errors name the variable or option", async () => {
  assert.equal(attentionSplitOverride(undefined), null);
  assert.equal(attentionSplitOverride("4"), 4);
  for (const bad of ["0", "2.5", "x", "257"]) {
    assert.throws(
      () => attentionSplitOverride(bad),
      /COGVIEW2_ATTENTION_SPLIT=.*: expected an integer from 1 to 256/,
    );
  }
  // 1 everywhere: on the H200 a split saved at most 6% of the kernel for 48 more dispatches (choices.ts).
  for (const key of ["wgpu/cpu", "dawn/cpu", "wgpu/gpu", "dawn/gpu"]) {
    assert.equal(CHOICES[key].attentionSplit, 1, key);
  }
  const shared = await sharedContext();
  const gpu = shared.withGpuSchedules();
  const at = (batch: number, keys: number, c = gpu) =>
    attentionSplitFor(c, { batch, heads: 48, headDim: 64, keys });
  assert.deepEqual([at(1, 420), at(1, 200), at(8, 420), at(1, 420, shared)], [1, 1, 1, 1]);
  assert.equal(
    attentionSplitFor(gpu, { batch: 1, heads: 48, headDim: 64, keys: 420, split: 6 }),
    6,
    "forced",
  );
  assert.equal(
    attentionSplitFor(gpu, { batch: 1, heads: 48, headDim: 64, keys: 3, split: 16 }),
    3,
    "at most keys",
  );
  const t = shared.upload(new Float32Array(3 * 64 * 4), [4, 3 * 64]), o = shared.empty([4, 64]);
  assert.throws(
    () =>
      attention(shared, {
        batch: 1,
        heads: 1,
        headDim: 64,
        rows: 4,
        keys: 4,
        q: { t, ld: 192 },
        k: { t, off: 64, ld: 192 },
        v: { t, off: 128, ld: 192 },
        out: { t: o, ld: 64 },
        split: 2,
        path: "fused",
      }),
    /split takes one query row on the fused path/,
  );
  [t, o].forEach((x) => x.release());
});

// The fused kernels are kept per context by their defines (src/kernels/attention.ts fusedKernel): a width or a chunk
// size alone changes no value, so each must be seen to get a pipeline of its own, and the same options none.
Deno.test("fused attention kernels per context: each width, chunk size and COGVIEW2_UNROLL compiles its own, the same options reuse it; each matches SAT's standard_attention", async () => {
  const ctx = (await sharedContext()).withGpuSchedules(); // a context of its own: no kernel made yet
  const heads = 2, d = 16, keys = 70, w = heads * d;
  const qkv = randn(keys * 3 * w, 31, 1.5);
  const t = ctx.upload(qkv, [keys, 3 * w]), out = ctx.empty([1, w]);
  const want = standardAttentionRef(
    slice(qkv, 1, 3 * w, (keys - 1) * 3 * w, w),
    slice(qkv, keys, 3 * w, w, w),
    slice(qkv, keys, 3 * w, 2 * w, w),
    { heads, d, rows: 1, keys },
  );
  const made: number[] = [];
  // COGVIEW2_UNROLL set against the table for the last two launches (wgpu only: Dawn's Mesa compiles unrolled kernels
  // slowly, as the decode tests above say).
  const unroll = ctx.gpu.backend === "wgpu";
  const runs = [[32, 256], [64, 256], [32, 64], [64, 64], [32, 256], [64, 64], [32, 256], [32, 256]] as const;
  for (const [i, [wg, chunk]] of runs.entries()) {
    if (unroll && i === 6) Deno.env.set(UNROLL_ENV, unrollFor(ctx) ? "0" : "1");
    const p0 = ctx.stats.pipelines;
    attention(ctx, {
      batch: 1,
      heads,
      headDim: d,
      rows: 1,
      keys,
      q: { t, off: (keys - 1) * 3 * w, ld: 3 * w },
      k: { t, off: w, ld: 3 * w },
      v: { t, off: 2 * w, ld: 3 * w },
      out: { t: out, ld: w },
      wg,
      chunk,
      split: 1,
      path: "fused",
    });
    made.push(ctx.stats.pipelines - p0);
    try {
      assertClose(`wg ${wg} chunk ${chunk}`, await ctx.readF32(out), want, { atol: 2e-5, rtol: 1e-4 });
    } finally {
      if (i === 7) Deno.env.delete(UNROLL_ENV);
    }
  }
  assert.deepEqual(made, [1, 1, 1, 1, 0, 0, unroll ? 1 : 0, 0], "pipelines created per launch");
  [t, out].forEach((x) => x.release());
});
