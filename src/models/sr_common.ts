// What CogView2's two super-resolution models (DsrModel, ItersrModel) share around the one SAT layer stack of
// src/models/transformer.ts: loading it with the extra position table, the upload of a forward's ids and position
// rows, the masked (level-0) attention both plug into their attention hook, logits in row blocks, size and free.
// The layouts / masks / windows are src/geometry/sr.ts; the local (level-1) attention is src/kernels/local_attention.ts.
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { flashAttention } from "../kernels/attention.ts";
import { type Rows, sequenceRows } from "../kernels/local_attention.ts";
import { matmul } from "../kernels/matmul.ts";
import { softmax } from "../kernels/softmax.ts";
import { runSteps, type Steps } from "./cancel.ts";
import type { SrConfig } from "./config.ts";
import { type ClusterTable, sampleDsr, sampleGreedy, sampleTopk } from "./sampling.ts";
import {
  allocScratch,
  type AttentionHook,
  embed,
  loadTransformer,
  logits,
  logitsBlockRows,
  positionRows,
  releaseScratch,
  releaseTransformer,
  type TransformerDims,
  transformerDims,
  transformerLayers,
  type TransformerWeights,
} from "./transformer.ts";

/**
 * Rows per logits block of a pick at most: each block is one step a cancellation can stop after (a LoPAR block of 838
 * rows, the binding-sized block at 20000 image tokens, took 2-3 s with its top-k sampler on lavapipe under load; 256
 * rows, under 1 s). The draws do not depend on the blocks.
 */
export const PICK_BLOCK_ROWS = 256;

/** The SR models' second position table (positions ≥ max_sequence_length: the high-res grid). */
const EXTRA_POSITIONS = "mixins.extra_position_embedding.position_embeddings.weight";

/** Dims and weights of an SR model's transformer (sandwich LayerNorm, two position tables). */
export async function loadSrTransformer(
  ctx: GpuContext,
  src: WeightSource,
  cfg: SrConfig,
): Promise<{ dims: TransformerDims; weights: TransformerWeights }> {
  if (cfg.layernorm_order !== "sandwich") {
    throw new Error(
      `${src.origin}: layernorm_order "${cfg.layernorm_order}" (the SR models are sandwich-LN)`,
    );
  }
  const dims = transformerDims(cfg);
  return { dims, weights: await loadTransformer(ctx, src, dims, { extraPositions: EXTRA_POSITIONS }) };
}

/**
 * The SR attention's q, k and v as three [rows, hidden] planes of the QKV scratch (q | k | v one after the other
 * instead of interleaved per row), each its own binding: a [rows, 3·hidden] tensor may exceed the max storage
 * binding where [rows, hidden] does not (DSR's 4096 rows). Rows of sequence b start at b·seqLen.
 */
export interface QkvPlanes {
  q: Rows;
  k: Rows;
  v: Rows;
}

export function qkvPlanes(ctx: GpuContext, qkv: Tensor, o: { hidden: number; seqLen: number }): QkvPlanes {
  const n = qkv.size / 3;
  const plane = (i: number): Rows => {
    const v = ctx.alignedView(qkv, i * n, (i + 1) * n);
    return { tensor: v.t, offset: v.off, rowStride: o.hidden, batchStride: o.seqLen * o.hidden };
  };
  return { q: plane(0), k: plane(1), v: plane(2) };
}

/** Rows `first`.. of each sequence of a plane. */
export function fromToken(r: Rows, first: number): Rows {
  return { ...r, offset: r.offset + first * r.rowStride };
}

/**
 * The QKV projection of `rows` rows from `row0` of each of `batch` sequences (seqLen rows apart in x and the planes)
 * into the q, k, v planes: three matmuls over the thirds of the fused weight [3·hidden, hidden] and its bias.
 */
export function projectQkv(
  ctx: GpuContext,
  lin: { weight: Tensor; bias: Tensor },
  x: Tensor,
  p: QkvPlanes,
  o: { rows: number; row0: number; batch: number; seqLen: number; hidden: number },
): void {
  const H = o.hidden;
  [p.q, p.k, p.v].forEach((part, i) => {
    matmul(ctx, x, lin.weight, {
      constantW: true,
      M: o.rows,
      N: H,
      K: H,
      batch: o.batch,
      aOff: o.row0 * H,
      aBatchStride: o.seqLen * H,
      wOff: i * H * H,
      bias: lin.bias,
      biasOff: i * H,
      out: part.tensor,
      cOff: part.offset + o.row0 * part.rowStride,
      ldc: part.rowStride,
      cBatchStride: part.batchStride,
    });
  });
}

/**
 * Standard masked attention of `s` rows per sequence among themselves, all heads: softmax(q·kᵀ/√d + add)·v written
 * to `out` (head h in columns h·d..). q, k, v, out: rows of `batch` sequences (head h at column h·d of a row).
 * `add` [s, s] or [1, s] holds the log weights on visible entries and -1e9 on masked ones (maskToAdd). On the matmul
 * path the score matrices of as many heads as fit one storage binding are computed at a time.
 */
export function maskedAttention(
  ctx: GpuContext,
  o: {
    batch: number;
    s: number;
    heads: number;
    headDim: number;
    q: Rows;
    k: Rows;
    v: Rows;
    add: Tensor;
    out: Rows;
    /** Default: "flash" (no score matrix) on GPUs, the batched matmuls on CPU adapters. */
    path?: "flash" | "matmul";
  },
): void {
  const { s, heads, headDim: d, q, k, v, out } = o;
  // Planes of several sequences above one binding (batch >= 2 at published widths): one sequence at a time.
  if (o.batch > 1 && [q, k, v, out].some((r) => r.tensor.byteLength > ctx.maxBinding)) {
    for (let b = 0; b < o.batch; b++) {
      const seq = (r: Rows) => sequenceRows(ctx, r, b, s, heads * d);
      maskedAttention(ctx, { ...o, batch: 1, q: seq(q), k: seq(k), v: seq(v), out: seq(out) });
    }
    return;
  }
  const view = (r: Rows, r0 = 0) => ({
    t: r.tensor,
    off: r.offset + r0 * r.rowStride,
    ld: r.rowStride,
    bs: r.batchStride,
  });
  // A [s, s] matrix (one head's scores, or the add rows) above one binding: query-row blocks of qb rows.
  const qb = s * s * 4 <= ctx.maxBinding ? s : Math.max(1, Math.floor(ctx.maxBinding / (s * 4)));
  const addRows = o.add.size / s;
  // The add rows of a query block: copied out when add has a row per query (softmax reads add[r % addRows]).
  const addBlock = qb < s && addRows > 1 ? ctx.empty([qb, s]) : null;
  const addFor = (r0: number, m: number) => {
    if (!addBlock) return o.add;
    ctx.copy(
      { buffer: o.add.buffer, offset: o.add.byteOffset + r0 * s * 4, size: m * s * 4 },
      addBlock,
      m * s * 4,
    );
    return addBlock;
  };
  if ((o.path ?? (ctx.gpu.isFallback || d > 128 ? "matmul" : "flash")) === "flash") {
    for (let r0 = 0; r0 < s; r0 += qb) {
      const m = Math.min(qb, s - r0);
      flashAttention(ctx, {
        batch: o.batch,
        heads,
        headDim: d,
        rows: m,
        keys: s,
        q: view(q, r0),
        k: view(k),
        v: view(v),
        out: view(out, r0),
        add: { t: addFor(r0, m), ld: addRows === 1 ? 0 : s },
      });
    }
    addBlock?.release();
    return;
  }
  // Score matrices of as many heads as fit one binding (one head in query-row blocks when its [s, s] does not).
  const hb = Math.max(1, Math.min(heads, Math.floor(ctx.maxBinding / (s * s * 4))));
  const scores = ctx.empty([hb * qb, s]), probs = ctx.empty([hb * qb, s]);
  for (let b = 0; b < o.batch; b++) {
    for (let h0 = 0; h0 < heads; h0 += hb) {
      const hn = Math.min(hb, heads - h0);
      for (let r0 = 0; r0 < s; r0 += qb) {
        const m = Math.min(qb, s - r0);
        const add = addFor(r0, m);
        matmul(ctx, q.tensor, k.tensor, {
          M: m,
          N: s,
          K: d,
          transW: true,
          batch: hn,
          lda: q.rowStride,
          ldw: k.rowStride,
          aOff: q.offset + b * q.batchStride + r0 * q.rowStride + h0 * d,
          wOff: k.offset + b * k.batchStride + h0 * d,
          aBatchStride: d,
          wBatchStride: d,
          alpha: 1 / Math.sqrt(d),
          out: scores,
        });
        softmax(ctx, scores, { n: s, rows: hn * m, add, out: probs });
        matmul(ctx, probs, v.tensor, {
          M: m,
          N: d,
          K: s,
          transW: false,
          batch: hn,
          aBatchStride: m * s,
          ldw: v.rowStride,
          wOff: v.offset + b * v.batchStride + h0 * d,
          wBatchStride: d,
          out: out.tensor,
          cOff: out.offset + b * out.batchStride + r0 * out.rowStride + h0 * d,
          ldc: out.rowStride,
          cBatchStride: d,
        });
      }
    }
  }
  scores.release();
  probs.release();
  addBlock?.release();
}

/**
 * How an SR model picks the token of a predicted row: argmax (the golden greedy cases), the DSR cluster sampler
 * (topk clusters, in-cluster temperature2, temperature 1 as direct_sr calls it) or LoPAR's top-k (temperature 1).
 */
export type SrPick =
  | { kind: "greedy" }
  | {
    kind: "cluster";
    clusters: ClusterTable;
    topk: number;
    temperature2: number;
    seed: number;
    step: number;
  }
  | { kind: "topk"; topk: number; seed: number; step: number };

/** A run of consecutive hidden rows to pick tokens for: RNG row `rowBase` for its first row, ids from `outOffset`. */
export interface PickGroup {
  row0: number;
  rows: number;
  rowBase: number;
  outOffset: number;
}

/** The SR models' common part: config, geometry, the transformer weights and its forward with a model's attention. */
export abstract class SrModel<G extends { seqLen: number }> {
  readonly geometry: G;

  protected constructor(
    readonly ctx: GpuContext,
    readonly cfg: SrConfig,
    readonly dims: TransformerDims,
    readonly weights: TransformerWeights,
    geometry: (cfg: SrConfig) => G,
  ) {
    this.geometry = geometry(cfg);
  }

  /** Bytes of weights on the GPU. */
  get bytes(): number {
    return this.weights.bytes;
  }

  release(): void {
    releaseTransformer(this.weights);
  }

  /**
   * The model's forward of `batch` sequences (tokens / position ids concatenated) with its mask (and log attention
   * weights) up to the final LayerNorm, recorded at once (forwardSteps without stops).
   */
  forward(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Tensor {
    return runSteps(this.forwardSteps(tokens, positionIds, batch, mask, logAttentionWeights));
  }

  /** `forward` as recording steps, for a caller that stops it early (src/models/cancel.ts). */
  abstract forwardSteps(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Steps<Tensor>;

  /**
   * The forward of `batch` sequences (tokens / position ids concatenated, geometry.seqLen each; position ids of the
   * first `split` tokens of each from the base table) up to the final LayerNorm: [batch·seqLen, hidden], with
   * `attention(batch)` as each layer's attention block. `what` names the model in errors. Recording steps
   * (transformerLayers'); closed early, the scratch buffers go back to the pool.
   */
  protected *runSteps(
    what: string,
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    split: number,
    attention: AttentionHook,
  ): Steps<Tensor> {
    const ctx = this.ctx, L = this.geometry.seqLen, rows = batch * L;
    if (tokens.length !== rows || positionIds.length !== rows) {
      throw new Error(`${what} forward: ${batch} sequences need ${rows} tokens and position ids`);
    }
    const ids = ctx.upload(tokens, [rows], "i32");
    const pos = ctx.upload(positionRows(this.weights, positionIds, { seqLen: L, split }), [rows], "i32");
    const s = allocScratch(ctx, this.dims, rows);
    embed(ctx, this.weights, ids, { rows, posIds: pos, out: s.h });
    ids.release();
    pos.release();
    let done = false;
    try {
      yield* transformerLayers(ctx, this.dims, this.weights, s, attention);
      done = true;
    } finally {
      releaseScratch(s, done ? s.xn : undefined);
    }
    return s.xn;
  }

  /**
   * Image logits of `rows` consecutive hidden rows from row `row0`: [rows, imageTokens] (word_embeddings[:n]ᵀ),
   * written into `out` (at least [rows, imageTokens]) when given, so one block buffer serves every block.
   */
  logits(hidden: Tensor, row0: number, rows: number, imageTokens: number, out?: Tensor): Tensor {
    return logits(this.ctx, this.weights, hidden, {
      rows,
      cols: imageTokens,
      aOff: row0 * this.dims.hidden,
      out,
    });
  }

  /** Rows per logits block so that one block stays well inside a storage binding. */
  logitsBlock(imageTokens: number): number {
    return logitsBlockRows(this.ctx, imageTokens);
  }

  /**
   * Image logits and one token per row for each group of hidden rows, in logits blocks of one reused buffer; ids go
   * to `out` (i32). Draws depend on (seed, step, rowBase + row), not on the blocks or the batch split. Recording
   * steps: one per logits block.
   */
  protected *pickSteps(
    hidden: Tensor,
    groups: PickGroup[],
    pick: SrPick,
    imageTokens: number,
    out: Tensor,
  ): Steps<void> {
    const longest = Math.max(1, ...groups.map((g) => g.rows));
    const block = Math.min(this.logitsBlock(imageTokens), longest, PICK_BLOCK_ROWS);
    const lbuf = this.ctx.empty([block, imageTokens]);
    try {
      for (const g of groups) {
        for (let r0 = 0; r0 < g.rows; r0 += block) {
          const rows = Math.min(block, g.rows - r0);
          const lg = this.logits(hidden, g.row0 + r0, rows, imageTokens, lbuf);
          const place = { rows, out, outOffset: g.outOffset + r0 };
          const draw = { ...place, seed: 0, step: 0, rowBase: g.rowBase + r0 };
          if (pick.kind === "greedy") sampleGreedy(this.ctx, lg, place);
          else if (pick.kind === "cluster") sampleDsr(this.ctx, lg, { ...draw, ...pick });
          else sampleTopk(this.ctx, lg, { ...draw, ...pick });
          yield;
        }
      }
    } finally {
      lbuf.release();
    }
  }
}
