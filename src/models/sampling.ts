// The samplers of CogView2 on the GPU: CoglmStrategy (stage 1), the DSR cluster strategy (stage 2), LoPAR's top-k
// (stage 3) and greedy, each on its own random stream. Rows of f32 logits stay on the GPU; only the chosen ids (i32)
// come back, when the caller reads them. Used by the models (coglm.ts, and the SR models' pickTokens in sr_common.ts);
// the kernels are src/kernels/sampling.ts, the generator src/sampling/rng.ts.
// Not torch: draws use this project's Philox generator, so the same seed gives the same tokens here (on one
// adapter), never the original's tokens; the distributions are the original's (checked against its golden
// intermediates by the conformance kinds coglm_strategy / dsr_strategy).
//
// Every sampler takes the row selection { rows, rowOffset, groupSize, groupStride } (output row r reads logits row
// rowOffset + ⌊r/groupSize⌋·groupStride + r mod groupSize) and the output placement { out, outOffset, outStride }.
// Seeding: the draws of output row r depend only on (seed, step, rowBase + r, sampler); reusing a step number with
// the same seed and rows repeats the draws, so give each decoding step / round its own `step`. When a call covers
// only a chunk of the rows, pass rowBase = the chunk's first row in the whole batch so the draws do not depend on the
// chunking. Cost per row: a few passes over the row, one workgroup per row (64 threads on software adapters, 256 on
// GPUs); clusters ≤ 512 (the original has 500).

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
import { STREAM_COGLM, STREAM_DSR, STREAM_TOPK } from "../sampling/rng.ts";

export type { ClusterDebug, ClusterTable, DrawOptions, RowSelection };
export { clusterTable };

/** Draw options without the internal stream id. */
export type SampleOptions = Omit<DrawOptions, "stream">;

/** The cluster table of a converted model directory (config.clusters.file, num_clusters). */
export async function loadModelClusters(
  ctx: GpuContext,
  modelDir: { dir: string; config: { clusters: { file: string; num_clusters?: number } } },
): Promise<ClusterTable> {
  const c = modelDir.config.clusters, path = join(modelDir.dir, c.file);
  const a = await readNpy(path);
  if (a.shape.length !== 1) throw new Error(`${path}: cluster labels must be 1-D, got [${a.shape}]`);
  return clusterTable(ctx, a.data as ArrayLike<number>, c.num_clusters);
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
  /** Keep logits ≥ the k-th largest (ties kept): LOPAR_TOPKS[round] for LoPAR. */
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
  const got = (await ctx.read(ids)) as Int32Array;
  ids.release();
  return { ...d, ids: got };
}
