// CogView2's direct super-resolution transformer (sr_pipeline/dsr_model.py DsrModel) on the GPU: the shared SAT layer
// stack (src/models/transformer.ts) with DSR's attention plugged in: text + low-res rows use the base attention
// (masked, full), the high-res rows the attention_plus weights and the fused local attention (9×5 window on the
// high-res grid + 5×5 on the low-res grid, one softmax: sparse_attention_2d_light).
// Not the sampler or the stage API (src/pipeline/super_resolution.ts drives it); no KV cache (one step).
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { matmul } from "../kernels/matmul.ts";
import { srLocalAttention } from "../kernels/local_attention.ts";
import { type DsrGeometry, dsrGeometry, maskToAdd } from "../geometry/sr.ts";
import type { Steps } from "./cancel.ts";
import type { SrConfig } from "./config.ts";
import { loadTensor } from "./load.ts";
import {
  fromToken,
  loadSrTransformer,
  maskedAttention,
  projectQkv,
  qkvPlanes,
  SrModel,
  type SrPick,
} from "./sr_common.ts";
import {
  type AttentionHook,
  type Linear,
  releaseTransformer,
  type TransformerDims,
  type TransformerWeights,
} from "./transformer.ts";

export class DsrModel extends SrModel<DsrGeometry> {
  private constructor(
    ctx: GpuContext,
    cfg: SrConfig,
    dims: TransformerDims,
    weights: TransformerWeights,
    /** Per layer, attention_plus's QKV and dense (the high-res rows'). */
    readonly plus: { qkv: Linear; dense: Linear }[],
  ) {
    super(ctx, cfg, dims, weights, dsrGeometry);
  }

  /** Streams a DsrModel checkpoint: the transformer, its extra position table and the attention_plus mixin. */
  static async load(ctx: GpuContext, src: WeightSource, cfg: SrConfig): Promise<DsrModel> {
    const { dims, weights } = await loadSrTransformer(ctx, src, cfg);
    const H = dims.hidden, owned: Tensor[] = [];
    const t = async (name: string, shape: number[]) => {
      const x = await loadTensor(ctx, src, name, shape);
      owned.push(x);
      return x;
    };
    const lin = async (p: string, n: number): Promise<Linear> => ({
      weight: await t(`${p}.weight`, [n, H]),
      bias: await t(`${p}.bias`, [n]),
    });
    try {
      const plus = [];
      for (let l = 0; l < dims.numLayers; l++) {
        plus.push({
          qkv: await lin(`mixins.attention_plus.query_key_value.${l}`, 3 * H),
          dense: await lin(`mixins.attention_plus.dense.${l}`, H),
        });
      }
      await ctx.sync();
      return new DsrModel(ctx, cfg, dims, weights, plus);
    } catch (e) {
      for (const x of owned) x.release();
      releaseTransformer(weights);
      throw e;
    }
  }

  override get bytes(): number {
    let n = this.weights.bytes;
    for (const p of this.plus) for (const l of [p.qkv, p.dense]) n += l.weight.byteLength + l.bias.byteLength;
    return n;
  }

  override release(): void {
    super.release();
    for (const p of this.plus) for (const l of [p.qkv, p.dense]) l.weight.release(), l.bias.release();
  }

  /**
   * Forward of `batch` sequences (tokens / position ids concatenated, layout[2] each) sharing one base-attention
   * mask [s0, s0] (and log weights) as recording steps (two per layer): the final-LayerNorm output
   * [batch·layout[2], hidden]. `forward` records it at once.
   */
  override *forwardSteps(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Steps<Tensor> {
    const ctx = this.ctx, g = this.geometry, cfg = this.cfg;
    const H = this.dims.hidden, heads = this.dims.heads, d = this.dims.headDim, L = g.seqLen;
    if (mask.length !== g.s0 * g.s0) throw new Error(`DSR forward: the mask must be [${g.s0}, ${g.s0}]`);
    const add = ctx.upload(maskToAdd(mask, logAttentionWeights), [g.s0, g.s0]);
    // Per sequence of L rows in s.qkv / s.context: the text + low-res rows [0, s0) from the base attention, the
    // high-res rows [s0, L) from attention_plus.
    const hook: AttentionHook = (l, xn, out, s) => {
      const base = this.weights.layers[l], plus = this.plus[l];
      const rows = (lin: Linear, M: number, r0: number, x: Tensor, y: Tensor, ldy: number) =>
        matmul(ctx, x, lin.weight, {
          constantW: true,
          M,
          N: ldy,
          K: H,
          batch,
          aOff: r0 * H,
          aBatchStride: L * H,
          bias: lin.bias,
          out: y,
          cOff: r0 * ldy,
          cBatchStride: L * ldy,
        });
      const p = qkvPlanes(ctx, s.qkv, { hidden: H, seqLen: L });
      const project = (lin: Linear, M: number, r0: number) =>
        projectQkv(ctx, lin, xn, p, { rows: M, row0: r0, batch, seqLen: L, hidden: H });
      project(base.queryKeyValue, g.s0, 0);
      project(plus.qkv, g.s1, g.s0);
      maskedAttention(ctx, {
        batch,
        s: g.s0,
        heads,
        headDim: d,
        q: p.q,
        k: p.k,
        v: p.v,
        add,
        out: { tensor: s.context, offset: 0, rowStride: H, batchStride: L * H },
      });
      srLocalAttention(ctx, {
        batch,
        heads,
        headDim: d,
        side: g.highSide,
        kernelSize: cfg.kernel_size,
        q: fromToken(p.q, g.s0),
        k: fromToken(p.k, g.s0),
        v: fromToken(p.v, g.s0),
        lowres: {
          side: g.lowSide,
          kernelSize: cfg.kernel_size2,
          k: fromToken(p.k, g.textLen),
          v: fromToken(p.v, g.textLen),
        },
        out: { tensor: s.context, offset: g.s0 * H, rowStride: H, batchStride: L * H },
      });
      rows(base.dense, g.s0, 0, s.context, out, H);
      rows(plus.dense, g.s1, g.s0, s.context, out, H);
    };
    try {
      return yield* this.runSteps("DSR", tokens, positionIds, batch, g.s0, hook);
    } finally {
      add.release();
    }
  }

  /**
   * The tokens of one DSR step: for each of `batch` sequences of `hidden` (forward's output), one token per high-res
   * row; i32 [batch·s1]. Sequence b draws with RNG rows (sample0 + b)·s1.. (sample0: its index in the whole job).
   * Recording steps, one per logits block (runSteps records them at once).
   */
  *pickHighres(hidden: Tensor, batch: number, pick: SrPick, imageTokens: number, sample0 = 0): Steps<Tensor> {
    const g = this.geometry, ids = this.ctx.empty([batch * g.s1], "i32");
    const groups = Array.from({ length: batch }, (_, b) => ({
      row0: b * g.seqLen + g.s0,
      rows: g.s1,
      rowBase: (sample0 + b) * g.s1,
      outOffset: b * g.s1,
    }));
    let done = false;
    try {
      yield* this.pickSteps(hidden, groups, pick, imageTokens, ids);
      done = true;
    } finally {
      if (!done) ids.release();
    }
    return ids;
  }
}
