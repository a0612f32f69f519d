// Random weights made on the GPU (src/models/random_weights.ts through load.ts): each loaded tensor holds its fill
// spec's CPU-twin values, embedding row blocks included, and `read` returns the same values.
import assert from "node:assert/strict";
import { loadTransformer, type TransformerDims } from "../../src/models/transformer.ts";
import { randomSpec, randomWeightSource } from "../../src/models/random_weights.ts";
import { fillUniformRef } from "../../src/reference/fill.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import { assertClose, sharedContext } from "../_util.ts";

const DIMS: TransformerDims = {
  numLayers: 1,
  hidden: 24,
  heads: 2,
  headDim: 12,
  inner: 37,
  vocab: 301,
  maxSeq: 40,
  eps: 1e-5,
  order: "sandwich",
};

function shapes(d: TransformerDims): Map<string, number[]> {
  const m = new Map<string, number[]>(), H = d.hidden;
  m.set("transformer.word_embeddings.weight", [d.vocab, H]);
  m.set("transformer.position_embeddings.weight", [d.maxSeq, H]);
  for (const n of ["input_layernorm", "post_attention_layernorm", "third_layernorm", "fourth_layernorm"]) {
    m.set(`transformer.layers.0.${n}.weight`, [H]), m.set(`transformer.layers.0.${n}.bias`, [H]);
  }
  const lin = (p: string, n: number, k: number) => (m.set(`${p}.weight`, [n, k]), m.set(`${p}.bias`, [n]));
  lin("transformer.layers.0.attention.query_key_value", 3 * H, H);
  lin("transformer.layers.0.attention.dense", H, H);
  lin("transformer.layers.0.mlp.dense_h_to_4h", d.inner, H);
  lin("transformer.layers.0.mlp.dense_4h_to_h", H, d.inner);
  m.set("transformer.final_layernorm.weight", [H]), m.set("transformer.final_layernorm.bias", [H]);
  return m;
}

Deno.test("random weights: loaded tensors hold the fill twin's values (f16), read() agrees, scales by role", async () => {
  const ctx = await sharedContext();
  const m = shapes(DIMS);
  const src = randomWeightSource(ctx, m, { origin: "test", seed: 9, dtype: "f16" });
  const w = await loadTransformer(ctx, src, DIMS);
  const want = (name: string) => {
    const shape = m.get(name)!;
    return f16BitsToF32(
      f32ToF16Bits(fillUniformRef(shape.reduce((a, b) => a * b, 1), randomSpec(name, shape, 9))),
    );
  };
  const tol = { atol: 0, rtol: 2 ** -10 }; // one f16 rounding of a value that may differ by an f32 ulp
  const l0 = w.layers[0];
  assertClose(
    "qkv",
    await ctx.readF32(l0.queryKeyValue.weight),
    want("transformer.layers.0.attention.query_key_value.weight"),
    tol,
  );
  assertClose(
    "ln",
    await ctx.readF32(l0.inputLayernorm.weight),
    want("transformer.layers.0.input_layernorm.weight"),
    tol,
  );
  const emb = want("transformer.word_embeddings.weight");
  for (const c of w.wordEmbeddings.chunks) {
    const H = DIMS.hidden;
    assertClose(
      `emb rows ${c.row0}`,
      await ctx.readF32(c.tensor),
      emb.subarray(c.row0 * H, (c.row0 + c.rows) * H),
      tol,
    );
  }
  const viaRead = f16BitsToF32(
    new Uint16Array((await src.read("transformer.layers.0.mlp.dense_4h_to_h.weight")).buffer),
  );
  assertClose("read", viaRead, want("transformer.layers.0.mlp.dense_4h_to_h.weight"), tol);
  // Linear weights ±√(3/fan_in), norm weights around 1.
  const lnw = await ctx.readF32(l0.inputLayernorm.weight);
  assert.ok(lnw.every((v) => v > 0.89 && v < 1.11));
  const h4 = await ctx.readF32(l0.dense4hToH.weight);
  const lim = Math.sqrt(3 / DIMS.inner);
  assert.ok(h4.every((v) => Math.abs(v) <= lim * 1.001) && h4.some((v) => Math.abs(v) > lim * 0.9));
});
