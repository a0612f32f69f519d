// Sequence layouts of the two super-resolution models (DSR [96, 496, 4096], iterative SR [16, 3616]): input tokens,
// position ids, attention masks, the LoPAR mask pattern and the local-window geometry, as sr_pipeline/ builds them.
// Host-side arrays shared by the CPU reference (src/reference/sr.ts) and the GPU models, plus the GPU layer stack
// both models share (SrTransformer). Not a sampler (src/sampling/) and not the stage API (src/pipeline/).
import type { GpuContext } from "../gpu/context.ts";
import type { RowChunkedTensor, Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { loadRowChunked, loadTensor } from "./load.ts";
import { embedding } from "../kernels/embedding.ts";
import { layerNorm, layerNormResidual, type LnParams } from "../kernels/layernorm.ts";
import { matmul, matmulChunked } from "../kernels/matmul.ts";
import { softmax } from "../kernels/softmax.ts";

/** The parts of a DSR / iterative-SR config the layouts need (src/models/config.ts SrConfig satisfies it). */
export interface SrLayoutConfig {
  layout: number[];
  kernel_size: number;
  kernel_size2: number;
  max_sequence_length: number;
}

/** First position id of the low-res image in DSR (dsr_sampling.filling_sequence_dsr: arange(513, ...)). */
export const LOWRES_POSITION0 = 513;
/** First position id of the high-res image in both models (arange(1024, ...) in the samplers). */
export const HIGHRES_POSITION0 = 1024;
/** Value of masked attention scores and out-of-grid local-window cells in the original (`- 10000.0 * (1 - mask)`). */
export const MASKED_SCORE = -10000;

/** Integer square root of a square grid's cell count (throws when `n` is not a square). */
export function gridSide(n: number, what: string): number {
  const s = Math.round(Math.sqrt(n));
  if (s * s !== n) throw new Error(`${what}: ${n} is not a square number of tokens`);
  return s;
}

/** Geometry of the DSR layout [textLen, textLen + lowres², textLen + lowres² + highres²]. */
export interface DsrGeometry {
  textLen: number;
  /** Rows using the base attention (text + low-res) = layout[1]. */
  s0: number;
  /** High-res rows = layout[2] - layout[1]. */
  s1: number;
  /** Model input length = layout[2]. */
  seqLen: number;
  lowSide: number;
  highSide: number;
}

export function dsrGeometry(cfg: SrLayoutConfig): DsrGeometry {
  const [textLen, s0, seqLen] = cfg.layout;
  if (cfg.layout.length !== 3) throw new Error(`DSR layout must have 3 entries, got [${cfg.layout}]`);
  const s1 = seqLen - s0;
  const lowSide = gridSide(s0 - textLen, "DSR low-res part");
  const highSide = gridSide(s1, "DSR high-res part");
  if (highSide % lowSide) {
    throw new Error(`DSR high-res side ${highSide} is not a multiple of low-res side ${lowSide}`);
  }
  return { textLen, s0, s1, seqLen, lowSide, highSide };
}

/** Geometry of the iterative-SR layout [textLen, textLen + highres²]. */
export interface ItersrGeometry {
  textLen: number;
  s1: number;
  seqLen: number;
  highSide: number;
}

export function itersrGeometry(cfg: SrLayoutConfig): ItersrGeometry {
  if (cfg.layout.length !== 2) {
    throw new Error(`iterative-SR layout must have 2 entries, got [${cfg.layout}]`);
  }
  const [textLen, seqLen] = cfg.layout;
  const s1 = seqLen - textLen;
  return { textLen, s1, seqLen, highSide: gridSide(s1, "iterative-SR high-res part") };
}

/** One DSR model input (batch element): tokens, position ids, number of pad tokens and the [s0, s0] mask. */
export interface DsrInput {
  tokens: Int32Array;
  positionIds: Int32Array;
  nPad: number;
}

/**
 * The DSR forward input for text ids (the template without `<start_of_image>`) and low-res codes: text left-padded
 * with 0 to layout[0], the low-res codes, then layout[2]-layout[1] `<start_of_image>` slots (the model sees
 * tokens[:, :-1] of the sampler's layout[2]+1 sequence, whose last 3601 entries are all `<start_of_image>`).
 * Text longer than layout[0]-1 keeps its first layout[0]-1 ids (the original asserts n_pad > 0).
 */
export function dsrInput(
  cfg: SrLayoutConfig,
  textIds: ArrayLike<number>,
  lowres: ArrayLike<number>,
  boi: number,
): DsrInput {
  const g = dsrGeometry(cfg);
  const nLow = g.s0 - g.textLen;
  if (lowres.length !== nLow) throw new Error(`DSR expects ${nLow} low-res codes, got ${lowres.length}`);
  const nText = Math.min(textIds.length, g.textLen - 1);
  const nPad = g.textLen - nText;
  const tokens = new Int32Array(g.seqLen).fill(boi);
  const positionIds = new Int32Array(g.seqLen);
  tokens.fill(0, 0, nPad);
  for (let i = 0; i < nText; i++) {
    tokens[nPad + i] = textIds[i];
    positionIds[nPad + i] = i;
  }
  for (let i = 0; i < nLow; i++) {
    tokens[g.textLen + i] = lowres[i];
    positionIds[g.textLen + i] = LOWRES_POSITION0 + i;
  }
  for (let i = 0; i < g.s1; i++) positionIds[g.s0 + i] = HIGHRES_POSITION0 + i;
  return { tokens, positionIds, nPad };
}

/** DSR base-attention mask [s0, s0] (1 = visible): text rows see text only; non-pad rows never see the pads. */
export function dsrMask(cfg: SrLayoutConfig, nPad: number): Float32Array {
  const g = dsrGeometry(cfg);
  const m = new Float32Array(g.s0 * g.s0).fill(1);
  for (let i = 0; i < g.s0; i++) {
    for (let j = 0; j < g.s0; j++) {
      if ((i < g.textLen && j >= g.textLen) || (i >= nPad && j < nPad)) m[i * g.s0 + j] = 0;
    }
  }
  return m;
}

/** One iterative-SR model input: first layout[0] text ids left-padded with 0, then the high-res codes. */
export interface ItersrInput {
  tokens: Int32Array;
  positionIds: Int32Array;
  nPad: number;
}

export function itersrInput(
  cfg: SrLayoutConfig,
  textIds: ArrayLike<number>,
  highres: ArrayLike<number>,
): ItersrInput {
  const g = itersrGeometry(cfg);
  if (highres.length !== g.s1) {
    throw new Error(`iterative SR expects ${g.s1} high-res codes, got ${highres.length}`);
  }
  const nText = Math.min(textIds.length, g.textLen); // text_tokens[..., :16]
  const nPad = g.textLen - nText;
  const tokens = new Int32Array(g.seqLen);
  const positionIds = new Int32Array(g.seqLen);
  for (let i = 0; i < nText; i++) {
    tokens[nPad + i] = textIds[i];
    positionIds[nPad + i] = i;
  }
  for (let i = 0; i < g.s1; i++) {
    tokens[g.textLen + i] = highres[i];
    positionIds[g.textLen + i] = HIGHRES_POSITION0 + i;
  }
  return { tokens, positionIds, nPad };
}

/** Iterative-SR text mask [layout[0]] (1 = visible column): pads are hidden from every row. */
export function itersrMask(cfg: SrLayoutConfig, nPad: number): Float32Array {
  const m = new Float32Array(cfg.layout[0]).fill(1);
  m.fill(0, 0, nPad);
  return m;
}

/** iterative_sr.py's 6×6 `mask_raw`, tiled over the high-res grid. */
export const LOPAR_MASK_RAW = [
  -1,
  0,
  1,
  2,
  3,
  4,
  0,
  -1,
  2,
  -1,
  -2,
  5,
  1,
  -2,
  3,
  4,
  5,
  6,
  2,
  3,
  4,
  5,
  -1,
  1,
  3,
  -1,
  -2,
  0,
  -1,
  2,
  4,
  5,
  6,
  1,
  3,
  -2,
];
/** Per-round top-k of iterative_sr.py, indexed by mask_ratio (1..6 used). */
export const LOPAR_TOPKS = [60, 40, 40, 40, 20, 20, 10];
export const LOPAR_ROUNDS = 6;

/** Positions (0/1 per high-res cell) re-masked in round `maskRatio` (1..6), intersected with an optional input mask. */
export function loparRoundMask(side: number, maskRatio: number, inputMask?: ArrayLike<number>): Uint8Array {
  const m = new Uint8Array(side * side);
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      const k = i * side + j;
      m[k] = LOPAR_MASK_RAW[(i % 6) * 6 + (j % 6)] >= maskRatio && (!inputMask || inputMask[k]) ? 1 : 0;
    }
  }
  return m;
}

/** Local window of f_similar/f_weighting (non-causal): kH rows × kW columns centred on the query's cell. */
export interface Window {
  kH: number;
  kW: number;
}

/** The DSR/iterative-SR own-grid window: (2·kernel_size-1) rows × kernel_size columns. */
export function ownWindow(cfg: SrLayoutConfig): Window {
  return { kH: 2 * cfg.kernel_size - 1, kW: cfg.kernel_size };
}

/** The DSR cross window on the low-res grid: kernel_size2 × kernel_size2. */
export function crossWindow(cfg: SrLayoutConfig): Window {
  return { kH: cfg.kernel_size2, kW: cfg.kernel_size2 };
}

// ====================================================================================================== GPU stack
// The SwissArmyTransformer layer stack shared by both SR models (sandwich LayerNorm, GELU MLP, split position table),
// with the attention supplied by the model. TODO(CogLM helper): fold into src/models/transformer.ts once its layer
// code takes an attention hook; kept private here so the SR models do not wait for it.

/** Architecture fields of a DSR / iterative-SR transformer (src/models/config.ts SrConfig satisfies it). */
export interface SrArch extends SrLayoutConfig {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  layernorm_epsilon: number;
  layernorm_order: string;
}

export interface Linear {
  w: Tensor;
  b: Tensor;
}

export interface SrLayer {
  inLn: LnParams;
  qkv: Linear;
  dense: Linear;
  /** DSR's attention_plus: QKV / dense of the high-res rows. */
  qkvPlus?: Linear;
  densePlus?: Linear;
  thirdLn: LnParams;
  postLn: LnParams;
  fourthLn: LnParams;
  h4h: Linear;
  h4hOut: Linear;
  inner: number;
}

/** Runs one layer's attention: reads the normalised input x [B·L, H], writes the attention output into `out`. */
export type SrAttention = (layer: number, x: Tensor, out: Tensor, batch: number) => void;

/** GPU weights of one SR transformer and its forward up to the final LayerNorm; logits in row blocks. */
export class SrTransformer {
  private constructor(
    readonly ctx: GpuContext,
    readonly cfg: SrArch,
    readonly wordEmb: RowChunkedTensor,
    /** Base position table rows followed by the extra (high-res) table rows. */
    readonly posTable: Tensor,
    readonly basePositions: number,
    readonly layers: SrLayer[],
    readonly finalLn: LnParams,
    /** Bytes of weights on the GPU. */
    readonly bytes: number,
  ) {}

  get hidden(): number {
    return this.cfg.hidden_size;
  }

  /** Streams the weights of a DsrModel (`plus`: attention_plus mixin) or ItersrModel from a weight source. */
  static async load(ctx: GpuContext, src: WeightSource, cfg: SrArch, plus: boolean): Promise<SrTransformer> {
    if (cfg.layernorm_order !== "sandwich") {
      throw new Error(
        `${src.origin}: layernorm_order "${cfg.layernorm_order}" (the SR models are sandwich-LN)`,
      );
    }
    const H = cfg.hidden_size;
    const owned: Tensor[] = [];
    let bytes = 0;
    const t = async (name: string, shape?: number[]) => {
      const x = await loadTensor(ctx, src, name, shape);
      owned.push(x);
      bytes += x.byteLength;
      return x;
    };
    try {
      const lin = async (p: string, n: number, k: number): Promise<Linear> => ({
        w: await t(`${p}.weight`, [n, k]),
        b: await t(`${p}.bias`, [n]),
      });
      const ln = async (p: string): Promise<LnParams> => ({
        weight: await t(`${p}.weight`, [H]),
        bias: await t(`${p}.bias`, [H]),
      });
      const wordEmb = await loadRowChunked(ctx, src, "transformer.word_embeddings.weight");
      for (const c of wordEmb.chunks) bytes += c.tensor.byteLength;
      // One position table: the base rows, then the extra rows (positions >= max_sequence_length).
      const pb = src.info("transformer.position_embeddings.weight");
      const pe = src.info("mixins.extra_position_embedding.position_embeddings.weight");
      if (pb.dtype !== pe.dtype || pb.shape[1] !== H || pe.shape[1] !== H) {
        throw new Error(
          `${src.origin}: position tables [${pb.shape}] ${pb.dtype} / [${pe.shape}] ${pe.dtype} do not match`,
        );
      }
      const dtype = pb.dtype === "f16" ? "f16" : "f32";
      const posTable = ctx.empty([pb.shape[0] + pe.shape[0], H], dtype);
      owned.push(posTable);
      bytes += posTable.byteLength;
      ctx.write(posTable, await src.read("transformer.position_embeddings.weight"), 0);
      ctx.write(
        posTable,
        await src.read("mixins.extra_position_embedding.position_embeddings.weight"),
        pb.byteLength,
      );
      const layers: SrLayer[] = [];
      for (let l = 0; l < cfg.num_layers; l++) {
        const p = `transformer.layers.${l}`;
        const inner = src.info(`${p}.mlp.dense_h_to_4h.weight`).shape[0];
        layers.push({
          inLn: await ln(`${p}.input_layernorm`),
          qkv: await lin(`${p}.attention.query_key_value`, 3 * H, H),
          dense: await lin(`${p}.attention.dense`, H, H),
          qkvPlus: plus ? await lin(`mixins.attention_plus.query_key_value.${l}`, 3 * H, H) : undefined,
          densePlus: plus ? await lin(`mixins.attention_plus.dense.${l}`, H, H) : undefined,
          thirdLn: await ln(`${p}.third_layernorm`),
          postLn: await ln(`${p}.post_attention_layernorm`),
          fourthLn: await ln(`${p}.fourth_layernorm`),
          h4h: await lin(`${p}.mlp.dense_h_to_4h`, inner, H),
          h4hOut: await lin(`${p}.mlp.dense_4h_to_h`, H, inner),
          inner,
        });
      }
      const finalLn = await ln("transformer.final_layernorm");
      await ctx.sync();
      return new SrTransformer(ctx, cfg, wordEmb, posTable, pb.shape[0], layers, finalLn, bytes);
    } catch (e) {
      for (const x of owned) x.release();
      throw e;
    }
  }

  /** Frees the weights (the model cannot run afterwards). */
  release(): void {
    const ts: Tensor[] = [this.posTable, this.finalLn.weight, this.finalLn.bias];
    for (const c of this.wordEmb.chunks) ts.push(c.tensor);
    for (const l of this.layers) {
      for (const ln of [l.inLn, l.thirdLn, l.postLn, l.fourthLn]) ts.push(ln.weight, ln.bias);
      for (const lin of [l.qkv, l.dense, l.qkvPlus, l.densePlus, l.h4h, l.h4hOut]) {
        if (lin) ts.push(lin.w, lin.b);
      }
    }
    for (const t of ts) t.release();
  }

  /** Rows of the combined position table for position ids (`split`: first row that reads the extra table). */
  positionRows(positionIds: ArrayLike<number>, split: number): Int32Array {
    const out = new Int32Array(positionIds.length);
    const L = this.cfg.layout[this.cfg.layout.length - 1];
    const total = this.posTable.shape[0];
    for (let i = 0; i < positionIds.length; i++) {
      const t = i % L;
      const r = t < split
        ? positionIds[i]
        : this.basePositions + positionIds[i] - this.cfg.max_sequence_length;
      if (r < 0 || r >= total || (t < split && r >= this.basePositions)) {
        throw new Error(`position id ${positionIds[i]} at token ${t} is outside the position tables`);
      }
      out[i] = r;
    }
    return out;
  }

  /**
   * The forward of `batch` sequences of L = layout[-1] tokens up to the final LayerNorm: hidden [batch·L, H].
   * `posRows` are rows of the combined position table (positionRows).
   */
  forward(ids: Tensor, posRows: Tensor, batch: number, attention: SrAttention): Tensor {
    const ctx = this.ctx, cfg = this.cfg, H = cfg.hidden_size, eps = cfg.layernorm_epsilon;
    const L = cfg.layout[cfg.layout.length - 1], rows = batch * L;
    const h0 = embedding(ctx, ids, this.wordEmb, { rows, posTable: this.posTable, posIds: posRows });
    let resid = h0;
    let x = layerNorm(ctx, h0, this.layers[0].inLn, { eps });
    for (let l = 0; l < this.layers.length; l++) {
      const ly = this.layers[l];
      const a = ctx.empty([rows, H]);
      attention(l, x, a, batch);
      x.release();
      const r1 = layerNormResidual(ctx, a, resid, ly.thirdLn, {
        eps,
        residOut: ctx.empty([rows, H]),
        post: ly.postLn,
      });
      a.release();
      resid.release();
      const m = this.mlp(r1.out!, ly, rows);
      r1.out!.release();
      const next = l + 1 < this.layers.length ? this.layers[l + 1].inLn : this.finalLn;
      const r2 = layerNormResidual(ctx, m, r1.resid, ly.fourthLn, {
        eps,
        residOut: ctx.empty([rows, H]),
        post: next,
      });
      m.release();
      r1.resid.release();
      resid = r2.resid;
      x = r2.out!;
    }
    resid.release();
    return x;
  }

  /** GELU MLP of `rows` rows, in row blocks when the inner activation would exceed one storage binding. */
  private mlp(x: Tensor, ly: SrLayer, rows: number): Tensor {
    const ctx = this.ctx, H = this.cfg.hidden_size;
    const out = ctx.empty([rows, H]);
    const limit = Math.min(ctx.maxBinding, 256 * 2 ** 20);
    let block = Math.max(1, Math.floor(limit / (ly.inner * 4)));
    if (block < rows) block = Math.max(64, block - (block % 64));
    block = Math.min(block, rows);
    const u = ctx.empty([block, ly.inner]);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const n = Math.min(block, rows - r0);
      matmul(ctx, x, ly.h4h.w, {
        constantW: true,
        M: n,
        N: ly.inner,
        K: H,
        aOff: r0 * H,
        bias: ly.h4h.b,
        gelu: true,
        out: u,
      });
      matmul(ctx, u, ly.h4hOut.w, {
        constantW: true,
        M: n,
        N: H,
        K: ly.inner,
        bias: ly.h4hOut.b,
        out,
        cOff: r0 * H,
      });
    }
    u.release();
    return out;
  }

  /**
   * Image logits of `rows` consecutive hidden rows from row `row0`: [rows, imageTokens] (word_embeddings[:n]ᵀ),
   * written into `out` (at least [rows, imageTokens]) when given, so one block buffer serves every block.
   */
  logits(hidden: Tensor, row0: number, rows: number, imageTokens: number, out?: Tensor): Tensor {
    return matmulChunked(this.ctx, hidden, this.wordEmb, {
      M: rows,
      cols: imageTokens,
      aOff: row0 * this.hidden,
      out,
      constantW: true,
    });
  }

  /** Rows per logits block so that one block stays well inside a storage binding. */
  logitsBlock(imageTokens: number): number {
    const limit = Math.min(this.ctx.maxBinding, 64 * 2 ** 20);
    return Math.max(1, Math.floor(limit / (imageTokens * 4)));
  }
}

/**
 * Standard masked attention of `s` rows per sequence among themselves, all heads, from a QKV tensor whose sequences
 * are `seqStride` rows apart: softmax(q·kᵀ/√d + add)·v written to out rows (b·outStride + i, head columns).
 * `add` [s, s] or [1, s] holds the log weights on visible entries and -1e9 on masked ones (see maskToAdd).
 * TODO(CogLM helper): use the shared attention of src/models/transformer.ts when it lands.
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
  },
): void {
  const { s, heads, headDim: d } = o;
  const H = heads * d;
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
 * The additive form of the original's `(scores + logW)·mask − 10000·(1 − mask)` for 0/1 masks: logW where visible,
 * -1e9 where masked (both give exactly zero probability, as every row has a visible entry).
 */
export function maskToAdd(mask: ArrayLike<number>, logW?: ArrayLike<number>): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && mask[i] !== 1) throw new Error(`attention mask value ${mask[i]} is not 0 or 1`);
    out[i] = mask[i] ? (logW ? logW[i] : 0) : -1e9;
  }
  return out;
}

/**
 * What the two SR models share around their forward: the layer stack, the layout geometry, size/free and the
 * upload of a forward's input ids and position rows (DsrModel, ItersrModel extend it).
 */
export abstract class SrModel<G extends { seqLen: number }> {
  readonly geometry: G;

  protected constructor(readonly ctx: GpuContext, readonly net: SrTransformer, geometry: (cfg: SrArch) => G) {
    this.geometry = geometry(net.cfg);
  }

  get bytes(): number {
    return this.net.bytes;
  }

  release(): void {
    this.net.release();
  }

  /**
   * Checks `batch` sequences of layout length and uploads their ids and position-table rows (positions of the
   * first `split` rows from the base table, positionRows); `what` names the model in errors.
   */
  protected uploadInputs(
    what: string,
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    split: number,
  ): { ids: Tensor; pos: Tensor } {
    const L = this.geometry.seqLen;
    if (tokens.length !== batch * L || positionIds.length !== batch * L) {
      throw new Error(`${what} forward: ${batch} sequences need ${batch * L} tokens and position ids`);
    }
    return {
      ids: this.ctx.upload(tokens, [batch * L], "i32"),
      pos: this.ctx.upload(this.net.positionRows(positionIds, split), [batch * L], "i32"),
    };
  }
}
