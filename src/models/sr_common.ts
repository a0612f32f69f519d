// What CogView2's two super-resolution models (DsrModel, ItersrModel) share around the one SAT layer stack of
// src/models/transformer.ts: loading it with the extra position table, the upload of a forward's ids and position
// rows, the masked (level-0) attention both plug into their attention hook, logits in row blocks, size and free.
// The layouts / masks / windows are src/geometry/sr.ts; the local (level-1) attention is src/kernels/local_attention.ts.
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { flashAttention } from "../kernels/attention.ts";
import { matmul } from "../kernels/matmul.ts";
import { softmax } from "../kernels/softmax.ts";
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
  transformerForward,
  type TransformerWeights,
} from "./transformer.ts";

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
 * Standard masked attention of `s` rows per sequence among themselves, all heads, from a QKV tensor whose sequences
 * are `seqStride` rows apart: softmax(q·kᵀ/√d + add)·v written to out rows (b·outStride + i, head columns).
 * `add` [s, s] or [1, s] holds the log weights on visible entries and -1e9 on masked ones (maskToAdd).
 */
export function maskedAttention(
  ctx: GpuContext,
  qkv: Tensor,
  o: {
    batch: number;
    s: number;
    seqStride: number;
    heads: number;
    headDim: number;
    add: Tensor;
    out: Tensor;
    outStride: number;
    /** Default: "flash" (no score matrix) on GPUs, the batched matmuls on CPU adapters. */
    path?: "flash" | "matmul";
  },
): void {
  const { s, heads, headDim: d } = o;
  const H = heads * d;
  if ((o.path ?? (ctx.gpu.isFallback || d > 128 ? "matmul" : "flash")) === "flash") {
    const bs = o.seqStride * 3 * H;
    flashAttention(ctx, {
      batch: o.batch,
      heads,
      headDim: d,
      rows: s,
      keys: s,
      q: { t: qkv, ld: 3 * H, bs },
      k: { t: qkv, off: H, ld: 3 * H, bs },
      v: { t: qkv, off: 2 * H, ld: 3 * H, bs },
      out: { t: o.out, ld: H, bs: o.outStride * H },
      add: { t: o.add, ld: o.add.shape[0] === 1 ? 0 : s },
    });
    return;
  }
  const scores = ctx.empty([heads * s, s]), probs = ctx.empty([heads * s, s]);
  for (let b = 0; b < o.batch; b++) {
    const base = b * o.seqStride * 3 * H;
    matmul(ctx, qkv, qkv, {
      M: s,
      N: s,
      K: d,
      transW: true,
      batch: heads,
      lda: 3 * H,
      ldw: 3 * H,
      aOff: base,
      wOff: base + H,
      aBatchStride: d,
      wBatchStride: d,
      alpha: 1 / Math.sqrt(d),
      out: scores,
    });
    softmax(ctx, scores, { n: s, rows: heads * s, add: o.add, out: probs });
    matmul(ctx, probs, qkv, {
      M: s,
      N: d,
      K: s,
      transW: false,
      batch: heads,
      aBatchStride: s * s,
      ldw: 3 * H,
      wOff: base + 2 * H,
      wBatchStride: d,
      out: o.out,
      cOff: b * o.outStride * H,
      ldc: H,
      cBatchStride: d,
    });
  }
  scores.release();
  probs.release();
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
   * The forward of `batch` sequences (tokens / position ids concatenated, geometry.seqLen each; position ids of the
   * first `split` tokens of each from the base table) up to the final LayerNorm: [batch·seqLen, hidden], with
   * `attention(batch)` as each layer's attention block. `what` names the model in errors.
   */
  protected run(
    what: string,
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    split: number,
    attention: AttentionHook,
  ): Tensor {
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
    transformerForward(ctx, this.dims, this.weights, s, attention);
    releaseScratch(s, s.xn);
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
   * to `out` (i32). Draws depend on (seed, step, rowBase + row), not on the blocks or the batch split.
   */
  protected pickTokens(
    hidden: Tensor,
    groups: PickGroup[],
    pick: SrPick,
    imageTokens: number,
    out: Tensor,
  ): void {
    const longest = Math.max(1, ...groups.map((g) => g.rows));
    const block = Math.min(this.logitsBlock(imageTokens), longest);
    const lbuf = this.ctx.empty([block, imageTokens]);
    for (const g of groups) {
      for (let r0 = 0; r0 < g.rows; r0 += block) {
        const rows = Math.min(block, g.rows - r0);
        const lg = this.logits(hidden, g.row0 + r0, rows, imageTokens, lbuf);
        const place = { rows, out, outOffset: g.outOffset + r0 };
        const draw = { ...place, seed: 0, step: 0, rowBase: g.rowBase + r0 };
        if (pick.kind === "greedy") sampleGreedy(this.ctx, lg, place);
        else if (pick.kind === "cluster") sampleDsr(this.ctx, lg, { ...draw, ...pick });
        else sampleTopk(this.ctx, lg, { ...draw, ...pick });
      }
    }
    lbuf.release();
  }
}
