// Plain TypeScript twins of shaders/sampling.wgsl (cluster sampling, top-k sampling, argmax), written as the
// original's torch code reads, in float64, with the project's Philox draws. Slow and obvious; used by tests and as
// the CPU baseline of tools/bench/sampling.ts. Not bit-identical to the GPU: sums run in another order, so a draw that
// lands within rounding of a boundary may pick the neighbouring token (tests allow a tiny fraction of such rows).

import { samplerUniforms } from "../sampling/rng.ts";

export interface CpuDraw {
  seed: number;
  step?: number;
  stream?: number;
  rowBase?: number;
}

/** First index whose running sum of `w` exceeds u·Σw (the last positive one if rounding leaves none); -1 if all zero. */
export function drawIndex(w: ArrayLike<number>, u: number): number {
  let tot = 0;
  for (let i = 0; i < w.length; i++) tot += w[i];
  const target = u * tot;
  let cum = 0, last = -1;
  for (let i = 0; i < w.length; i++) {
    if (w[i] > 0) {
      last = i;
      if (cum + w[i] > target) return i;
    }
    cum += w[i];
  }
  return last;
}

export interface ClusterSampleCpuResult {
  ids: Int32Array;
  clusterMass: Float32Array;
  topClusters: Int32Array;
  topClusterProbs: Float32Array;
  finalProbs: Float32Array;
}

/**
 * CoglmStrategy.forward / dsr IterativeEntfilterStrategy.forward on `rows` rows of `logits` [rows, width]:
 * x = logits/temperature, mass = per-cluster Σ softmax(x), top-k clusters, draw one ∝ mass (or rank forceRank),
 * token ~ softmax(x/temperature2) restricted to the cluster.
 */
export function clusterSampleCpu(
  logits: Float32Array,
  rows: number,
  width: number,
  labels: ArrayLike<number>,
  numClusters: number,
  o: CpuDraw & { temperature: number; temperature2: number; topk: number; forceRank?: number },
): ClusterSampleCpuResult {
  const C = numClusters, K = o.topk;
  const res: ClusterSampleCpuResult = {
    ids: new Int32Array(rows),
    clusterMass: new Float32Array(rows * C),
    topClusters: new Int32Array(rows * K),
    topClusterProbs: new Float32Array(rows * K),
    finalProbs: new Float32Array(rows * width),
  };
  const x = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const [u0, u1] = samplerUniforms(o.seed, o.step ?? 0, (o.rowBase ?? 0) + r, o.stream ?? 0);
    let m = -Infinity;
    for (let j = 0; j < width; j++) {
      x[j] = Math.fround(logits[r * width + j] / o.temperature);
      if (x[j] > m) m = x[j];
    }
    let s = 0;
    for (let j = 0; j < width; j++) s += Math.exp(x[j] - m);
    const mass = new Float64Array(C);
    for (let j = 0; j < width; j++) mass[labels[j]] += Math.exp(x[j] - m) / s;
    for (let c = 0; c < C; c++) res.clusterMass[r * C + c] = mass[c];
    const order = Array.from({ length: C }, (_, c) => c).sort((a, b) => mass[b] - mass[a] || a - b).slice(
      0,
      K,
    );
    let tot = 0;
    for (const c of order) tot += mass[c];
    order.forEach((c, j) => {
      res.topClusters[r * K + j] = c;
      res.topClusterProbs[r * K + j] = mass[c] / tot;
    });
    const rank = o.forceRank !== undefined
      ? Math.min(o.forceRank, K - 1)
      : Math.max(0, drawIndex(order.map((c) => mass[c]), u0));
    const cl = order[rank];
    // masked tokens get -65504 (fp16 min) in the original: exactly zero probability after the softmax
    let m2 = -Infinity;
    for (let j = 0; j < width; j++) if (labels[j] === cl) m2 = Math.max(m2, x[j] / o.temperature2);
    const w = new Float64Array(width);
    let s2 = 0;
    for (let j = 0; j < width; j++) {
      if (labels[j] === cl) s2 += w[j] = Math.exp(x[j] / o.temperature2 - m2);
    }
    for (let j = 0; j < width; j++) res.finalProbs[r * width + j] = w[j] / s2;
    res.ids[r] = drawIndex(w, u1);
  }
  return res;
}

/** itersr_sampling top-k: x = logits/temperature; drop x < k-th largest; token ~ softmax(x). */
export function topkSampleCpu(
  logits: Float32Array,
  rows: number,
  width: number,
  o: CpuDraw & { topk: number; temperature?: number },
): { ids: Int32Array; threshold: Float32Array } {
  const t = o.temperature ?? 1;
  const k = Math.min(o.topk, width);
  const ids = new Int32Array(rows), threshold = new Float32Array(rows);
  const x = new Float32Array(width);
  for (let r = 0; r < rows; r++) {
    const [, u1] = samplerUniforms(o.seed, o.step ?? 0, (o.rowBase ?? 0) + r, o.stream ?? 0);
    for (let j = 0; j < width; j++) x[j] = logits[r * width + j] / t;
    const thr = Float32Array.from(x).sort()[width - k];
    threshold[r] = thr;
    let m = -Infinity;
    for (let j = 0; j < width; j++) m = Math.max(m, x[j]);
    const w = new Float64Array(width);
    for (let j = 0; j < width; j++) if (x[j] >= thr) w[j] = Math.exp(x[j] - m);
    ids[r] = drawIndex(w, u1);
  }
  return { ids, threshold };
}

/** Greedy: the first index of each row's maximum. */
export function argmaxCpu(logits: Float32Array, rows: number, width: number): Int32Array {
  const ids = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let b = 0;
    for (let j = 1; j < width; j++) if (logits[r * width + j] > logits[r * width + b]) b = j;
    ids[r] = b;
  }
  return ids;
}
