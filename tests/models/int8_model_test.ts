// Models load int8 checkpoints transparently: the per-tensor dtype comes from the weight source (codes + .qscale),
// linear layers run the int8 kernels, and the result matches the CPU transformer on the dequantised weights.
import assert from "node:assert/strict";
import { randomWeightSource } from "../../src/models/random_weights.ts";
import { loadTensor } from "../../src/models/load.ts";
import { QSCALE_SUFFIX, quantizedSource } from "../../src/formats/int8.ts";
import {
  assertForwardMatchesCpu,
  CogLM,
  IMAGE_TOKENS,
  loadCpuWeights,
  loadTransformer,
  SANDWICH_48,
  syntheticTransformerSource,
  type TransformerDims,
} from "./_coglm_case.ts";
import { sharedContext } from "../_util.ts";

// hidden 48 (group 16), inner 101 (dense_4h_to_h has no group: stays f16 beside int8 tensors); hidden 64 and
// inner 256 (groups of 64 everywhere).
const DIMS: TransformerDims[] = [
  SANDWICH_48,
  {
    numLayers: 2,
    hidden: 64,
    heads: 4,
    headDim: 16,
    inner: 256,
    vocab: 303,
    maxSeq: 530,
    eps: 1e-5,
    order: "pre",
  },
];

Deno.test("CogLM with int8 linear weights matches the CPU transformer on the dequantised weights", async () => {
  const ctx = await sharedContext();
  for (const dims of DIMS) {
    const src = quantizedSource(syntheticTransformerSource(dims, { seed: dims.hidden, dtype: "f16" }));
    const qkv = "transformer.layers.0.attention.query_key_value.weight";
    assert.equal(src.info(qkv).dtype, "i8");
    assert.ok(src.has(qkv + QSCALE_SUFFIX));
    const w = await loadTransformer(ctx, src, dims);
    assert.equal(w.layers[0].queryKeyValue.weight.dtype, "i8");
    assert.equal(w.layers[0].queryKeyValue.weight.quant?.group, dims.hidden === 48 ? 16 : 64);
    assert.equal(w.layers[0].dense4hToH.weight.dtype, dims.inner === 101 ? "f16" : "i8");
    const m = CogLM.fromWeights(ctx, dims, w, IMAGE_TOKENS);
    const cpu = await loadCpuWeights(src);
    // Same case and tolerances as the f32/f16 CogLM test: the dequantisation itself is exact in f32.
    await assertForwardMatchesCpu(ctx, m, cpu, dims, `int8 ${dims.order}`);
    m.release();
  }
});

Deno.test("an int8 tensor without its .qscale scales is a clear load error naming both", async () => {
  const ctx = await sharedContext();
  const dims = DIMS[1];
  const q = quantizedSource(syntheticTransformerSource(dims, { seed: 1, dtype: "f16" }));
  const hidden = { ...q, has: (n: string) => !n.endsWith(QSCALE_SUFFIX) && q.has(n) };
  await assert.rejects(
    () => loadTransformer(ctx, hidden, dims),
    /int8 tensor transformer\.layers\.0\.attention\.query_key_value\.weight \[192,64\] needs f32 scales .*\.qscale.*found none/,
  );
});

Deno.test("random int8 weights (published-shape benchmarks): codes ±127 and a constant scale spanning ±√(3/K)", async () => {
  const ctx = await sharedContext();
  const K = 192, N = 7;
  const src = randomWeightSource(ctx, new Map([["l.weight", [N, K]], ["l.bias", [N]]]), {
    origin: "t",
    seed: 3,
    dtype: "int8",
  });
  assert.equal(src.info("l.weight").dtype, "i8");
  assert.equal(src.info("l.bias").dtype, "f16");
  const w = await loadTensor(ctx, src, "l.weight", [N, K]);
  assert.equal(w.quant?.group, 64);
  const q = await ctx.read(w), s = await ctx.readF32(w.quant!.scales);
  assert.ok([...q].every((v) => Math.abs(v) <= 127) && new Set(q).size > 100, "codes spread over ±127");
  const want = Math.fround(Math.sqrt(3 / K) / 127);
  assert.ok(s.every((v) => v === want), `scales ${s[0]} vs ${want}`);
  // The loaded tensor holds what the source's read() gives (the loader fills on the GPU, read() reads back).
  assert.deepEqual([...new Int8Array((await src.read("l.weight")).slice().buffer)], [...q]);
  w.release();
});
