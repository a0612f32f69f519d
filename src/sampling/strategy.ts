// The samplers of CogView2 on the GPU: CoglmStrategy (stage 1), the DSR cluster strategy (stage 2), LoPAR's top-k
// (stage 3) and greedy. Rows of f32 logits stay on the GPU; only the chosen ids (i32) come back, when you read them.
// Not torch: draws use this project's Philox generator (src/sampling/rng.ts), so the same seed gives the same tokens
// here (on one adapter), never the original's tokens; the distributions are the original's (checked against its golden
// intermediates by the conformance kinds coglm_strategy / dsr_strategy).
//
// HOW TO CALL
//   const clusters = await loadClusterTable(ctx, join(md.dir, md.config.clusters.file));   // once per model dir
//   const r = getRecipe(style);                                                           // src/sampling/recipes.ts
//
//   Stage 1, CogLM — logits [batch, 20000] of the current step (only the last position's rows):
//     const ids = sampleCoglm(ctx, logits, { clusters, temperature: r.temperature, topk: r.topk,
//                                            topkCluster: r.top_k_cluster, seed, step });     // i32 tensor [batch]
//     feed `ids` to the next step's embedding on the GPU, or write them into a token buffer directly:
//       sampleCoglm(ctx, logits, { ..., out: tokens, outOffset: pos, outStride: seqLen })   // tokens[b·seqLen + pos]
//     const host = await readIds(ctx, ids);                                                  // Int32Array [batch]
//
//   Stage 2, DSR — one step over the 3600 high-res rows of each sample:
//     sampleDsr(ctx, logits, { clusters, topk: r.topk_dsr, temperature2: r.temp_cluster_dsr, seed })
//     logits may hold the whole sequence [batch·L, 20000]: pick rows with rowOffset (first high-res row of sample 0),
//     groupSize 3600, groupStride L. When a call covers only a chunk of the rows (bindings are ≤ 128 MiB on lavapipe,
//     ~1670 rows of 20000), pass rowBase = index of the chunk's first row in the whole batch so the draws do not
//     depend on the chunking.
//
//   Stage 3, LoPAR round `round` (1..6, src/sampling/lopar.ts has the mask schedule and ITERSR_TOPKS):
//     sampleTopk(ctx, logits, { topk: ITERSR_TOPKS[round], seed, step: round })   // temperature 1 as the original
//     then keep the sampled id only where the round's mask is set (loparMask(round, inputMask)).
//
//   Greedy (golden greedy cases): sampleGreedy(ctx, logits) — first index of the maximum.
//
// Every sampler takes the row selection { rows, rowOffset, groupSize, groupStride } (output row r reads logits row
// rowOffset + ⌊r/groupSize⌋·groupStride + r mod groupSize) and the output placement { out, outOffset, outStride }.
// Seeding: the draws of output row r depend only on (seed, step, rowBase + r, sampler); reusing a step number with
// the same seed and rows repeats the draws, so give each decoding step / round its own `step`.
// Ids are recorded, not yet computed: reading them (readIds / ctx.read) submits the work.
// Intermediates (cluster mass, top clusters and their probabilities, final distribution): clusterSampleDebug.
// Lower level: src/kernels/sampling.ts (clusterSampleGpu / topkSampleGpu / argmaxGpu take the RNG stream explicitly;
// pass STREAM_* of rng.ts to draw exactly what these wrappers draw). Cost per row: a few passes over the row, one
// workgroup per row (64 threads on software adapters, 256 on GPUs); clusters ≤ 512 (the original has 500).

import { join } from "node:path";
import { readNpy } from "../formats/npy.ts";
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  argmaxGpu,
  type ClusterDebug,
  clusterSampleGpu,
  type ClusterTable,
  clusterTable,
  type DrawOptions,
  readClusterDebug,
  type RowSelection,
  topkSampleGpu,
} from "../kernels/sampling.ts";
import { STREAM_COGLM, STREAM_DSR, STREAM_TOPK } from "./rng.ts";

export type { ClusterDebug, ClusterTable, DrawOptions, RowSelection };
export { clusterTable };

/** Draw options without the internal stream id. */
export type SampleOptions = Omit<DrawOptions, "stream">;

/** Reads cluster_label.npy (int labels of the image tokens) and uploads the cluster table. */
export async function loadClusterTable(
  ctx: GpuContext,
  path: string,
  numClusters?: number,
): Promise<ClusterTable> {
  const a = await readNpy(path);
  if (a.shape.length !== 1) throw new Error(`${path}: cluster labels must be 1-D, got [${a.shape}]`);
  return clusterTable(ctx, a.data as ArrayLike<number>, numClusters);
}

/** The cluster table of a converted model directory (config.clusters.file, num_clusters). */
export function loadModelClusters(
  ctx: GpuContext,
  modelDir: { dir: string; config: { clusters: { file: string; num_clusters?: number } } },
): Promise<ClusterTable> {
  const c = modelDir.config.clusters;
  return loadClusterTable(ctx, join(modelDir.dir, c.file), c.num_clusters);
}

export interface CoglmSampleOptions extends SampleOptions {
  clusters: ClusterTable;
  /** temp_all_gen (recipe.temperature): logits are divided by it first. */
  temperature: number;
  /** topk_gen (recipe.topk): clusters kept. */
  topk: number;
  /** temp_cluster_gen (recipe.top_k_cluster): divisor of the final in-cluster softmax. Default 1. */
  topkCluster?: number;
}

/** CoglmStrategy.forward: one token per selected row; i32 tensor [rows] (or `out`). */
export function sampleCoglm(ctx: GpuContext, logits: Tensor, o: CoglmSampleOptions): Tensor {
  return clusterSampleGpu(ctx, logits, o.clusters, {
    ...o,
    stream: STREAM_COGLM,
    temperature2: o.topkCluster ?? 1,
  }).ids;
}

export interface DsrSampleOptions extends SampleOptions {
  clusters: ClusterTable;
  /** topk_dsr: clusters kept. */
  topk: number;
  /** temp_cluster_dsr: divisor of the final in-cluster softmax (`temperature2`). */
  temperature2: number;
  /** The strategy's temperature; direct_sr calls it with 1 (temp_all_dsr is unused). Default 1. */
  temperature?: number;
}

/** The DSR IterativeEntfilterStrategy (dsr_sampling.py) over the selected rows; i32 tensor [rows] (or `out`). */
export function sampleDsr(ctx: GpuContext, logits: Tensor, o: DsrSampleOptions): Tensor {
  return clusterSampleGpu(ctx, logits, o.clusters, {
    ...o,
    stream: STREAM_DSR,
    temperature: o.temperature ?? 1,
  }).ids;
}

export interface TopkOptions extends SampleOptions {
  /** Keep logits ≥ the k-th largest (ties kept): ITERSR_TOPKS[round] for LoPAR. */
  topk: number;
  /** Default 1 (iterative_sr calls its strategy with temperature 1; temp_all_itersr is unused). */
  temperature?: number;
}

/** The iterative-SR IterativeEntfilterStrategy (itersr_sampling.py): top-k sampling; i32 tensor [rows] (or `out`). */
export function sampleTopk(ctx: GpuContext, logits: Tensor, o: TopkOptions): Tensor {
  return topkSampleGpu(ctx, logits, { ...o, stream: STREAM_TOPK });
}

/** Greedy: first index of each selected row's maximum; i32 tensor [rows] (or `out`). */
export function sampleGreedy(
  ctx: GpuContext,
  logits: Tensor,
  o: RowSelection & { out?: Tensor; outOffset?: number; outStride?: number } = {},
): Tensor {
  return argmaxGpu(ctx, logits, o);
}

/** Reads sampled ids back (submits pending work) and, by default, releases the tensor. */
export async function readIds(ctx: GpuContext, ids: Tensor, release = true): Promise<Int32Array> {
  const raw = await ctx.readBytes(ids);
  const out = new Int32Array(raw.buffer, 0, ids.size).slice();
  if (release) ids.release();
  return out;
}

/**
 * Cluster sampling with every intermediate read back (conformance and debugging): the cluster mass, the top-k
 * clusters and their normalised masses, the final distribution, and the ids. `forceRank` 0 takes the top cluster.
 */
export async function clusterSampleDebug(
  ctx: GpuContext,
  logits: Tensor,
  clusters: ClusterTable,
  o: SampleOptions & { temperature: number; temperature2: number; topk: number; forceRank?: number },
): Promise<ClusterDebug & { ids: Int32Array }> {
  const { ids, debug } = clusterSampleGpu(ctx, logits, clusters, { ...o, debug: true });
  const d = await readClusterDebug(ctx, debug!);
  return { ...d, ids: await readIds(ctx, ids) };
}
