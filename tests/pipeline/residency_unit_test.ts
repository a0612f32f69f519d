// The residency decisions without a GPU: flag parsing, the auto choice by budget, the admission estimate (max over
// stages, weights of every model with "all") and its 503 message naming the largest n that fits.
import nodeAssert from "node:assert/strict";
import {
  admit,
  chooseResidency,
  estimatePeak,
  excessAt,
  learn,
  type ModelSlot,
  parseGpuMemory,
  parseResidency,
  stageBatches,
  type StageFootprint,
} from "../../src/pipeline/residency.ts";
import { PipelineError } from "../../src/pipeline/types.ts";

const MiB = 2 ** 20;
function fps(): Record<ModelSlot, StageFootprint> {
  const f = (w: number, perItem: number): StageFootprint => ({
    weights: w * MiB,
    records: [{ batch: 1, bytes: perItem * MiB }],
    source: "formula",
  });
  return { coglm: f(1000, 100), dsr: f(600, 300), itersr: f(500, 200), vqvae: f(50, 400) };
}

Deno.test("parseResidency / parseGpuMemory: values and named errors", () => {
  nodeAssert.equal(parseResidency("stage", "--residency"), "stage");
  nodeAssert.throws(() => parseResidency("some", "--residency"), /--residency must be stage, all or auto/);
  nodeAssert.equal(parseGpuMemory("16", "--gpu-memory"), 16 * 2 ** 30);
  nodeAssert.equal(parseGpuMemory("0.5", "--gpu-memory"), 2 ** 29);
  for (const bad of ["", "0", "-1", "16GB", "NaN"]) {
    nodeAssert.throws(() => parseGpuMemory(bad, "--gpu-memory"), /--gpu-memory must be a GPU memory budget/);
  }
});

Deno.test("estimatePeak: by stage the max of each model's own, with all every model's weights under each stage", () => {
  const fp = fps();
  const b = stageBatches(8, 8, 4); // coglm 8, SR 4, vqvae 1
  nodeAssert.deepEqual(b, { coglm: 8, dsr: 4, itersr: 4, vqvae: 1 });
  const st = estimatePeak(fp, "stage", b);
  // coglm 1000+800, dsr 600+1200, itersr 500+800, vqvae 50+400 (MiB)
  nodeAssert.equal(st.peak, 1800 * MiB);
  nodeAssert.equal(st.perStage.vqvae, 450 * MiB);
  const all = estimatePeak(fp, "all", b);
  nodeAssert.equal(all.peak, (2150 + 1200) * MiB);
  nodeAssert.equal(all.stage, "dsr");
  // First stage only: CogLM and the VQ-VAE.
  nodeAssert.equal(estimatePeak(fp, "all", b, ["coglm", "vqvae"]).peak, (2150 + 800) * MiB);
});

Deno.test("excessAt / learn: linear above a measured batch, never below it; measurements replace the formula", () => {
  const fp = fps().dsr;
  learn(fp, 2, 500 * MiB);
  nodeAssert.equal(fp.source, "measured");
  nodeAssert.equal(excessAt(fp, 1), 500 * MiB, "batch 1 after a batch-2 measurement: not below it");
  nodeAssert.equal(excessAt(fp, 4), 1000 * MiB);
  learn(fp, 1, 300 * MiB);
  nodeAssert.equal(excessAt(fp, 4), 1200 * MiB, "the larger of the records' extrapolations");
});

Deno.test("chooseResidency: auto without a budget is all; with one, all if it fits, else stage", () => {
  const none = chooseResidency("auto", { bytes: null, source: "none" }, 30e9, 10e9);
  nodeAssert.equal(none.mode, "all");
  nodeAssert.match(none.reason, /no GPU memory budget: WebGPU reports no adapter memory/);
  nodeAssert.equal(chooseResidency("auto", { bytes: 32e9, source: "--gpu-memory" }, 30e9, 10e9).mode, "all");
  const s = chooseResidency("auto", { bytes: 16e9, source: "--gpu-memory" }, 30e9, 10e9);
  nodeAssert.equal(s.mode, "stage");
  nodeAssert.match(s.reason, /budget 14\.90 GiB \(--gpu-memory\)/);
  nodeAssert.match(
    chooseResidency("auto", { bytes: 5e9, source: "x" }, 30e9, 10e9).reason,
    /even by stage over/,
  );
  const fixed = chooseResidency("all", { bytes: 16e9, source: "--gpu-memory" }, 30e9, 10e9);
  nodeAssert.equal(fixed.mode, "all");
  nodeAssert.match(fixed.reason, /as configured.*over the budget/);
});

Deno.test("admit: 503 over the budget, naming the largest n that fits; no budget admits everything", () => {
  const o = { budget: 1500 * MiB, mode: "stage" as const, fp: fps(), coglmBatch: 8, srBatch: 4 };
  const stages = ["coglm", "dsr", "itersr", "vqvae"] as const;
  admit({ ...o, n: 1, stages }); // coglm 1100, dsr 900: fits
  nodeAssert.throws(
    () => admit({ ...o, n: 8, stages }),
    (e: Error) =>
      e instanceof PipelineError && e.status === 503 &&
      /coglm stage needs an estimated 1\.76 GiB/.test(e.message) &&
      /at most 3 image\(s\)/.test(e.message),
  );
  admit({ ...o, budget: null, n: 16, stages });
  nodeAssert.throws(() => admit({ ...o, budget: 10 * MiB, n: 1, stages }), /No job fits this budget/);
  nodeAssert.throws(
    () => admit({ ...o, mode: "all", budget: 2000 * MiB, n: 1, stages }),
    /--residency stage/,
  );
});
