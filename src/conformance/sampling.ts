// Conformance kinds coglm_strategy and dsr_strategy: the GPU cluster sampler's intermediates against the original's
// CoglmStrategy / dsr IterativeEntfilterStrategy run with the cluster draw fixed to the top cluster (see the fixture's
// README-sat.md). Compares cluster mass, top clusters (exact), top-cluster probabilities and the final distribution
// within the case's tolerances. Not a check of the draws themselves (torch's bits differ by design).
import { compareArrays } from "../reference/compare.ts";
import { clusterSampleDebug, clusterTable } from "../models/sampling.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

async function strategyCase(c: GoldenCase, cx: CaseContext, kind: "coglm" | "dsr"): Promise<CaseResult> {
  const logits = await cx.npy(c.inputs.logits);
  const labels = await cx.npy(c.inputs.cluster_labels ?? "cluster_label.npy");
  if (logits.shape.length !== 2) throw new Error(`logits must be [rows, width], got [${logits.shape}]`);
  const [rows, width] = logits.shape;
  const exp = c.expected;
  const mass = exp.cluster_mass ? await cx.npy(exp.cluster_mass) : null;
  let numClusters = mass ? mass.shape[mass.shape.length - 1] : 0;
  if (!mass) { for (const l of labels.data) numClusters = Math.max(numClusters, Number(l) + 1); }
  const temperature = Number(c.inputs.temperature ?? 1);
  const topk = Number(kind === "coglm" ? c.inputs.top_k : c.inputs.topk);
  const temperature2 = Number(kind === "coglm" ? c.inputs.top_k_cluster ?? 1 : c.inputs.temperature2);
  const selected = String(c.inputs.selected ?? "first");
  if (!/first|highest/.test(selected)) throw new Error(`unsupported cluster selection "${selected}"`);

  const ctx = cx.gpu;
  const table = clusterTable(ctx, labels.data as ArrayLike<number>, numClusters);
  const lt = ctx.upload(Float32Array.from(logits.data as ArrayLike<number>), [rows, width]);
  try {
    const d = await clusterSampleDebug(ctx, lt, table, {
      temperature,
      temperature2,
      topk,
      seed: 0,
      forceRank: 0,
    });
    const tol = Number(c.tolerance?.probs_max_abs ?? 1e-5);
    const parts: string[] = [];
    let pass = true;
    const probe = (what: string, actual: ArrayLike<number>, expected: ArrayLike<number>) => {
      const r = compareArrays(actual, expected, { atol: tol });
      pass &&= r.ok;
      parts.push(`${what} max abs ${r.maxAbs.toExponential(2)} (tol ${tol})`);
    };
    if (mass) probe("cluster_mass", d.clusterMass, mass.data as ArrayLike<number>);
    if (exp.top_clusters) {
      const want = (await cx.npy(exp.top_clusters)).data as ArrayLike<number>;
      let diff = 0;
      for (let i = 0; i < want.length; i++) if (d.topClusters[i] !== want[i]) diff++;
      if (want.length !== d.topClusters.length) diff = Math.max(diff, 1);
      pass &&= diff === 0;
      parts.push(`top_clusters ${diff} of ${want.length} differ (exact)`);
    }
    if (exp.top_cluster_probs) {
      probe(
        "top_cluster_probs",
        d.topClusterProbs,
        (await cx.npy(exp.top_cluster_probs)).data as ArrayLike<number>,
      );
    }
    if (exp.final_probs) {
      probe("final_probs", d.finalProbs, (await cx.npy(exp.final_probs)).data as ArrayLike<number>);
    }
    // the drawn token must lie in the selected cluster (where the final distribution is positive)
    let outside = 0;
    for (let r = 0; r < rows; r++) if (!(d.finalProbs[r * width + d.ids[r]] > 0)) outside++;
    pass &&= outside === 0;
    parts.push(`${outside} of ${rows} draws outside the cluster`);
    return { pass, detail: parts.join(", ") };
  } finally {
    lt.release();
    table.tensor.release();
  }
}

export const coglmStrategy = (c: GoldenCase, cx: CaseContext) => strategyCase(c, cx, "coglm");
export const dsrStrategy = (c: GoldenCase, cx: CaseContext) => strategyCase(c, cx, "dsr");
