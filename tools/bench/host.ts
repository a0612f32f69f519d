// The host's cost of recording a CogLM decode step (`bench --only host`): a synthetic CogLM with the published
// model's dispatch structure (48 sandwich layers, cluster sampling over 20000 image tokens, the GPU schedules'
// launchers wherever the context takes them: `--gpu-schedules` on a CPU adapter) but a narrow hidden size, so the
// device's share of each step is small. Every step waits for the previous one first (CogLM.SYNC_INTERVAL 1), so the
// recording (from the step's start to its flush) runs while the device is idle — on lavapipe the software GPU would
// otherwise run on the same cores — and the submit (flush) is timed apart. Reports µs per dispatch of the recording
// (minimum and median over the steps), the submit per step and the dispatches per step. Not a GPU timing.

import type { GpuContext } from "../../src/gpu/context.ts";
import { CogLM } from "../../src/models/coglm.ts";
import {
  loadTransformer,
  syntheticTransformerSource,
  type TransformerDims,
} from "../../src/models/transformer.ts";
import { clusterTable } from "../../src/models/sampling.ts";
import { getRecipe } from "../../src/sampling/recipes.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";
import { median } from "./_timing.ts";

/** The published CogLM's depth and vocabulary layout at hidden 128 (2 heads of 64). */
export const HOST_DIMS: TransformerDims = {
  numLayers: 48,
  hidden: 128,
  heads: 2,
  headDim: 64,
  inner: 512,
  vocab: 20008,
  maxSeq: 1024,
  eps: 1e-5,
  order: "sandwich",
};

const TEXT = Int32Array.from([20021, 20392, 20100, 20200, 20300, 20001]);

/** Per-step host times of one generation: recording (step start → its flush) and submit (flush), in ms. */
export interface HostSteps {
  record: number[];
  submit: number[];
  dispatches: number[];
}

/**
 * Generates `tokens` tokens with a host sync before every step and returns the host times of steps 1.. (the prompt
 * pass left out). Restores CogLM.SYNC_INTERVAL and the context's flush.
 */
export async function hostSteps(ctx: GpuContext, m: CogLM, tokens: number): Promise<HostSteps> {
  const out: HostSteps = { record: [], submit: [], dispatches: [] };
  const sync = CogLM.SYNC_INTERVAL;
  const flush = ctx.flush;
  let t0 = -1, d0 = 0;
  ctx.flush = function (this: GpuContext) {
    if (t0 >= 0) {
      const t1 = performance.now();
      out.record.push(t1 - t0);
      out.dispatches.push(ctx.stats.dispatches - d0);
      t0 = -1;
      flush.call(this);
      out.submit.push(performance.now() - t1);
      return;
    }
    flush.call(this);
  };
  CogLM.SYNC_INTERVAL = 1;
  try {
    await m.generate({
      textIds: TEXT,
      batch: 1,
      seed: 1,
      recipe: getRecipe("mainbody"),
      numTokens: tokens,
      onStep: (step) => {
        if (step >= 1 && step < tokens) t0 = performance.now(), d0 = ctx.stats.dispatches;
        else t0 = -1;
      },
    });
  } finally {
    CogLM.SYNC_INTERVAL = sync;
    delete (ctx as { flush?: unknown }).flush; // the prototype's again
    if (ctx.flush !== flush) ctx.flush = flush;
  }
  return out;
}

/** A synthetic CogLM of `dims` with cluster labels (500 clusters of the 20000 image tokens). */
export async function hostModel(ctx: GpuContext, dims: TransformerDims = HOST_DIMS): Promise<CogLM> {
  const src = syntheticTransformerSource(dims, { seed: 11, dtype: "f16" });
  const labels = Int32Array.from({ length: 20000 }, (_, i) => (i * 7919) % 500);
  return CogLM.fromWeights(
    ctx,
    dims,
    await loadTransformer(ctx, src, dims),
    20000,
    clusterTable(ctx, labels, 500),
  );
}

export const hostSuite: BenchSuite = {
  name: "host",
  description:
    "host µs per dispatch recording a CogLM decode step (48 layers × 128, published dispatch structure; " +
    "each step recorded with the device idle; --gpu-schedules on a CPU adapter)",
  async run(ctx, report: (r: BenchResult) => void, o) {
    const m = await hostModel(ctx);
    try {
      const tokens = o.quick ? 24 : 64;
      await hostSteps(ctx, m, 3); // compiles the pipelines, makes the bind groups
      const rounds = o.quick ? 2 : 3;
      const rec: number[] = [], sub: number[] = [];
      let per = 0;
      for (let r = 0; r < rounds; r++) {
        const s = await hostSteps(ctx, m, tokens);
        s.record.forEach((ms, i) => rec.push(1000 * ms / s.dispatches[i]));
        sub.push(...s.submit);
        per = median(s.dispatches);
      }
      const params = { layers: m.dims.numLayers, hidden: m.dims.hidden, steps: rec.length };
      report({ name: "host_dispatches_per_step", params, value: per, unit: "dispatches" });
      report({ name: "host_record_us_per_dispatch_min", params, value: Math.min(...rec), unit: "µs" });
      report({ name: "host_record_us_per_dispatch", params, value: median(rec), unit: "µs (median)" });
      report({
        name: "host_record_ms_per_step",
        params,
        value: median(rec) * per / 1000,
        unit: "ms (median)",
      });
      report({ name: "host_submit_ms_per_step", params, value: median(sub), unit: "ms (median)" });
    } finally {
      await m.release();
      ctx.trim();
    }
  },
};
