// Sampler benchmarks: ms per call of CoglmStrategy-style cluster sampling, LoPAR top-k sampling and greedy argmax on
// the GPU for 8 rows (a CogLM step at batch 8) and 3600 rows (one DSR step / LoPAR round of one image) of 20000
// logits, against the plain TypeScript twins (src/reference/sampling.ts) on the same rows. The ids are read back
// in every GPU call (that is what a step does). Not a model benchmark; logits are synthetic.

import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  argmaxGpu,
  clusterSampleGpu,
  clusterTable,
  samplingWorkgroupSize,
  topkSampleGpu,
} from "../../src/kernels/sampling.ts";
import { argmaxCpu, clusterSampleCpu, topkSampleCpu } from "../../src/reference/sampling.ts";
import type { BenchSuite } from "./_types.ts";
import { median } from "./_timing.ts";

const W = 20000, C = 500;

function synthLogits(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 12;
  }
  return out;
}

/** Median ms of `iters` calls; each call records the sampler over every chunk and reads the ids back. */
async function timeGpu(ctx: GpuContext, call: () => Tensor[], iters: number): Promise<number> {
  const warm = call();
  for (const t of warm) await ctx.read(t), t.release();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    const outs = call();
    for (const t of outs) await ctx.read(t);
    times.push(performance.now() - t0);
    outs.forEach((t) => t.release());
  }
  return median(times);
}

export const samplingSuite: BenchSuite = {
  name: "sampling",
  description: "GPU samplers (cluster / top-k / argmax) over 20000-wide rows vs the CPU TypeScript twins",
  async run(ctx, report, { quick }) {
    const labels = new Int32Array(W);
    for (let i = 0; i < W; i++) labels[i] = (i * 7919 + (i >> 3)) % C;
    const table = clusterTable(ctx, labels, C);
    // rows per logits tensor: within one storage binding (lavapipe: 128 MiB ≈ 1677 rows of 20000)
    const per = Math.max(1, Math.floor(ctx.maxBinding / (W * 4)));
    const iters = quick ? 2 : 5;
    const wg = samplingWorkgroupSize(ctx);
    for (const rows of quick && ctx.gpu.isFallback ? [8, 256] : [8, 3600]) {
      const chunks: { row0: number; n: number; t: Tensor; host: Float32Array }[] = [];
      for (let row0 = 0; row0 < rows; row0 += per) {
        const n = Math.min(per, rows - row0);
        const host = synthLogits(n * W, 17 + row0);
        chunks.push({ row0, n, t: ctx.upload(host, [n, W]), host });
      }
      const params = { rows, width: W, clusters: C, wg };
      const cluster = await timeGpu(
        ctx,
        () =>
          chunks.map((c) =>
            clusterSampleGpu(ctx, c.t, table, {
              temperature: 1.15,
              temperature2: 1,
              topk: 16,
              seed: 1,
              step: 0,
              rowBase: c.row0,
            }).ids
          ),
        iters,
      );
      report({
        name: "sample_coglm_gpu_ms",
        params: { ...params, topk: 16 },
        value: cluster,
        unit: "ms/call",
      });
      const dsr = await timeGpu(
        ctx,
        () =>
          chunks.map((c) =>
            clusterSampleGpu(ctx, c.t, table, {
              temperature: 1,
              temperature2: 0.89,
              topk: 100,
              seed: 1,
              rowBase: c.row0,
            }).ids
          ),
        iters,
      );
      report({ name: "sample_dsr_gpu_ms", params: { ...params, topk: 100 }, value: dsr, unit: "ms/call" });
      const topk = await timeGpu(
        ctx,
        () => chunks.map((c) => topkSampleGpu(ctx, c.t, { topk: 40, seed: 1, rowBase: c.row0 })),
        iters,
      );
      report({ name: "sample_topk_gpu_ms", params: { ...params, topk: 40 }, value: topk, unit: "ms/call" });
      const greedy = await timeGpu(ctx, () => chunks.map((c) => argmaxGpu(ctx, c.t)), iters);
      report({ name: "sample_greedy_gpu_ms", params, value: greedy, unit: "ms/call" });

      // CPU twins on (at most 256 of) the same rows, scaled to all rows
      const cpuRows = Math.min(rows, quick ? 32 : 256);
      const host = chunks[0].host.subarray(0, cpuRows * W);
      const scale = rows / cpuRows;
      let t0 = performance.now();
      clusterSampleCpu(host, cpuRows, W, labels, C, {
        temperature: 1.15,
        temperature2: 1,
        topk: 16,
        seed: 1,
      });
      const cpuCluster = (performance.now() - t0) * scale;
      report({
        name: "sample_coglm_cpu_ts_ms",
        params: { ...params, topk: 16, measuredRows: cpuRows },
        value: cpuCluster,
        unit: "ms/call",
      });
      report({
        name: "sample_coglm_speedup",
        params,
        value: cpuCluster / cluster,
        unit: "x",
        baseline: "sample_coglm_cpu_ts_ms",
      });
      t0 = performance.now();
      topkSampleCpu(host, cpuRows, W, { topk: 40, seed: 1 });
      const cpuTopk = (performance.now() - t0) * scale;
      report({
        name: "sample_topk_cpu_ts_ms",
        params: { ...params, topk: 40, measuredRows: cpuRows },
        value: cpuTopk,
        unit: "ms/call",
      });
      report({
        name: "sample_topk_speedup",
        params,
        value: cpuTopk / topk,
        unit: "x",
        baseline: "sample_topk_cpu_ts_ms",
      });
      t0 = performance.now();
      argmaxCpu(host, cpuRows, W);
      const cpuGreedy = (performance.now() - t0) * scale;
      report({
        name: "sample_greedy_cpu_ts_ms",
        params: { ...params, measuredRows: cpuRows },
        value: cpuGreedy,
        unit: "ms/call",
      });
      chunks.forEach((c) => c.t.release());
    }
    table.tensor.release();
  },
};
