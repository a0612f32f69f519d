// CogLM where the embedding table (also the logits weight) is above the max storage binding (#14): the same device
// with the binding limit lowered to 256 KiB, a 5003 × 64 f32 table (1.28 MB: 5 row blocks), numerics against the
// CPU transformer. Covers post-selection (perplexity: logits over the whole vocabulary), greedy generation at
// batch 8 (KV caches of 8 rows) and the completion fill.
import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import {
  assertFillMatchesCpu,
  CogLM,
  coglmPerplexityRef,
  cpuConfig,
  greedyContinuationRef,
  loadCpuWeights,
  loadTransformer,
  syntheticTransformerSource,
  type TransformerDims,
} from "./_coglm_case.ts";
import { rng, sharedContext } from "../_util.ts";

const LIMIT = 256 * 1024;
const DIMS: TransformerDims = {
  numLayers: 2,
  hidden: 64,
  heads: 4,
  headDim: 16,
  inner: 128,
  vocab: 5003,
  maxSeq: 530,
  eps: 1e-5,
  order: "sandwich",
};
const IMAGE_TOKENS = 4001;
const cfg = cpuConfig(DIMS);

async function model() {
  const shared = await sharedContext();
  const ctx = new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: LIMIT },
  });
  const src = syntheticTransformerSource(DIMS, { seed: 17, dtype: "f32" });
  const w = await loadTransformer(ctx, src, DIMS);
  assert.ok(w.wordEmbeddings.chunks.length > 1, "the table is split");
  assert.ok(DIMS.vocab * DIMS.hidden * 4 > LIMIT);
  return { ctx, m: CogLM.fromWeights(ctx, DIMS, w, IMAGE_TOKENS), cpu: await loadCpuWeights(src) };
}

Deno.test("CogLM at a binding limit below its embedding table: perplexity matches the CPU transformer", async () => {
  const { m, cpu } = await model();
  const r = rng(5);
  const nImg = 9, caption = Int32Array.from([4901, 4062, 4990, 4075]);
  const samples = [0, 1, 2].map(() =>
    Int32Array.from({ length: nImg }, () => Math.floor(r() * IMAGE_TOKENS))
  );
  const got = await m.perplexity(samples, caption);
  for (const [b, s] of samples.entries()) {
    const want = coglmPerplexityRef(cpu, cfg, s, caption, DIMS.vocab);
    assert.ok(Math.abs(got[b] - want) < 1e-4, `sample ${b}: ${got[b]} vs ${want}`);
  }
  m.release();
});

Deno.test("CogLM at a binding limit below its embedding table: greedy generation at batch 8 is the CPU continuation", async () => {
  const { m, cpu } = await model();
  const P = 5, txtLen = P - 1, n = 6;
  const textIds = Int32Array.from([4060, 4081, 4099, 4070, 4100]);
  const out = await m.generate({ textIds, batch: 8, seed: 0, recipe: { attn_plus: 1.4 }, numTokens: n });
  const want = greedyContinuationRef(cpu, DIMS, textIds, { txtLen, n, imageTokens: IMAGE_TOKENS });
  assert.equal(out.length, 8);
  for (const row of out) assert.deepEqual([...row], want);
  m.release();
});

Deno.test("CogLM at a binding limit below its embedding table: the completion fill matches full CPU forwards", async () => {
  const { ctx, m, cpu } = await model();
  await assertFillMatchesCpu(ctx, m, cpu, DIMS, { imageTokens: IMAGE_TOKENS, kv: m.kvDtype });
  m.release();
});
