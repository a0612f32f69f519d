import assert from "node:assert/strict";
import { getRecipe } from "../../src/sampling/recipes.ts";
import { LOPAR_TOPKS } from "../../src/geometry/sr.ts";
import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  clusterSampleDebug,
  clusterTable,
  loadModelClusters,
  sampleCoglm,
  sampleDsr,
  sampleGreedy,
  sampleTopk,
} from "../../src/models/sampling.ts";
import { randn, sharedContext } from "../_util.ts";

const FIXTURE = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

async function readIds(ctx: GpuContext, ids: Tensor): Promise<Int32Array> {
  const got = (await ctx.read(ids)) as Int32Array;
  ids.release();
  return got;
}

Deno.test("strategy: seeded CogLM sampling with the fixture's cluster labels", async () => {
  const ctx = await sharedContext();
  const clusters = await loadModelClusters(ctx, {
    dir: FIXTURE,
    config: { clusters: { file: "cluster_label.npy", num_clusters: 500 } },
  });
  assert.equal(clusters.width, 20000);
  assert.equal(clusters.numClusters, 500);
  const rows = 24;
  const x = randn(rows * 20000, 4, 3);
  const logits = ctx.upload(x, [rows, 20000]);
  const r = getRecipe("mainbody");
  const opts = {
    clusters,
    temperature: r.temperature,
    topk: r.topk,
    topkCluster: r.top_k_cluster,
    seed: 1234,
  };
  const a = await readIds(ctx, sampleCoglm(ctx, logits, { ...opts, step: 7 }));
  const b = await readIds(ctx, sampleCoglm(ctx, logits, { ...opts, step: 7 }));
  assert.deepEqual([...a], [...b], "same seed and step give the same tokens");
  const steps = await Promise.all(
    [8, 9, 10].map((step) => readIds(ctx, sampleCoglm(ctx, logits, { ...opts, step }))),
  );
  assert.ok(steps.some((s) => s.some((v, i) => v !== a[i])), "other steps draw differently");
  const seeds = await readIds(ctx, sampleCoglm(ctx, logits, { ...opts, seed: 99, step: 7 }));
  assert.ok(seeds.some((v, i) => v !== a[i]), "another seed draws differently");
  const d = await clusterSampleDebug(ctx, logits, clusters, {
    temperature: r.temperature,
    temperature2: 1,
    topk: r.topk,
    seed: 1234,
  });
  for (const ids of [a, seeds, ...steps]) {
    for (let i = 0; i < rows; i++) {
      assert.ok(ids[i] >= 0 && ids[i] < 20000);
      // every draw lies in one of the top-16 clusters of its row
      const top = new Set(d.topClusters.subarray(i * 16, i * 16 + 16));
      assert.ok(
        top.has(clusters.labels[ids[i]]),
        `row ${i}: cluster ${clusters.labels[ids[i]]} not in the top 16`,
      );
    }
  }
  // writing into a token buffer [rows, 3] at column 1
  const tokens = ctx.upload(new Int32Array(rows * 3).fill(-1), [rows, 3], "i32");
  sampleCoglm(ctx, logits, { ...opts, step: 7, out: tokens, outOffset: 1, outStride: 3 });
  const tk = await readIds(ctx, tokens);
  for (let i = 0; i < rows; i++) assert.deepEqual([tk[3 * i], tk[3 * i + 1], tk[3 * i + 2]], [-1, a[i], -1]);
  logits.release();
  clusters.tensor.release();
});

Deno.test("strategy: DSR / LoPAR rows in chunks draw the same as in one call (rowBase)", async () => {
  const ctx = await sharedContext();
  const W = 301;
  const labels = Int32Array.from({ length: W }, (_, i) => (i * 37) % 23);
  const clusters = clusterTable(ctx, labels);
  // a [2 samples × 13 positions] sequence; the last 9 positions of each sample are "high-res" rows
  const L = 13, hi = 9;
  const x = randn(2 * L * W, 6, 2);
  const logits = ctx.upload(x, [2 * L, W]);
  const sel = { rowOffset: L - hi, groupSize: hi, groupStride: L };
  const whole = await readIds(
    ctx,
    sampleDsr(ctx, logits, { clusters, topk: 5, temperature2: 0.89, seed: 3, ...sel }),
  );
  // the same rows as two calls over separate tensors: sample 0 then sample 1, with rowBase
  const part = async (b: number) => {
    const t = ctx.upload(x.subarray((b * L + L - hi) * W, (b * L + L) * W), [hi, W]);
    const ids = await readIds(
      ctx,
      sampleDsr(ctx, t, { clusters, topk: 5, temperature2: 0.89, seed: 3, rowBase: b * hi }),
    );
    t.release();
    return [...ids];
  };
  assert.deepEqual([...whole], [...await part(0), ...await part(1)]);
  // LoPAR round 3 on the same rows: every draw is one of its row's top-k logits (ties kept), and greedy
  const round = 3, k = LOPAR_TOPKS[round];
  const tk = await readIds(ctx, sampleTopk(ctx, logits, { topk: k, seed: 3, step: round, ...sel }));
  for (let r = 0; r < 2 * hi; r++) {
    const row = x.subarray((Math.floor(r / hi) * L + L - hi + (r % hi)) * W).subarray(0, W);
    const kth = Float32Array.from(row).sort().reverse()[k - 1];
    assert.ok(
      row[tk[r]] >= kth,
      `row ${r}: drew ${tk[r]} (logit ${row[tk[r]]}) below the top-${k} bound ${kth}`,
    );
  }
  const g = await readIds(ctx, sampleGreedy(ctx, logits, sel));
  for (let r = 0; r < 2 * hi; r++) {
    const row = (Math.floor(r / hi) * L + L - hi + (r % hi)) * W;
    let best = 0;
    for (let j = 1; j < W; j++) if (x[row + j] > x[row + best]) best = j;
    assert.equal(g[r], best);
  }
  logits.release();
  clusters.tensor.release();
});
