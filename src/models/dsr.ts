// CogView2's direct super-resolution transformer (sr_pipeline/dsr_model.py DsrModel) on the GPU: text + low-res rows
// use the base attention (masked, full), the high-res rows the attention_plus weights and the fused local attention
// (9×5 window on the high-res grid + 5×5 on the low-res grid, one softmax: sparse_attention_2d_light).
// Not the sampler or the stage API (src/pipeline/super_resolution.ts drives it); no KV cache (one step).
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { WeightSource } from "../formats/weights.ts";
import { matmul } from "../kernels/matmul.ts";
import { qkvRows, srLocalAttention } from "../kernels/local_attention.ts";
import {
  type DsrGeometry,
  dsrGeometry,
  maskedAttention,
  maskToAdd,
  type SrArch,
  SrModel,
  SrTransformer,
} from "./sr_common.ts";

export class DsrModel extends SrModel<DsrGeometry> {
  private constructor(ctx: GpuContext, net: SrTransformer) {
    super(ctx, net, dsrGeometry);
  }

  static async load(ctx: GpuContext, src: WeightSource, cfg: SrArch): Promise<DsrModel> {
    return new DsrModel(ctx, await SrTransformer.load(ctx, src, cfg, true));
  }

  /**
   * Forward of `batch` sequences (tokens / position ids concatenated, layout[2] each) sharing one base-attention
   * mask [s0, s0] (and log weights): the final-LayerNorm output [batch·layout[2], hidden].
   */
  forward(
    tokens: Int32Array,
    positionIds: Int32Array,
    batch: number,
    mask: ArrayLike<number>,
    logAttentionWeights?: ArrayLike<number>,
  ): Tensor {
    const ctx = this.ctx, g = this.geometry, cfg = this.net.cfg;
    const H = cfg.hidden_size, heads = cfg.num_attention_heads, d = H / heads, L = g.seqLen;
    if (mask.length !== g.s0 * g.s0) throw new Error(`DSR forward: the mask must be [${g.s0}, ${g.s0}]`);
    const { ids, pos } = this.uploadInputs("DSR", tokens, positionIds, batch, g.s0);
    const add = ctx.upload(maskToAdd(mask, logAttentionWeights), [g.s0, g.s0]);
    const hidden = this.net.forward(ids, pos, batch, (l, x, out) => {
      const ly = this.net.layers[l];
      // Base QKV over the text + low-res rows, attention_plus QKV over the high-res rows.
      const qkv0 = matmul(ctx, x, ly.qkv.w, {
        constantW: true,
        M: g.s0,
        N: 3 * H,
        K: H,
        batch,
        aBatchStride: L * H,
        bias: ly.qkv.b,
      });
      const qkv1 = matmul(ctx, x, ly.qkvPlus!.w, {
        constantW: true,
        M: g.s1,
        N: 3 * H,
        K: H,
        batch,
        aOff: g.s0 * H,
        aBatchStride: L * H,
        bias: ly.qkvPlus!.b,
      });
      const ctx0 = ctx.empty([batch * g.s0, H]);
      maskedAttention(ctx, qkv0, {
        batch,
        s: g.s0,
        seqStride: g.s0,
        heads,
        headDim: d,
        add,
        out: ctx0,
        outStride: g.s0,
      });
      const kv1 = { hidden: H, seqLen: g.s1 };
      const kv0 = { hidden: H, seqLen: g.s0, firstToken: g.textLen };
      const ctx1 = srLocalAttention(ctx, {
        batch,
        heads,
        headDim: d,
        side: g.highSide,
        kernelSize: cfg.kernel_size,
        q: qkvRows(qkv1, "q", kv1),
        k: qkvRows(qkv1, "k", kv1),
        v: qkvRows(qkv1, "v", kv1),
        lowres: {
          side: g.lowSide,
          kernelSize: cfg.kernel_size2,
          k: qkvRows(qkv0, "k", kv0),
          v: qkvRows(qkv0, "v", kv0),
        },
      });
      matmul(ctx, ctx0, ly.dense.w, {
        constantW: true,
        M: g.s0,
        N: H,
        K: H,
        batch,
        bias: ly.dense.b,
        out,
        cBatchStride: L * H,
      });
      matmul(ctx, ctx1, ly.densePlus!.w, {
        constantW: true,
        M: g.s1,
        N: H,
        K: H,
        batch,
        bias: ly.densePlus!.b,
        out,
        cOff: g.s0 * H,
        cBatchStride: L * H,
      });
      for (const t of [qkv0, qkv1, ctx0, ctx1]) t.release();
    });
    for (const t of [ids, pos, add]) t.release();
    return hidden;
  }
}
