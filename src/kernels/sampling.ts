// Launchers for the token samplers (shaders/sampling.wgsl): cluster sampling (CoglmStrategy / DSR strategy),
// top-k sampling (iterative SR), greedy argmax, and the Philox test entry. One workgroup per sampled row.
// Not the user-facing API: src/sampling/strategy.ts wraps these with the original's defaults and documents them.

import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { seedKey } from "../sampling/rng.ts";
import { check, grid1d } from "./_grid.ts";
import { clusterFusedFor } from "./choices.ts";

/** Cluster labels of the image tokens on the GPU (cluster_label.npy), in the layout the kernel reads. */
export interface ClusterTable {
  numClusters: number;
  /** Number of labelled tokens = the logits row width the table serves. */
  width: number;
  /** u32 [offsets (C+1) | tokens grouped by cluster, ascending (width) | label of each token (width)]. */
  tensor: Tensor;
  /** The labels (host copy). */
  labels: Int32Array;
  /** Tokens per cluster (host copy). */
  counts: Int32Array;
}

/** Threads per row: 64 on software adapters (lavapipe pays per barrier per thread), 256 on GPUs. */
export function samplingWorkgroupSize(ctx: GpuContext): 64 | 256 {
  return ctx.gpu.isFallback ? 64 : 256;
}

let rankSerialOverride: boolean | null = null;
/** Forces the cluster-rank pass: serial per row (CPU default) or parallel (GPU default); null restores the default. */
export function setClusterRankSerial(serial: boolean | null): void {
  rankSerialOverride = serial;
}

function wgDefines(ctx: GpuContext): { WG: number; SQ: number } {
  const wg = samplingWorkgroupSize(ctx);
  return { WG: wg, SQ: wg === 64 ? 8 : 16 };
}

/** Most clusters cluster_pick ranks in workgroup memory. */
export const MAX_CLUSTERS = 512;

/** Builds and uploads a cluster table from labels in [0, numClusters) (default: max label + 1). */
export function clusterTable(ctx: GpuContext, labels: ArrayLike<number>, numClusters?: number): ClusterTable {
  const W = labels.length;
  let maxLabel = -1;
  for (let i = 0; i < W; i++) {
    const l = labels[i];
    check(
      Number.isInteger(l) && l >= 0,
      "clusterTable",
      () => `label ${l} at ${i} is not a non-negative integer`,
    );
    if (l > maxLabel) maxLabel = l;
  }
  const C = numClusters ?? maxLabel + 1;
  check(maxLabel < C, "clusterTable", () => `label ${maxLabel} is out of range for ${C} clusters`);
  check(
    C >= 1 && C <= MAX_CLUSTERS,
    "clusterTable",
    () => `${C} clusters (the kernel handles 1..${MAX_CLUSTERS})`,
  );
  const counts = new Int32Array(C);
  for (let i = 0; i < W; i++) counts[labels[i]]++;
  const data = new Uint32Array(C + 1 + 2 * W);
  for (let c = 0; c < C; c++) data[c + 1] = data[c] + counts[c];
  const fill = data.slice(0, C);
  for (let i = 0; i < W; i++) {
    const l = labels[i];
    data[C + 1 + fill[l]++] = i;
    data[C + 1 + W + i] = l;
  }
  return {
    numClusters: C,
    width: W,
    tensor: ctx.upload(data, [data.length], "u32"),
    labels: Int32Array.from(labels),
    counts,
  };
}

/** Which rows of `logits` are sampled; output row r reads logits row offset + ⌊r/groupSize⌋·groupStride + r mod groupSize. */
export interface RowSelection {
  /** Rows to sample (default: every whole group after rowOffset; without groups, all rows after rowOffset). */
  rows?: number;
  /** First logits row (default 0). */
  rowOffset?: number;
  /** Rows per group, e.g. 3600 high-res rows of each sample (default: rows). */
  groupSize?: number;
  /** Logits rows between groups, e.g. the sequence length (default: groupSize). */
  groupStride?: number;
}

/** RNG and output placement shared by the random samplers. */
export interface DrawOptions extends RowSelection {
  /** Job seed: an integer in [0, 2^53). */
  seed: number;
  /** Decoding step / round (part of the counter; default 0). */
  step?: number;
  /** Random stream id (keeps samplers apart; the strategy API sets it). */
  stream?: number;
  /** RNG row id of output row 0 (default 0): pass the global row index when a call samples a chunk of rows. */
  rowBase?: number;
  /** Write ids into this i32/u32 tensor instead of a new [rows] one ... */
  out?: Tensor;
  /** ... at outOffset + r·outStride (elements; defaults 0 and 1). */
  outOffset?: number;
  outStride?: number;
}

export interface ClusterSampleOptions extends DrawOptions {
  /** logits are divided by this first (CoglmStrategy temperature; 1 for DSR). */
  temperature: number;
  /** The divisor of the final in-cluster softmax (top_k_cluster for CogLM, temperature2 for DSR). */
  temperature2: number;
  /** Number of top clusters kept. */
  topk: number;
  /** Take the cluster of this rank instead of drawing one (conformance: 0 = the highest-mass cluster). */
  forceRank?: number;
  /** Also produce the intermediates (ClusterDebug). */
  debug?: boolean;
  /**
   * All five passes in one dispatch (shaders/sampling.wgsl CFUSED; the same ids); default: choices.ts
   * clusterFusedFor (COGVIEW2_SAMPLER_FUSED, else the table). Not with `debug`.
   */
  fused?: boolean;
}

/** Intermediates of a debug cluster_sample call (read with readClusterDebug). */
export interface ClusterDebug {
  /** [rows, C] per-cluster sum of softmax(logits / temperature). */
  clusterMass: Float32Array;
  /** [rows, k] the top-k cluster ids, highest mass first. */
  topClusters: Int32Array;
  /** [rows, k] their masses normalised to sum 1 (the distribution the cluster is drawn from). */
  topClusterProbs: Float32Array;
  /** [rows, width] the distribution the token is drawn from. */
  finalProbs: Float32Array;
}

interface Resolved {
  rows: number;
  width: number;
  rowOffset: number;
  groupSize: number;
  groupStride: number;
}

function resolveRows(name: string, logits: Tensor, o: RowSelection): Resolved {
  check(logits.dtype === "f32", name, () => `logits must be f32, got ${logits.dtype}`);
  check(logits.shape.length >= 1, name, "logits need a last (vocabulary) dimension");
  const width = logits.shape[logits.shape.length - 1];
  check(width >= 1, name, "empty logits rows");
  const total = logits.size / width;
  const rowOffset = o.rowOffset ?? 0;
  let rows = o.rows;
  if (rows === undefined) {
    // default: every whole group that fits after rowOffset (all remaining rows without groups)
    if (o.groupSize === undefined) rows = Math.max(0, total - rowOffset);
    else {
      const gs = o.groupSize, st = o.groupStride ?? gs;
      const groups = total - rowOffset < gs ? 0 : st > 0 ? Math.floor((total - rowOffset - gs) / st) + 1 : 1;
      rows = groups * gs;
    }
  }
  const groupSize = o.groupSize ?? Math.max(1, rows);
  const groupStride = o.groupStride ?? groupSize;
  check(rows >= 0 && Number.isInteger(rows), name, () => `rows ${rows}`);
  check(groupSize >= 1, name, () => `groupSize ${groupSize}`);
  if (rows > 0) {
    const last = rowOffset + Math.floor((rows - 1) / groupSize) * groupStride +
      Math.min(rows - 1, groupSize - 1);
    check(last < total, name, () => `row selection reaches logits row ${last}, the tensor has ${total} rows`);
  }
  return { rows, width, rowOffset, groupSize, groupStride };
}

function rowsGrid(n: number): [number, number, number] {
  const y = Math.max(1, Math.ceil(n / 65535));
  return [Math.ceil(n / y), y, 1];
}

function outTensor(
  ctx: GpuContext,
  name: string,
  rows: number,
  o: DrawOptions | RowSelection & { out?: Tensor; outOffset?: number; outStride?: number },
): {
  out: Tensor;
  offset: number;
  stride: number;
} {
  const offset = o.outOffset ?? 0, stride = o.outStride ?? 1;
  if (o.out) {
    check(o.out.dtype === "i32" || o.out.dtype === "u32", name, () => `out must be i32, got ${o.out!.dtype}`);
    check(
      rows === 0 || offset + (rows - 1) * stride < o.out.size,
      name,
      () => `out [${o.out!.shape}] is too small`,
    );
    return { out: o.out, offset, stride };
  }
  return { out: ctx.empty([rows], "i32"), offset: 0, stride: 1 };
}

// Params layout of shaders/sampling.wgsl (21 words).
function params(
  s: Resolved,
  extra: {
    nclusters?: number;
    k?: number;
    t?: number;
    t2?: number;
    o?: DrawOptions;
    forceRank?: number;
    ps?: number;
  },
  out: { offset: number; stride: number },
  wg: { WG: number; SQ: number },
) {
  const [s0, s1] = extra.o ? seedKey(extra.o.seed) : [0, 0];
  return [
    s.rows,
    s.width,
    extra.nclusters ?? 0,
    extra.k ?? 0,
    f32(extra.t ?? 1),
    f32(extra.t2 ?? 1),
    s0,
    s1,
    (extra.o?.step ?? 0) >>> 0,
    (extra.o?.stream ?? 0) >>> 0,
    (extra.o?.rowBase ?? 0) >>> 0,
    s.rowOffset,
    s.groupSize,
    s.groupStride,
    extra.forceRank === undefined ? 0xffffffff : extra.forceRank,
    out.offset,
    out.stride,
    wg.WG,
    wg.SQ,
    256,
    extra.ps ?? 0,
  ];
}

/** Debug tensors of clusterSampleGpu (see ClusterDebug). */
export interface ClusterDebugTensors {
  mass: Tensor;
  top: Tensor;
  probs: Tensor;
  final: Tensor;
}

/**
 * Records cluster sampling of the selected rows of `logits` [..., width] (width = table.width) in five small passes
 * (cluster_mass, cluster_norm, cluster_rank, cluster_draw, cluster_token). Returns ids (i32 [rows], or `o.out`) and,
 * with `debug`, tensors of intermediates for readClusterDebug.
 */
export function clusterSampleGpu(
  ctx: GpuContext,
  logits: Tensor,
  table: ClusterTable,
  o: ClusterSampleOptions,
): { ids: Tensor; debug?: ClusterDebugTensors } {
  const name = "cluster_sample";
  const s = resolveRows(name, logits, o);
  check(s.width === table.width, name, () => `logits width ${s.width} != cluster table width ${table.width}`);
  check(
    Number.isInteger(o.topk) && o.topk >= 1 && o.topk <= table.numClusters,
    name,
    () => `topk ${o.topk} must be in 1..${table.numClusters}`,
  );
  check(o.temperature > 0 && o.temperature2 > 0, name, "temperatures must be positive");
  const C = table.numClusters, K = o.topk;
  const { out, offset, stride } = outTensor(ctx, name, s.rows, o);
  const wg = wgDefines(ctx);
  const p = params(
    s,
    { nclusters: C, k: K, t: o.temperature, t2: o.temperature2, o, forceRank: o.forceRank },
    { offset, stride },
    wg,
  );
  const grid = rowsGrid(s.rows);
  const dbg = !!o.debug;
  const pass = (
    entry: string,
    def: string,
    bindings: ("read" | "write")[],
    extra: Record<string, boolean> = {},
  ) =>
    ctx.kernel({
      name: entry + (extra.DEBUG ? "_debug" : ""),
      shader: "sampling.wgsl",
      entry,
      defines: { [def]: 1, ...extra, ...wg },
      bindings,
    });
  const fused = !dbg && (o.fused ?? clusterFusedFor(ctx));
  // Temporaries taken in the same order on both paths (pairs, mass, top): the pool's cycle, hence the bind groups a
  // decode step reuses, depends on it (tests/models/host_syncs_test.ts: none created after the first steps).
  const pairs = ctx.empty([s.rows, C, 2], "f32");
  const fiveMass = fused ? undefined : ctx.empty([s.rows, C], "f32");
  const top = ctx.empty([s.rows, K, 2], "f32");
  if (fused) {
    ctx.dispatch(
      pass("cluster_fused", "CFUSED", ["read", "read", "write", "write", "write"]),
      p,
      [logits, table.tensor, pairs, top, out],
      grid,
    );
    pairs.release();
    top.release();
    return { ids: out };
  }
  const mass = fiveMass!;
  const sel = ctx.empty([s.rows], "u32");
  const probs = dbg ? ctx.empty([s.rows, K], "f32") : undefined;
  const final = dbg ? ctx.empty([s.rows, s.width], "f32") : undefined;
  ctx.dispatch(
    pass("cluster_mass", "CMASS", ["read", "read", "write"]),
    p,
    [logits, table.tensor, pairs],
    grid,
  );
  ctx.dispatch(pass("cluster_norm", "CNORM", ["read", "read", "write"]), p, [logits, pairs, mass], grid);
  if ((rankSerialOverride ?? ctx.gpu.isFallback) && K <= 128) {
    // CPU adapters: one invocation per row, top k kept in private arrays (see shaders/sampling.wgsl).
    const serial = ctx.kernel({
      name: "cluster_rank_serial",
      shader: "sampling.wgsl",
      entry: "cluster_rank_serial",
      defines: { CRANK_SERIAL: 1, KMAX: K <= 16 ? 16 : 128, ...wg },
      bindings: ["read", "read", "write"],
    });
    ctx.dispatch(serial, p, [logits, mass, top], grid1d(s.rows, 64));
  } else {
    ctx.dispatch(pass("cluster_rank", "CRANK", ["read", "read", "write"]), p, [logits, mass, top], grid);
  }
  ctx.dispatch(
    pass("cluster_draw", "CDRAW", dbg ? ["read", "read", "write", "write"] : ["read", "read", "write"], {
      DEBUG: dbg,
    }),
    p,
    dbg ? [logits, top, sel, probs!] : [logits, top, sel],
    [Math.ceil(s.rows / 64), 1, 1],
  );
  ctx.dispatch(
    pass(
      "cluster_token",
      "CTOKEN",
      dbg ? ["read", "read", "read", "write", "write"] : ["read", "read", "read", "write"],
      { DEBUG: dbg },
    ),
    p,
    dbg ? [logits, table.tensor, sel, out, final!] : [logits, table.tensor, sel, out],
    grid,
  );
  pairs.release();
  sel.release();
  if (!dbg) {
    mass.release();
    top.release();
    return { ids: out };
  }
  return { ids: out, debug: { mass, top, probs: probs!, final: final! } };
}

/** Reads the debug tensors of clusterSampleGpu back (and releases them). */
export async function readClusterDebug(ctx: GpuContext, d: ClusterDebugTensors): Promise<ClusterDebug> {
  const clusterMass = await ctx.readF32(d.mass);
  const top = await ctx.readF32(d.top);
  const topClusterProbs = await ctx.readF32(d.probs);
  const finalProbs = await ctx.readF32(d.final);
  for (const t of [d.mass, d.top, d.probs, d.final]) t.release();
  const topClusters = new Int32Array(top.length / 2);
  for (let i = 0; i < topClusters.length; i++) topClusters[i] = top[2 * i];
  return { clusterMass, topClusters, topClusterProbs, finalProbs };
}

export interface TopkSampleOptions extends DrawOptions {
  /** Keep tokens whose logit/temperature is ≥ the k-th largest (ties kept). */
  topk: number;
  /** Default 1 (iterative SR calls its strategy with temperature 1). */
  temperature?: number;
  /**
   * How the k-th largest is found: "radix" (4 passes, a workgroup per row) or "serial" (one invocation per row,
   * k ≤ TOPK_SERIAL_MAX). Default: serial on CPU adapters where k allows, else radix. Both give the same threshold.
   */
  selection?: "radix" | "serial";
}

/** Largest k the serial top-k selection keeps (its private array). */
export const TOPK_SERIAL_MAX = 64;

/**
 * Records top-k sampling of the selected rows of `logits` [..., width] (4 radix-select passes and a draw);
 * returns ids i32 [rows] (or `o.out`).
 */
export function topkSampleGpu(ctx: GpuContext, logits: Tensor, o: TopkSampleOptions): Tensor {
  const name = "topk_sample";
  const s = resolveRows(name, logits, o);
  check(Number.isInteger(o.topk) && o.topk >= 1, name, () => `topk ${o.topk} must be a positive integer`);
  const t = o.temperature ?? 1;
  check(t > 0, name, "temperature must be positive");
  const { out, offset, stride } = outTensor(ctx, name, s.rows, o);
  const wg = wgDefines(ctx);
  const grid = rowsGrid(s.rows);
  const state = ctx.empty([s.rows, 2], "u32");
  const k = Math.min(o.topk, s.width);
  const serial =
    (o.selection ?? (ctx.gpu.isFallback && k <= TOPK_SERIAL_MAX ? "serial" : "radix")) === "serial";
  check(
    !serial || k <= TOPK_SERIAL_MAX,
    name,
    () => `serial selection keeps at most ${TOPK_SERIAL_MAX}, topk ${k}`,
  );
  if (serial) {
    // lavapipe, 2300 rows × 20000 (a LoPAR round at the published size): see shaders/sampling.wgsl topk_serial.
    const sel = ctx.kernel({
      name: "topk_serial",
      shader: "sampling.wgsl",
      entry: "topk_serial",
      defines: { TSERIAL: 1, KMAX: TOPK_SERIAL_MAX, ...wg },
      bindings: ["read", "write"],
    });
    ctx.dispatch(sel, params(s, { k, t, o }, { offset, stride }, wg), [logits, state], grid1d(s.rows, 64));
  } else {
    const radix = ctx.kernel({
      name: "topk_radix",
      shader: "sampling.wgsl",
      entry: "topk_radix",
      defines: { TRADIX: 1, ...wg },
      bindings: ["read", "write"],
    });
    for (let ps = 0; ps < 4; ps++) {
      ctx.dispatch(radix, params(s, { k, t, o, ps }, { offset, stride }, wg), [logits, state], grid);
    }
  }
  const draw = ctx.kernel({
    name: "topk_draw",
    shader: "sampling.wgsl",
    entry: "topk_draw",
    defines: { TDRAW: 1, ...wg },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(draw, params(s, { k: Math.min(o.topk, s.width), t, o }, { offset, stride }, wg), [
    logits,
    state,
    out,
  ], grid);
  state.release();
  return out;
}

/** Records the greedy choice (first index of the maximum) of the selected rows; ids i32 [rows] (or `o.out`). */
export function argmaxGpu(
  ctx: GpuContext,
  logits: Tensor,
  o: RowSelection & { out?: Tensor; outOffset?: number; outStride?: number } = {},
): Tensor {
  const name = "argmax_rows";
  const s = resolveRows(name, logits, o);
  const { out, offset, stride } = outTensor(ctx, name, s.rows, o);
  const k = ctx.kernel({
    name,
    shader: "sampling.wgsl",
    entry: "argmax_rows",
    defines: { ARGMAX: 1, ...wgDefines(ctx) },
    bindings: ["read", "write"],
  });
  ctx.dispatch(k, params(s, {}, { offset, stride }, wgDefines(ctx)), [logits, out], rowsGrid(s.rows));
  return out;
}

/** Philox words of counters (rowBase + i, step, stream, 0), i < n, computed on the GPU: u32 [n, 4] (tests). */
export function philoxGpu(
  ctx: GpuContext,
  o: { seed: number; step?: number; stream?: number; rowBase?: number },
  n: number,
): Tensor {
  const out = ctx.empty([n, 4], "u32");
  const dummy = ctx.empty([1], "f32");
  const k = ctx.kernel({
    name: "philox",
    shader: "sampling.wgsl",
    entry: "rng_test",
    defines: { RNG_TEST: 1, ...wgDefines(ctx) },
    bindings: ["read", "write"],
  });
  const s: Resolved = { rows: n, width: 1, rowOffset: 0, groupSize: 1, groupStride: 1 };
  ctx.dispatch(k, params(s, { o: { ...o } }, { offset: 0, stride: 1 }, wgDefines(ctx)), [dummy, out], [
    Math.ceil(n / 64),
    1,
    1,
  ]);
  dummy.release();
  return out;
}
