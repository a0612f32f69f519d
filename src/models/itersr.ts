// CogView2's iterative super-resolution transformer (sr_pipeline/itersr_model.py ItersrModel) on the GPU: the shared
// SAT layer stack (src/models/transformer.ts) with its attention plugged in: one QKV for all rows; text rows attend
// to the text, high-res rows to all text plus a 9×5 local window of the high-res grid (one softmax:
// sparse_attention_2d_text), through the fused local attention kernel.
// Not the LoPAR loop (src/pipeline/super_resolution.ts) and not a sampler.
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { embedding } from "../kernels/embedding.ts";
import type { WeightSource } from "../formats/weights.ts";
import { srLocalAttention } from "../kernels/local_attention.ts";
import { type ItersrGeometry, itersrGeometry, maskToAdd } from "../geometry/sr.ts";
import type { Steps } from "./cancel.ts";
import type { SrConfig } from "./config.ts";
import {
  fromToken,
  loadSrTransformer,
  maskedAttention,
  projectQkv,
  qkvPlanes,
  SrModel,
  type SrPick,
} from "./sr_common.ts";
import { type AttentionHook, linear, type TransformerDims, type TransformerWeights } from "./transformer.ts";

export class ItersrModel extends SrModel<ItersrGeometry> {
  private constructor(ctx: GpuContext, cfg: SrConfig, dims: TransformerDims, weights: TransformerWeights) {
    super(ctx, cfg, dims, weights, itersrGeometry);
  }

  static async load(ctx: GpuContext, src: WeightSource, cfg: SrConfig): Promise<ItersrModel> {
    const { dims, weights } = await loadSrTransformer(ctx, src, cfg);
    await ctx.sync();
    return new ItersrModel(ctx, cfg, dims, weights);
  }

  /**
   * Forward of `batch` sequences (layout[1] tokens each, concatenated) sharing one text mask [layout[0]] (and log
   * weights) as recording steps (two per layer): the final-LayerNorm output [batch·layout[1], hidden]. `forward`
   * records it at once.
   */
  override *forwardSteps(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Steps<Tensor> {
    const ctx = this.ctx, g = this.geometry, cfg = this.cfg;
    const H = this.dims.hidden, heads = this.dims.heads, d = this.dims.headDim, L = g.seqLen, T = g.textLen;
    if (mask.length !== T) throw new Error(`iterative-SR forward: the mask must have ${T} entries`);
    // Text rows: (q·k)·mask − 10000·(1 − mask) without log weights; high-res rows: the kernel applies mask and weights.
    const add = ctx.upload(maskToAdd(mask), [1, T]);
    const maskT = ctx.upload(Float32Array.from(mask), [1, T]);
    const logW = logAttentionWeights ? ctx.upload(Float32Array.from(logAttentionWeights), [1, T]) : undefined;
    const hook: AttentionHook = (l, xn, out, s) => {
      const layer = this.weights.layers[l];
      const p = qkvPlanes(ctx, s.qkv, { hidden: H, seqLen: L });
      projectQkv(ctx, layer.queryKeyValue, xn, p, { rows: L, row0: 0, batch, seqLen: L, hidden: H });
      maskedAttention(ctx, {
        batch,
        s: T,
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
        q: fromToken(p.q, T),
        k: fromToken(p.k, T),
        v: fromToken(p.v, T),
        text: { length: T, k: p.k, v: p.v, mask: maskT, logWeights: logW },
        out: { tensor: s.context, offset: T * H, rowStride: H, batchStride: L * H },
      });
      linear(ctx, s.context, layer.dense, { rows: s.rows, out });
    };
    try {
      return yield* this.runSteps("iterative-SR", tokens, positionIds, batch, T, hook);
    } finally {
      for (const t of [add, maskT, logW]) t?.release();
    }
  }

  /**
   * The tokens of one LoPAR round: one per listed row of `hidden` (ascending rows b·seqLen + textLen + i of `batch`
   * sequences: the re-masked cells); i32 [rows.length]. The rows are gathered first so logits are computed for them
   * only; cell i of sequence b draws with RNG row (sample0 + b)·s1 + (its rank among b's rows). Recording steps,
   * one per logits block (runSteps records them at once).
   */
  *pickRows(
    hidden: Tensor,
    rows: ArrayLike<number>,
    pick: SrPick,
    imageTokens: number,
    sample0 = 0,
  ): Steps<Tensor> {
    const ctx = this.ctx, g = this.geometry, H = this.dims.hidden, n = rows.length;
    const rowIds = ctx.upload(Int32Array.from(rows), [n], "i32");
    const picked = embedding(ctx, rowIds, hidden.reshape([hidden.size / H, H]), { rows: n });
    rowIds.release();
    const groups = [];
    for (let start = 0; start < n;) {
      const b = Math.floor(rows[start] / g.seqLen);
      let end = start;
      while (end < n && rows[end] < (b + 1) * g.seqLen) end++;
      groups.push({ row0: start, rows: end - start, rowBase: (sample0 + b) * g.s1, outOffset: start });
      start = end;
    }
    const ids = ctx.empty([Math.max(1, n)], "i32");
    let done = false;
    try {
      yield* this.pickSteps(picked, groups, pick, imageTokens, ids);
      done = true;
    } finally {
      picked.release();
      if (!done) ids.release();
    }
    return ids;
  }
}
