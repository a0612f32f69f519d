// The one SAT layer stack (src/models/transformer.ts) against the CPU transformer, with the MLP in row blocks (the
// path big SR forwards take when [rows, inner] exceeds a storage binding; the tiny fixtures never reach it).
import {
  allocScratch,
  embed,
  loadTransformer,
  releaseScratch,
  releaseTransformer,
  standardAttentionBlock,
  syntheticTransformerSource,
  type TransformerDims,
  transformerForward,
} from "../../src/models/transformer.ts";
import { maskedAttention } from "../../src/models/sr_common.ts";
import { loadCpuWeights } from "../../src/reference/sr.ts";
import { transformerForwardRef } from "../../src/reference/transformer.ts";
import { assertClose, rng, sharedContext } from "../_util.ts";

const base = { numLayers: 2, heads: 3, vocab: 61, maxSeq: 200, eps: 1e-5 };
const DIMS: TransformerDims[] = [
  { ...base, hidden: 48, headDim: 16, inner: 101, order: "sandwich" },
  { ...base, hidden: 39, headDim: 13, inner: 77, order: "pre" },
];

Deno.test("transformerForward with the MLP in 64-row blocks (150 rows: 3 blocks, the last partial) matches the CPU transformer; SR masked attention on both paths", async () => {
  const ctx = await sharedContext();
  for (
    const [dims, path] of [[DIMS[0], "matmul"], [DIMS[1], "matmul"], [DIMS[0], "flash"], [
      DIMS[1],
      "flash",
    ]] as const
  ) {
    const src = syntheticTransformerSource(dims, { seed: 5, dtype: "f32" });
    const w = await loadTransformer(ctx, src, dims);
    const cpu = await loadCpuWeights(src);
    const L = 150, r = rng(7);
    const tokens = Int32Array.from({ length: L }, () => Math.floor(r() * dims.vocab));
    const positionIds = Int32Array.from({ length: L }, (_, i) => (i * 7) % dims.maxSeq);
    const s = allocScratch(ctx, dims, L);
    s.mlpMid.release();
    s.mlpMid = ctx.empty([64, dims.inner]);
    const ids = ctx.upload(tokens, [L], "i32"), pos = ctx.upload(positionIds, [L], "i32");
    const add = ctx.upload(new Float32Array(L), [1, L]);
    embed(ctx, w, ids, { rows: L, posIds: pos, out: s.h });
    transformerForward(
      ctx,
      dims,
      w,
      s,
      (l, xn, out, sc) =>
        standardAttentionBlock(ctx, w.layers[l], xn, out, sc, (qkv, context) =>
          maskedAttention(ctx, {
            batch: 1,
            s: L,
            heads: dims.heads,
            headDim: dims.headDim,
            // q | k | v interleaved per row, as the fused QKV projection writes them.
            q: { tensor: qkv, offset: 0, rowStride: 3 * dims.hidden, batchStride: 0 },
            k: { tensor: qkv, offset: dims.hidden, rowStride: 3 * dims.hidden, batchStride: 0 },
            v: { tensor: qkv, offset: 2 * dims.hidden, rowStride: 3 * dims.hidden, batchStride: 0 },
            add,
            out: { tensor: context, offset: 0, rowStride: dims.hidden, batchStride: 0 },
            path,
          })),
    );
    const got = await ctx.readF32(s.xn);
    const want = transformerForwardRef(cpu, {
      num_layers: dims.numLayers,
      hidden_size: dims.hidden,
      num_attention_heads: dims.heads,
      layernorm_epsilon: dims.eps,
      layernorm_order: dims.order,
    }, { tokens, positionIds });
    // f32 throughout; LayerNormed O(1) outputs after 2 layers (as coglm_test).
    assertClose(`hidden (${dims.order}, ${path})`, got, want, { atol: 2e-4, rtol: 1e-4 });
    releaseScratch(s);
    for (const t of [ids, pos, add]) t.release();
    releaseTransformer(w);
  }
});
