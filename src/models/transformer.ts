// SwissArmyTransformer v0.2 BaseTransformer on the GPU: weights of each layer (checkpoint names), the layer order
// ('sandwich' = CogView2, or 'pre'), SAT's GELU MLP, final LayerNorm, logits against the word embeddings.
// Not a model: CogLM (coglm.ts), DSR and iterative SR plug their attention in through `AttentionHook`.
//
// One layer, as transformer_defaults.layer_forward_default (sandwich):
//   xn = input_layernorm(h); a = attention(xn) (QKV → attention_fn → dense)
//   h' = h + third_layernorm(a); m = post_attention_layernorm(h')
//   h'' = h' + fourth_layernorm(dense_4h_to_h(gelu(dense_h_to_4h(m))))
// Dispatches per layer: QKV, the attention hook's own, dense, one fused LN (third + residual + post-attention),
// h→4h (+GELU epilogue), 4h→h, one fused LN (fourth + residual + the next layer's input LN, or the final LN).
// Decode steps whose hook takes LN chains (transformerLayers' lnChain; choices.ts lnPrologue) fold both fused LNs
// into the GEMV that consumes them (shaders/gemv_rows.wgsl LNPRO): 5 dispatches per layer instead of 7.

import type { GpuContext } from "../gpu/context.ts";
import type { RowChunkedTensor, Tensor } from "../gpu/tensor.ts";
import type { WeightInfo, WeightSource } from "../formats/weights.ts";
import { f32ToF16Bits } from "../gpu/f16.ts";
import { layerNorm, layerNormResidual, type LnParams, packLnPair } from "../kernels/layernorm.ts";
import { gemvLnApplies, type GemvLnPrologue, gemvRows, gemvRowsApplies } from "../kernels/gemv.ts";
import { lnPrologueFor } from "../kernels/choices.ts";
import { matmul, matmulChunked } from "../kernels/matmul.ts";
import { embedding, type EmbeddingOptions } from "../kernels/embedding.ts";
import { add } from "../kernels/elementwise.ts";
import { loadRowChunked, loadTensor } from "./load.ts";
import type { TransformerConfig } from "./config.ts";

/** Architecture numbers of one SAT transformer (from config.json's model section). */
export interface TransformerDims {
  numLayers: number; // e.g. 48
  hidden: number; // e.g. 3072
  heads: number; // e.g. 48
  headDim: number; // hidden / heads, e.g. 64
  inner: number; // MLP width, e.g. 4·hidden
  vocab: number; // rows of word_embeddings
  maxSeq: number; // rows of position_embeddings
  eps: number;
  order: "sandwich" | "pre";
}

export function transformerDims(c: TransformerConfig): TransformerDims {
  if (c.layernorm_order !== "sandwich" && c.layernorm_order !== "pre") {
    throw new Error(`layernorm_order "${c.layernorm_order}" is not supported (sandwich or pre)`);
  }
  return {
    numLayers: c.num_layers,
    hidden: c.hidden_size,
    heads: c.num_attention_heads,
    headDim: c.hidden_size / c.num_attention_heads,
    inner: c.inner_hidden_size,
    vocab: c.vocab_size,
    maxSeq: c.max_sequence_length,
    eps: c.layernorm_epsilon,
    order: c.layernorm_order,
  };
}

/** nn.Linear: weight [out, in] (f16 or f32), bias [out] of the same dtype. */
export interface Linear {
  weight: Tensor;
  bias: Tensor;
}

/** One BaseTransformerLayer; names follow the checkpoint (transformer.layers.{i}.*). */
export interface LayerWeights {
  inputLayernorm: LnParams;
  queryKeyValue: Linear; // attention.query_key_value: [3·hidden, hidden]
  dense: Linear; // attention.dense: [hidden, hidden]
  thirdLayernorm?: LnParams; // sandwich only
  postAttentionLayernorm: LnParams;
  denseHTo4h: Linear; // mlp.dense_h_to_4h: [inner, hidden]
  dense4hToH: Linear; // mlp.dense_4h_to_h: [hidden, inner]
  fourthLayernorm?: LnParams; // sandwich only
}

export interface TransformerWeights {
  wordEmbeddings: RowChunkedTensor; // [vocab, hidden], row blocks within the max binding
  /** [maxSeq (+ extra rows), hidden]: the base table, then the extra table's rows when loaded with one. */
  positionEmbeddings: Tensor;
  /** Rows of the base position table; the extra table's rows follow it. */
  basePositions: number;
  /** Position id of the extra table's first row (dims.maxSeq, as the SR models' extra_position_embedding). */
  extraPosition0: number;
  layers: LayerWeights[];
  finalLayernorm: LnParams;
  /** Bytes of all these tensors on the GPU. */
  bytes: number;
  /**
   * The GEMV LN prologues' packed parameters per layer (packLnPair, made on first use): mid = third +
   * post-attention LN, out = fourth + the next layer's input LN (the final LN on the last layer).
   */
  lnPacks?: { mid: Tensor; out: Tensor }[];
}

export interface LoadTransformerOptions {
  /** Checkpoint prefix of the transformer's tensors (default "transformer."). */
  prefix?: string;
  /**
   * A second position table appended to the base one (the SR models' mixins.extra_position_embedding): position id
   * p ≥ maxSeq reads its row p − maxSeq (see positionRows).
   */
  extraPositions?: string;
}

/** Loads transformer.* of a SAT checkpoint (shapes checked against `dims`); on error nothing stays allocated. */
export async function loadTransformer(
  ctx: GpuContext,
  src: WeightSource,
  dims: TransformerDims,
  o: LoadTransformerOptions = {},
): Promise<TransformerWeights> {
  const { hidden: h, inner } = dims;
  const prefix = o.prefix ?? "transformer.";
  const owned: Tensor[] = [];
  const t = async (name: string, shape: number[]) => {
    const x = await loadTensor(ctx, src, prefix + name, shape);
    owned.push(x);
    return x;
  };
  const ln = async (name: string): Promise<LnParams> => ({
    weight: await t(`${name}.weight`, [h]),
    bias: await t(`${name}.bias`, [h]),
  });
  const lin = async (name: string, out: number, inp: number): Promise<Linear> => ({
    weight: await t(`${name}.weight`, [out, inp]),
    bias: await t(`${name}.bias`, [out]),
  });
  try {
    const wordEmbeddings = await loadRowChunked(ctx, src, `${prefix}word_embeddings.weight`);
    for (const c of wordEmbeddings.chunks) owned.push(c.tensor);
    if (wordEmbeddings.rows !== dims.vocab || wordEmbeddings.cols !== h) {
      throw new Error(
        `${src.origin}: word_embeddings is [${wordEmbeddings.rows}, ${wordEmbeddings.cols}], expected [${dims.vocab}, ${h}]`,
      );
    }
    const positionEmbeddings = o.extraPositions
      ? await positionTables(ctx, src, `${prefix}position_embeddings.weight`, o.extraPositions, h, owned)
      : await t("position_embeddings.weight", [dims.maxSeq, h]);
    const extraRows = o.extraPositions ? src.info(o.extraPositions).shape[0] : 0;
    const layers: LayerWeights[] = [];
    for (let i = 0; i < dims.numLayers; i++) {
      const p = `layers.${i}.`;
      const sandwich = dims.order === "sandwich";
      layers.push({
        inputLayernorm: await ln(p + "input_layernorm"),
        queryKeyValue: await lin(p + "attention.query_key_value", 3 * h, h),
        dense: await lin(p + "attention.dense", h, h),
        thirdLayernorm: sandwich ? await ln(p + "third_layernorm") : undefined,
        postAttentionLayernorm: await ln(p + "post_attention_layernorm"),
        denseHTo4h: await lin(p + "mlp.dense_h_to_4h", inner, h),
        dense4hToH: await lin(p + "mlp.dense_4h_to_h", h, inner),
        fourthLayernorm: sandwich ? await ln(p + "fourth_layernorm") : undefined,
      });
    }
    const finalLayernorm = await ln("final_layernorm");
    return {
      wordEmbeddings,
      positionEmbeddings,
      basePositions: positionEmbeddings.shape[0] - extraRows,
      extraPosition0: dims.maxSeq,
      layers,
      finalLayernorm,
      bytes: owned.reduce((n, x) => n + x.byteLength, 0),
    };
  } catch (e) {
    for (const x of owned) x.release();
    throw e;
  }
}

/** One GPU table: the base position rows [n, hidden], then the extra table's rows (same dtype). */
async function positionTables(
  ctx: GpuContext,
  src: WeightSource,
  base: string,
  extra: string,
  h: number,
  owned: Tensor[],
): Promise<Tensor> {
  const pb = src.info(base), pe = src.info(extra);
  if (
    pb.dtype !== pe.dtype || pb.shape.length !== 2 || pe.shape.length !== 2 || pb.shape[1] !== h ||
    pe.shape[1] !== h
  ) {
    throw new Error(
      `${src.origin}: position tables ${base} [${pb.shape}] ${pb.dtype} / ${extra} [${pe.shape}] ${pe.dtype} ` +
        `are not both [n, ${h}] of one dtype`,
    );
  }
  if (pb.dtype !== "f16" && pb.dtype !== "f32") {
    throw new Error(`${src.origin}: ${base} is ${pb.dtype} (f16 or f32 expected)`);
  }
  const table = ctx.empty([pb.shape[0] + pe.shape[0], h], pb.dtype);
  owned.push(table);
  ctx.write(table, await src.read(base), 0);
  ctx.write(table, await src.read(extra), pb.byteLength);
  return table;
}

/**
 * Rows of the position table for position ids: ids of the first `split` tokens of each `seqLen`-token sequence read
 * the base table, later ones the extra rows (row basePositions + id − extraPosition0), as the SR models' two tables.
 */
export function positionRows(
  w: TransformerWeights,
  positionIds: ArrayLike<number>,
  o: { seqLen: number; split: number },
): Int32Array {
  const out = new Int32Array(positionIds.length);
  const base = w.basePositions, total = w.positionEmbeddings.shape[0];
  for (let i = 0; i < positionIds.length; i++) {
    const t = i % o.seqLen;
    const r = t < o.split ? positionIds[i] : base + positionIds[i] - w.extraPosition0;
    if (r < 0 || r >= total || (t < o.split && r >= base)) {
      throw new Error(`position id ${positionIds[i]} at token ${t} is outside the position tables`);
    }
    out[i] = r;
  }
  return out;
}

/** Returns every tensor of the weights to the pool. */
export function releaseTransformer(w: TransformerWeights): void {
  const all: Tensor[] = [w.positionEmbeddings, w.finalLayernorm.weight, w.finalLayernorm.bias];
  for (const c of w.wordEmbeddings.chunks) all.push(c.tensor);
  for (const l of w.layers) {
    for (const v of Object.values(l)) if (v) all.push((v as Linear).weight, (v as Linear).bias);
  }
  for (const p of w.lnPacks ?? []) all.push(p.mid, p.out);
  w.lnPacks = undefined;
  for (const t of all) t.release();
}

/** Activation buffers of a forward over `rows` rows (kept across decode steps so bind groups are reused). */
export interface Scratch {
  rows: number;
  /** The residual stream [rows, hidden] (input embeddings in, last layer's output out). */
  h: Tensor;
  /** Residual after the attention block. */
  hMid: Tensor;
  /** LayerNorm outputs: attention input, MLP input; after forward, `xn` holds final_layernorm(h). */
  xn: Tensor;
  mlpIn: Tensor;
  /** [rows, 3·hidden] QKV projections (the default attention hook's). */
  qkv: Tensor;
  /** [rows, hidden] attention context (before dense) and attention output (after dense). */
  context: Tensor;
  attnOut: Tensor;
  /**
   * [block, inner] and [rows, hidden] MLP activations: the MLP runs in row blocks of mlpMid's rows when [rows, inner]
   * would not fit one storage binding (mlpBlockRows).
   */
  mlpMid: Tensor;
  mlpOut: Tensor;
  /**
   * After a forward with { lnChain, deferFinal } that folded its layer norms: the last layer's fourth LN + residual +
   * final LN, left for the logits GEMV's prologue (logits' `ln`); s.xn then does not hold final_layernorm(h).
   */
  finalChain?: LnChain;
}

/**
 * Rows per MLP block for a forward over `rows` rows: all of them when [rows, inner] f32 fits one storage binding
 * (and 256 MiB), else a multiple of 64 that does.
 */
export function mlpBlockRows(ctx: GpuContext, dims: TransformerDims, rows: number): number {
  const limit = Math.min(ctx.maxBinding, 256 * 2 ** 20);
  let block = Math.max(1, Math.floor(limit / (dims.inner * 4)));
  if (block < rows) block = Math.max(64, block - (block % 64));
  return Math.min(block, rows);
}

export function allocScratch(ctx: GpuContext, dims: TransformerDims, rows: number): Scratch {
  const e = (cols: number, r = rows) => ctx.empty([r, cols], "f32");
  const h = dims.hidden;
  return {
    rows,
    h: e(h),
    hMid: e(h),
    xn: e(h),
    mlpIn: e(h),
    qkv: e(3 * h),
    context: e(h),
    attnOut: e(h),
    mlpMid: e(dims.inner, mlpBlockRows(ctx, dims, rows)),
    mlpOut: e(h),
  };
}

/** Returns the scratch buffers to the pool, except `keep` (e.g. s.xn when the caller reads the hidden states). */
export function releaseScratch(s: Scratch, keep?: Tensor): void {
  s.finalChain = undefined;
  for (const v of Object.values(s)) if (typeof v === "object" && v !== keep) (v as Tensor).release();
}

/**
 * The attention block of layer `layer`: reads the input-LayerNormed rows `xn` [rows, hidden] and writes the block's
 * output (after attention.dense) to `out` [rows, hidden]. The default (`standardAttentionBlock`) is QKV → `attend`
 * → dense; DSR / iterative SR pass their own.
 */
export type AttentionHook = (layer: number, xn: Tensor, out: Tensor, s: Scratch, chain?: LnChain) => void;

/**
 * A layer norm chain left pending for the attention block's first GEMV (transformerLayers with lnChain): its input
 * rows are LN2(resid + LN1(x)), not `xn`, and it writes resid + LN1(x) to residOut (src/kernels/gemv.ts).
 */
export type LnChain = GemvLnPrologue & { x: Tensor };

/** y = x·Wᵀ + b (+GELU) over `rows` rows. */
export function linear(
  ctx: GpuContext,
  x: Tensor,
  w: Linear,
  o: {
    rows: number;
    out: Tensor;
    gelu?: boolean;
    resid?: Tensor;
    lda?: number;
    aOff?: number;
    cOff?: number;
    ldc?: number;
    /** The rows are LN2(resid + LN1(x)) made in the GEMV's prologue (decode rows; see LnChain). */
    ln?: GemvLnPrologue;
  },
): Tensor {
  const [N, K] = w.weight.shape;
  if (o.ln) {
    return gemvRows(ctx, x, w.weight, { M: o.rows, N, K, bias: w.bias, gelu: o.gelu, out: o.out, ln: o.ln });
  }
  return matmul(ctx, x, w.weight, {
    M: o.rows,
    N,
    K,
    constantW: true,
    bias: w.bias,
    gelu: o.gelu,
    resid: o.resid,
    out: o.out,
    lda: o.lda,
    aOff: o.aOff,
    cOff: o.cOff,
    ldc: o.ldc,
  });
}

/**
 * SAT's attention_forward_default: qkv = query_key_value(xn) into s.qkv; `attend(qkv, context)` (the attention
 * function: reads s.qkv [rows, 3·hidden] = q | k | v, writes s.context [rows, hidden]); out = dense(context).
 */
export function standardAttentionBlock(
  ctx: GpuContext,
  w: LayerWeights,
  xn: Tensor,
  out: Tensor,
  s: Scratch,
  attend: (qkv: Tensor, context: Tensor) => void,
  chain?: LnChain,
): void {
  linear(ctx, chain?.x ?? xn, w.queryKeyValue, { rows: s.rows, out: s.qkv, ln: chain });
  attend(s.qkv, s.context);
  linear(ctx, s.context, w.dense, { rows: s.rows, out });
}

/**
 * Runs every layer over s.h (the embeddings, [s.rows, hidden]) and leaves final_layernorm(h) in s.xn
 * (s.h holds the last layer's output).
 */
export function transformerForward(
  ctx: GpuContext,
  dims: TransformerDims,
  w: TransformerWeights,
  s: Scratch,
  hook: AttentionHook,
  o: LayerOptions = {},
): void {
  const layers = transformerLayers(ctx, dims, w, s, hook, o);
  while (!layers.next().done) continue;
}

/**
 * transformerForward as recording steps: yields after each layer's attention block and after each layer, so a
 * caller can submit and wait there and stop a long forward early (src/models/cancel.ts, the SR stages).
 */
export function* transformerLayers(
  ctx: GpuContext,
  dims: TransformerDims,
  w: TransformerWeights,
  s: Scratch,
  hook: AttentionHook,
  o: LayerOptions = {},
): Generator<void, void> {
  const rows = s.rows, eps = dims.eps;
  const packs = o.lnChain && lnChainApplies(ctx, dims, w, rows) ? lnPacks(ctx, w) : null;
  const defer = !!packs && !!o.deferFinal && logitsLnApplies(ctx, w, rows);
  s.finalChain = undefined;
  layerNorm(ctx, s.h, w.layers[0].inputLayernorm, { eps, out: s.xn });
  for (const [i, l] of w.layers.entries()) {
    const chain: LnChain | undefined = packs && i > 0
      ? { x: s.mlpOut, resid: s.hMid, params: packs[i - 1].out, residOut: s.h, eps }
      : undefined;
    hook(i, s.xn, s.attnOut, s, chain);
    yield;
    const next = i + 1 < w.layers.length ? w.layers[i + 1].inputLayernorm : w.finalLayernorm;
    if (packs) {
      // h' = h + third(a) and LN_post(h') in h→4h's prologue; h'' = h' + fourth(m) and the next input LN in the
      // next layer's QKV prologue (the chain above), the last layer's in a dispatch (final LN into s.xn).
      const ln = { resid: s.h, params: packs[i].mid, residOut: s.hMid, eps };
      linear(ctx, s.attnOut, l.denseHTo4h, { rows, out: s.mlpMid, gelu: true, ln });
      linear(ctx, s.mlpMid, l.dense4hToH, { rows, out: s.mlpOut });
      if (i + 1 === w.layers.length) {
        if (defer) s.finalChain = { x: s.mlpOut, resid: s.hMid, params: packs[i].out, residOut: s.h, eps };
        else {
          layerNormResidual(ctx, s.mlpOut, s.hMid, l.fourthLayernorm!, {
            eps,
            residOut: s.h,
            post: next,
            out: s.xn,
          });
        }
      }
    } else if (dims.order === "sandwich") {
      layerNormResidual(ctx, s.attnOut, s.h, l.thirdLayernorm!, {
        eps,
        residOut: s.hMid,
        post: l.postAttentionLayernorm,
        out: s.mlpIn,
      });
      mlp(ctx, l, s, s.mlpOut);
      layerNormResidual(ctx, s.mlpOut, s.hMid, l.fourthLayernorm!, {
        eps,
        residOut: s.h,
        post: next,
        out: s.xn,
      });
    } else {
      // 'pre': h' = h + a; h'' = h' + mlp(LN(h')).
      add(ctx, s.attnOut, s.h, s.hMid);
      layerNorm(ctx, s.hMid, l.postAttentionLayernorm, { eps, out: s.mlpIn });
      if (s.mlpMid.shape[0] >= rows) {
        linear(ctx, s.mlpIn, l.denseHTo4h, { rows, out: s.mlpMid, gelu: true });
        linear(ctx, s.mlpMid, l.dense4hToH, { rows, out: s.h, resid: s.hMid });
      } else {
        mlp(ctx, l, s, s.mlpOut);
        add(ctx, s.mlpOut, s.hMid, s.h);
      }
      layerNorm(ctx, s.h, next, { eps, out: s.xn });
    }
    yield;
  }
}

/**
 * Whether a forward over `rows` rows can fold its layer norms into the GEMV prologues on this context: sandwich
 * order, a GPU adapter (CPU adapters never take the GEMV), the switch (choices.ts lnPrologueFor), the rows within
 * workgroup memory, and the QKV and h→4h weights in a layout the GEMV takes.
 */
export function lnChainApplies(
  ctx: GpuContext,
  dims: TransformerDims,
  w: TransformerWeights,
  rows: number,
): boolean {
  const K = dims.hidden, l = w.layers[0];
  return dims.order === "sandwich" && !ctx.gpu.isFallback && lnPrologueFor(ctx) &&
    gemvLnApplies(ctx, rows, K) &&
    [l.queryKeyValue, l.denseHTo4h].every((x) =>
      gemvRowsApplies(x.weight, { M: rows, N: x.weight.shape[0], K })
    ) &&
    l.inputLayernorm.weight.byteLength % 4 === 0;
}

/** Whether the logits GEMV over `rows` rows can take the final LN chain in its prologue (every vocabulary chunk). */
function logitsLnApplies(ctx: GpuContext, w: TransformerWeights, rows: number): boolean {
  const K = w.wordEmbeddings.cols;
  return w.wordEmbeddings.chunks.every((c) => gemvRowsApplies(c.tensor, { M: rows, N: c.rows, K })) &&
    gemvLnApplies(ctx, rows, K);
}

/** The packed LN parameters of every layer (made once, recorded as copies; released with the weights). */
function lnPacks(ctx: GpuContext, w: TransformerWeights): { mid: Tensor; out: Tensor }[] {
  w.lnPacks ??= w.layers.map((l, i) => ({
    mid: packLnPair(ctx, l.thirdLayernorm!, l.postAttentionLayernorm),
    out: packLnPair(
      ctx,
      l.fourthLayernorm!,
      i + 1 < w.layers.length ? w.layers[i + 1].inputLayernorm : w.finalLayernorm,
    ),
  }));
  return w.lnPacks;
}

/** SAT's GELU MLP of s.mlpIn into `out` [rows, hidden], in row blocks of s.mlpMid's rows. */
function mlp(ctx: GpuContext, l: LayerWeights, s: Scratch, out: Tensor): void {
  const block = s.mlpMid.shape[0], h = s.mlpIn.shape[1];
  for (let r0 = 0; r0 < s.rows; r0 += block) {
    const n = Math.min(block, s.rows - r0);
    linear(ctx, s.mlpIn, l.denseHTo4h, { rows: n, aOff: r0 * h, out: s.mlpMid, gelu: true });
    linear(ctx, s.mlpMid, l.dense4hToH, { rows: n, out, cOff: r0 * h });
  }
}

/** Word + position embeddings of `rows` ids into s.h (position ids from a tensor, or one position for all rows). */
export function embed(
  ctx: GpuContext,
  w: TransformerWeights,
  ids: Tensor,
  o: EmbeddingOptions & { out: Tensor },
): void {
  embedding(ctx, ids, w.wordEmbeddings, { ...o, posTable: w.positionEmbeddings });
}

/** What transformerForward / transformerLayers take besides the hook. */
export interface LayerOptions {
  /**
   * The hook passes LN chains on to its first GEMV (standardAttentionBlock's `chain`): decode rows fold their layer
   * norms into the GEMV prologues where lnChainApplies.
   */
  lnChain?: boolean;
  /** With lnChain: leave the last layer's LN chain in s.finalChain for the logits GEMV instead of writing s.xn. */
  deferFinal?: boolean;
}

/**
 * final_forward_default: logits = x·word_embeddingsᵀ for `rows` rows of x (row stride lda from aOff), over the
 * first `cols` vocabulary rows (20000 = the image tokens for sampling; all for perplexity).
 */
export function logits(
  ctx: GpuContext,
  w: TransformerWeights,
  x: Tensor,
  o: { rows: number; cols?: number; lda?: number; aOff?: number; out?: Tensor; ln?: LnChain },
): Tensor {
  return matmulChunked(ctx, o.ln?.x ?? x, w.wordEmbeddings, {
    ln: o.ln,
    M: o.rows,
    cols: o.cols,
    lda: o.lda,
    aOff: o.aOff,
    out: o.out,
    constantW: true,
  });
}

/** Rows per logits block so that one [rows, cols] f32 block stays well inside a storage binding (≤ 64 MiB). */
export function logitsBlockRows(ctx: GpuContext, cols: number): number {
  const limit = Math.min(ctx.maxBinding, 64 * 2 ** 20);
  return Math.max(1, Math.floor(limit / (cols * 4)));
}

/**
 * An in-memory checkpoint of random, well-conditioned SAT transformer weights (checkpoint names, f16 or f32),
 * for tests and the synthetic benchmark configs. Deterministic in `seed`.
 */
export function syntheticTransformerSource(
  dims: TransformerDims,
  o: { seed: number; dtype: "f16" | "f32" },
): WeightSource {
  let s = o.seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  const { hidden: h, inner } = dims;
  const specs: [string, number[], number, number][] = []; // name, shape, scale, offset
  const ln = (n: string) => specs.push([`${n}.weight`, [h], 0.4, 1], [`${n}.bias`, [h], 0.2, 0]);
  const lin = (n: string, out: number, inp: number) =>
    specs.push([`${n}.weight`, [out, inp], 3.4 / Math.sqrt(inp), 0], [`${n}.bias`, [out], 0.1, 0]);
  specs.push(["transformer.word_embeddings.weight", [dims.vocab, h], 2, 0]);
  specs.push(["transformer.position_embeddings.weight", [dims.maxSeq, h], 1, 0]);
  for (let l = 0; l < dims.numLayers; l++) {
    const p = `transformer.layers.${l}.`;
    ln(p + "input_layernorm");
    lin(p + "attention.query_key_value", 3 * h, h);
    lin(p + "attention.dense", h, h);
    ln(p + "post_attention_layernorm");
    if (dims.order === "sandwich") ln(p + "third_layernorm"), ln(p + "fourth_layernorm");
    lin(p + "mlp.dense_h_to_4h", inner, h);
    lin(p + "mlp.dense_4h_to_h", h, inner);
  }
  ln("transformer.final_layernorm");
  const data = new Map<string, { info: WeightInfo; bytes: Uint8Array }>();
  for (const [name, shape, scale, offset] of specs) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = offset + scale * uniform();
    const bytes = o.dtype === "f16" ? new Uint8Array(f32ToF16Bits(v).buffer) : new Uint8Array(v.buffer);
    data.set(name, { info: { name, dtype: o.dtype, shape, byteLength: bytes.byteLength }, bytes });
  }
  const get = (name: string) => {
    const e = data.get(name);
    if (!e) throw new Error(`synthetic weights: no tensor ${name}`);
    return e;
  };
  return {
    origin: `synthetic(seed ${o.seed})`,
    names: () => [...data.keys()],
    info: (name) => get(name).info,
    has: (name) => data.has(name),
    read: (name) => Promise.resolve(get(name).bytes),
    readRange: (name, off, len) => Promise.resolve(get(name).bytes.subarray(off, off + len)),
    close: () => {},
  };
}

/**
 * The SAT checkpoint's tensor names and shapes for a transformer of these dims (sandwich layer norms; `plus`: the SR
 * models' attention_plus weights; `extraPositions`: their second position table), in checkpoint order.
 */
export function satTransformerShapes(
  d: TransformerDims,
  o: { plus?: boolean; extraPositions?: number },
): Map<string, number[]> {
  const m = new Map<string, number[]>(), H = d.hidden;
  m.set("transformer.word_embeddings.weight", [d.vocab, H]);
  m.set("transformer.position_embeddings.weight", [d.maxSeq, H]);
  if (o.extraPositions) {
    m.set("mixins.extra_position_embedding.position_embeddings.weight", [o.extraPositions, H]);
  }
  const ln = (p: string) => (m.set(`${p}.weight`, [H]), m.set(`${p}.bias`, [H]));
  const lin = (p: string, n: number, k: number) => (m.set(`${p}.weight`, [n, k]), m.set(`${p}.bias`, [n]));
  for (let l = 0; l < d.numLayers; l++) {
    const p = `transformer.layers.${l}`;
    for (const n of ["input_layernorm", "post_attention_layernorm", "third_layernorm", "fourth_layernorm"]) {
      ln(`${p}.${n}`);
    }
    lin(`${p}.attention.query_key_value`, 3 * H, H);
    lin(`${p}.attention.dense`, H, H);
    lin(`${p}.mlp.dense_h_to_4h`, d.inner, H);
    lin(`${p}.mlp.dense_4h_to_h`, H, d.inner);
    if (o.plus) {
      lin(`mixins.attention_plus.query_key_value.${l}`, 3 * H, H);
      lin(`mixins.attention_plus.dense.${l}`, H, H);
    }
  }
  ln("transformer.final_layernorm");
  return m;
}
