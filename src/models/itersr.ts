// CogView2's iterative super-resolution transformer (sr_pipeline/itersr_model.py ItersrModel) on the GPU: one QKV
// for all rows; text rows attend to the text, high-res rows to all text plus a 9×5 local window of the high-res grid
// (one softmax: sparse_attention_2d_text), through the fused local attention kernel.
// Not the LoPAR loop (src/pipeline/super_resolution.ts) and not a sampler.
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { matmul } from "../kernels/matmul.ts";
import { qkvRows, srLocalAttention } from "../kernels/local_attention.ts";
import {
  type ItersrGeometry,
  itersrGeometry,
  maskedAttention,
  maskToAdd,
  type SrArch,
  SrModel,
  SrTransformer,
} from "./sr_common.ts";

export class ItersrModel extends SrModel<ItersrGeometry> {
  private constructor(ctx: GpuContext, net: SrTransformer) {
    super(ctx, net, itersrGeometry);
  }

  static async load(ctx: GpuContext, src: WeightSource, cfg: SrArch): Promise<ItersrModel> {
    return new ItersrModel(ctx, await SrTransformer.load(ctx, src, cfg, false));
  }

  /**
   * Forward of `batch` sequences (layout[1] tokens each, concatenated) sharing one text mask [layout[0]] (and log
   * weights): the final-LayerNorm output [batch·layout[1], hidden].
   */
  forward(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Tensor {
    const ctx = this.ctx, g = this.geometry, cfg = this.net.cfg;
    const H = cfg.hidden_size, heads = cfg.num_attention_heads, d = H / heads, L = g.seqLen, T = g.textLen;
    if (mask.length !== T) throw new Error(`iterative-SR forward: the mask must have ${T} entries`);
    const { ids, pos } = this.uploadInputs("iterative-SR", tokens, positionIds, batch, T);
    // Text rows: (q·k)·mask − 10000·(1 − mask) without log weights; high-res rows: the kernel applies mask and weights.
    const add = ctx.upload(maskToAdd(mask), [1, T]);
    const maskT = ctx.upload(Float32Array.from(mask), [1, T]);
    const logW = logAttentionWeights ? ctx.upload(Float32Array.from(logAttentionWeights), [1, T]) : undefined;
    const hidden = this.net.forward(ids, pos, batch, (l, x, out) => {
      const ly = this.net.layers[l];
      const qkv = matmul(ctx, x, ly.qkv.w, { constantW: true, M: batch * L, N: 3 * H, K: H, bias: ly.qkv.b });
      const cx = ctx.empty([batch * L, H]);
      maskedAttention(ctx, qkv, { batch, s: T, seqStride: L, heads, headDim: d, add, out: cx, outStride: L });
      const hi = { hidden: H, seqLen: L, firstToken: T }, tx = { hidden: H, seqLen: L };
      srLocalAttention(ctx, {
        batch,
        heads,
        headDim: d,
        side: g.highSide,
        kernelSize: cfg.kernel_size,
        q: qkvRows(qkv, "q", hi),
        k: qkvRows(qkv, "k", hi),
        v: qkvRows(qkv, "v", hi),
        text: {
          length: T,
          k: qkvRows(qkv, "k", tx),
          v: qkvRows(qkv, "v", tx),
          mask: maskT,
          logWeights: logW,
        },
        out: { tensor: cx, offset: T * H, rowStride: H, batchStride: L * H },
      });
      matmul(ctx, cx, ly.dense.w, { constantW: true, M: batch * L, N: H, K: H, bias: ly.dense.b, out });
      qkv.release();
      cx.release();
    });
    for (const t of [ids, pos, add, maskT, logW]) t?.release();
    return hidden;
  }
}
