import assert from "node:assert/strict";
import {
  argmaxGpu,
  clusterSampleGpu,
  clusterTable,
  philoxGpu,
  readClusterDebug,
  setClusterRankSerial,
  topkSampleGpu,
} from "../../src/kernels/sampling.ts";
import { argmaxCpu, clusterSampleCpu, topkSampleCpu } from "../../src/reference/sampling.ts";
import { philox4x32, samplerUniforms } from "../../src/sampling/rng.ts";
import { assertClose, randn, rng, sharedContext } from "../_util.ts";

function labelsFor(width: number, C: number, seed: number): Int32Array {
  const r = rng(seed);
  const l = new Int32Array(width);
  for (let i = 0; i < width; i++) l[i] = i < C ? i : Math.floor(r() * C); // every cluster non-empty
  return l;
}

/**
 * Whether a draw of `u` from probabilities `p` (one row, summing to 1) may give `a` on one side and `b` on the other:
 * only when u lies within `eps` of the running sum at the edge between them (the GPU sums in f32, the twin in f64:
 * ~1e-6 apart on these rows) and every token between the two has zero probability.
 */
function atBoundary(p: ArrayLike<number>, u: number, a: number, b: number, eps = 1e-5): boolean {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  let edge = 0;
  for (let j = 0; j < hi; j++) edge += p[j];
  for (let j = lo + 1; j < hi; j++) if (p[j] > 0) return false;
  return Math.abs(edge - u) <= eps;
}

/** Rows where the GPU and CPU ids differ other than at a rounding boundary (atBoundary). */
function realMismatches(
  gpu: ArrayLike<number>,
  cpu: ArrayLike<number>,
  probs: (r: number) => ArrayLike<number>,
  u: (r: number) => number,
): number[] {
  const bad = [];
  for (let r = 0; r < gpu.length; r++) {
    if (gpu[r] !== cpu[r] && !atBoundary(probs(r), u(r), gpu[r], cpu[r])) bad.push(r);
  }
  return bad;
}

Deno.test("sampling kernels: Philox on the GPU matches the TypeScript twin", async () => {
  const ctx = await sharedContext();
  for (
    const o of [{ seed: 0, step: 0, stream: 0, rowBase: 0 }, {
      seed: 2 ** 40 + 12345,
      step: 399,
      stream: 3,
      rowBase: 7,
    }]
  ) {
    const n = 61;
    const t = philoxGpu(ctx, o, n);
    const got = await ctx.read(t) as Uint32Array;
    t.release();
    for (let i = 0; i < n; i++) {
      const w = philox4x32(o.seed >>> 0, Math.floor(o.seed / 2 ** 32), o.rowBase + i, o.step, o.stream, 0);
      assert.deepEqual([...got.subarray(4 * i, 4 * i + 4)], [...w], `row ${i}`);
    }
  }
});

Deno.test("sampling kernels: argmax (first index on ties) and row selection", async () => {
  const ctx = await sharedContext();
  const rows = 37, width = 1037;
  const x = randn(rows * width, 3);
  for (let j = 0; j < width; j += 2) x[5 * width + j] = 7; // ties: first wins
  const t = ctx.upload(x, [rows, width]);
  const ids = await ctx.read(argmaxGpu(ctx, t));
  assert.deepEqual([...ids], [...argmaxCpu(x, rows, width)]);
  assert.equal(ids[5], 0);
  // rows 2..4 of each group of 5 (groups start at 1, 6, ...), written at stride 2 into a bigger tensor
  const out = ctx.upload(new Int32Array(20).fill(-1), [20], "i32");
  argmaxGpu(ctx, t, { rows: 9, rowOffset: 2, groupSize: 3, groupStride: 5, out, outOffset: 1, outStride: 2 });
  const got = await ctx.read(out) as Int32Array;
  const all = argmaxCpu(x, rows, width);
  for (let r = 0; r < 9; r++) {
    const src = 2 + Math.floor(r / 3) * 5 + (r % 3);
    assert.equal(got[1 + 2 * r], all[src], `out row ${r}`);
  }
  assert.equal(got[0], -1);
  t.release();
  out.release();
});

Deno.test("sampling kernels: cluster sampling intermediates and draws match the CPU twin", async () => {
  const ctx = await sharedContext();
  // Both cluster-rank passes (serial per row: CPU adapters' default; parallel: GPUs') on this adapter.
  for (const serial of [true, false]) {
    setClusterRankSerial(serial);
    try {
      await clusterCase(ctx);
    } finally {
      setClusterRankSerial(null);
    }
  }
});

async function clusterCase(ctx: Awaited<ReturnType<typeof sharedContext>>): Promise<void> {
  const rows = 37, width = 1037, C = 61;
  const labels = labelsFor(width, C, 11);
  const table = clusterTable(ctx, labels, C);
  const x = randn(rows * width, 5, 2.5);
  const lt = ctx.upload(x, [rows, width]);
  for (
    const o of [
      { temperature: 1.15, temperature2: 1, topk: 16, seed: 42, step: 3, stream: 1 },
      { temperature: 1, temperature2: 0.89, topk: 61, seed: 7, step: 0, stream: 2 },
      { temperature: 1.1, temperature2: 0.6, topk: 5, seed: 9, step: 1, stream: 1, forceRank: 0 },
    ]
  ) {
    const { ids, debug } = clusterSampleGpu(ctx, lt, table, { ...o, debug: true });
    const d = await readClusterDebug(ctx, debug!);
    const gpuIds = await ctx.read(ids) as Int32Array;
    ids.release();
    const cpu = clusterSampleCpu(x, rows, width, labels, C, o);
    assertClose("cluster mass", d.clusterMass, cpu.clusterMass, { atol: 2e-6, rtol: 1e-4 });
    assert.deepEqual([...d.topClusters], [...cpu.topClusters]);
    assertClose("top cluster probs", d.topClusterProbs, cpu.topClusterProbs, { atol: 2e-6, rtol: 1e-4 });
    assertClose("final probs", d.finalProbs, cpu.finalProbs, { atol: 2e-6, rtol: 1e-4 });
    // Same cluster (the cluster draw is checked by topClusters / forceRank above, and by the token's cluster here),
    // same token except within f32-vs-f64 rounding of a CDF edge.
    for (let r = 0; r < rows; r++) {
      assert.ok(cpu.finalProbs[r * width + gpuIds[r]] > 0, `row ${r}: token outside the cluster`);
    }
    const u1 = (r: number) => samplerUniforms(o.seed, o.step, r, o.stream)[1];
    const bad = realMismatches(
      gpuIds,
      cpu.ids,
      (r) => cpu.finalProbs.subarray(r * width, (r + 1) * width),
      u1,
    );
    assert.deepEqual(bad, [], `rows whose GPU id differs from the CPU twin's away from a CDF edge`);
    // the plain variant draws the same ids, in five dispatches and in one (CFUSED)
    for (const fused of [false, true]) {
      const plain = clusterSampleGpu(ctx, lt, table, { ...o, fused }).ids;
      assert.deepEqual([...await ctx.read(plain)], [...gpuIds], `fused ${fused}`);
      plain.release();
    }
  }
  lt.release();
  table.tensor.release();
}

Deno.test("sampling kernels: cluster draws follow the final distribution", async () => {
  const ctx = await sharedContext();
  const width = 129, C = 7, n = 6001;
  const labels = labelsFor(width, C, 3);
  const table = clusterTable(ctx, labels, C);
  const x = randn(width, 8, 1.5);
  const lt = ctx.upload(x, [1, width]);
  const o = { temperature: 1.2, temperature2: 0.8, topk: 3, seed: 1234 };
  // every output row reads logits row 0 (groupStride 0); the RNG row differs
  const ids = await ctx.read(
    clusterSampleGpu(ctx, lt, table, { ...o, rows: n, groupSize: 1, groupStride: 0 }).ids,
  );
  // expected: Σ over the top clusters of P(cluster)·P(token | cluster)
  const expect = new Float64Array(width);
  const base = clusterSampleCpu(x, 1, width, labels, C, { ...o, forceRank: 0 });
  for (let rank = 0; rank < o.topk; rank++) {
    const r = clusterSampleCpu(x, 1, width, labels, C, { ...o, forceRank: rank });
    for (let j = 0; j < width; j++) expect[j] += base.topClusterProbs[rank] * r.finalProbs[j];
  }
  const hist = new Float64Array(width);
  for (const id of ids) hist[id] += 1 / n;
  let tv = 0;
  for (let j = 0; j < width; j++) tv += Math.abs(hist[j] - expect[j]) / 2;
  assert.ok(tv < 0.04, `total variation ${tv}`);
  lt.release();
  table.tensor.release();
});

Deno.test("sampling kernels: top-k serial and radix selections draw the same ids (ties, equal rows, k up to 64, row selection)", async () => {
  const ctx = await sharedContext();
  const rows = 41, width = 2053;
  const x = randn(rows * width, 31, 2);
  for (let j = 0; j < 70; j++) x[3 * width + 29 * j] = 9; // 70 tied maxima: every k keeps them all
  for (let j = 0; j < width; j++) x[4 * width + j] = -1.5; // all equal
  for (let j = 0; j < width; j++) x[5 * width + j] = Math.round(x[5 * width + j] * 4) / 4; // many ties
  const lt = ctx.upload(x, [rows, width]);
  for (
    const o of [
      { topk: 60, seed: 5, step: 2, stream: 3 },
      { topk: 64, seed: 6, temperature: 1.3 },
      { topk: 7, seed: 8, rows: 20, rowOffset: 6, groupSize: 4, groupStride: 7 },
      { topk: 1, seed: 1 },
    ]
  ) {
    const serial = await ctx.read(topkSampleGpu(ctx, lt, { ...o, selection: "serial" }));
    const radix = await ctx.read(topkSampleGpu(ctx, lt, { ...o, selection: "radix" }));
    assert.deepEqual([...serial], [...radix], `topk ${o.topk}`);
  }
  assert.throws(() => topkSampleGpu(ctx, lt, { topk: 65, seed: 1, selection: "serial" }), /at most 64/);
  lt.release();
});

Deno.test("sampling kernels: top-k sampling matches the CPU twin (ties kept, k = 1 is argmax)", async () => {
  const ctx = await sharedContext();
  const rows = 37, width = 1037;
  const x = randn(rows * width, 21, 2);
  // row 3: 20 tied maxima, k = 10 keeps all of them; row 4: all equal
  for (let j = 0; j < 20; j++) x[3 * width + 50 * j] = 9;
  for (let j = 0; j < width; j++) x[4 * width + j] = -1.5;
  const lt = ctx.upload(x, [rows, width]);
  for (
    const o of [{ topk: 10, seed: 5, step: 2, stream: 3 }, { topk: 60, seed: 6, temperature: 1.3 }, {
      topk: 1,
      seed: 1,
    }]
  ) {
    const ids = await ctx.read(topkSampleGpu(ctx, lt, o)) as Int32Array;
    const cpu = topkSampleCpu(x, rows, width, o);
    // The twin's kept distribution of row r (softmax over x ≥ the k-th value), to judge any differing id.
    const probs = (r: number) => {
      const t = o.temperature ?? 1, w = new Float64Array(width);
      let m = -Infinity, s = 0;
      for (let j = 0; j < width; j++) m = Math.max(m, Math.fround(x[r * width + j] / t));
      for (let j = 0; j < width; j++) {
        const v = Math.fround(x[r * width + j] / t);
        if (v >= cpu.threshold[r]) s += w[j] = Math.exp(v - m);
      }
      return w.map((v) => v / s);
    };
    const u1 = (r: number) => samplerUniforms(o.seed, o.step ?? 0, r, o.stream ?? 0)[1];
    assert.deepEqual(realMismatches(ids, cpu.ids, probs, u1), [], "rows differing away from a CDF edge");
    for (let r = 0; r < rows; r++) {
      assert.ok(
        Math.fround(x[r * width + ids[r]] / (o.temperature ?? 1)) >= cpu.threshold[r],
        `row ${r}: below the k-th value`,
      );
    }
    if (o.topk === 1) {
      assert.deepEqual(
        [...ids].filter((_, r) => r !== 3 && r !== 4),
        [...argmaxCpu(x, rows, width)].filter((_, r) => r !== 3 && r !== 4),
      );
    }
  }
  // distribution over the tied row: uniform over the 20 maxima
  const n = 4001;
  const ids = await ctx.read(
    topkSampleGpu(ctx, lt, { topk: 10, seed: 77, rows: n, rowOffset: 3, groupSize: 1, groupStride: 0 }),
  );
  const hist = new Map<number, number>();
  for (const id of ids) hist.set(id, (hist.get(id) ?? 0) + 1);
  assert.equal(hist.size, 20);
  for (const [id, c] of hist) {
    assert.equal(id % 50, 0);
    assert.ok(Math.abs(c / n - 0.05) < 0.02, `token ${id}: ${c / n}`);
  }
  lt.release();
});
