import assert from "node:assert/strict";
import { type TokenSampler } from "../../src/models/coglm.ts";
import {
  assertFillMatchesCpu,
  assertForwardMatchesCpu,
  CogLM,
  coglmInputsRef,
  coglmPerplexityRef,
  cpuConfig,
  greedyContinuationRef,
  IMAGE_TOKENS,
  loadCpuWeights,
  loadTransformer,
  logitsRef,
  logWeightsRef,
  SANDWICH_48,
  syntheticTransformerSource,
  type TransformerDims,
  transformerForwardRef,
} from "./_coglm_case.ts";
import { assertClose, rng, sharedContext } from "../_util.ts";

// Small odd sizes: head size 16 (divides the attention workgroup) and 13 (does not); a 303-row vocabulary whose
// first 257 rows play the image tokens.
const DIMS: TransformerDims[] = [
  SANDWICH_48,
  {
    numLayers: 1,
    hidden: 39,
    heads: 3,
    headDim: 13,
    inner: 77,
    vocab: 303,
    maxSeq: 530,
    eps: 1e-5,
    order: "pre",
  },
];

async function model(dims: TransformerDims, dtype: "f16" | "f32") {
  const ctx = await sharedContext();
  const src = syntheticTransformerSource(dims, { seed: dims.hidden, dtype });
  const m = CogLM.fromWeights(ctx, dims, await loadTransformer(ctx, src, dims), IMAGE_TOKENS);
  return { ctx, m, cpu: await loadCpuWeights(src) };
}

Deno.test("CogLM forward (mask, positions, attn_plus) matches the CPU transformer", async () => {
  for (const dims of DIMS) {
    for (const dtype of ["f32", "f16"] as const) {
      const { ctx, m, cpu } = await model(dims, dtype);
      await assertForwardMatchesCpu(ctx, m, cpu, dims, `${dims.order} ${dtype}`);
      m.release();
    }
  }
});

// KV cache in f32 (the cache mechanics, exact to the f32 tolerance) and in f16 (the default: K/V rounded to f16,
// relative 4.9e-4 per element; measured up to 3.2e-3 on these O(3) logits, tolerance 1e-2).
for (const kv of ["f32", "f16"] as const) {
  Deno.test(`CogLM generate: cached decode steps give each batch row the logits of a full forward of its sequence (KV cache ${kv})`, async () => {
    const dims = DIMS[0];
    const { ctx, m, cpu } = await model(dims, "f32");
    m.kvDtype = kv;
    const P = 6, txtLen = P - 1, B = 3, n = 5;
    const r = rng(11);
    const textIds = Int32Array.from({ length: P }, () => 257 + Math.floor(r() * 46));
    // A test sampler: records the logits it is given and writes predetermined, different ids for each row.
    const chosen = Int32Array.from({ length: n * B }, () => Math.floor(r() * IMAGE_TOKENS));
    const seen: Float32Array[] = [];
    const rec = ctx.empty([n, B, IMAGE_TOKENS]);
    const sampler: TokenSampler = (c, lg, s) => {
      assert.equal(s.rows, B);
      assert.equal(s.broadcast, s.step === 0);
      c.copy(lg, { buffer: rec.buffer, offset: s.step * B * IMAGE_TOKENS * 4, size: B * IMAGE_TOKENS * 4 });
      c.write(s.out, chosen.subarray(s.step * B, (s.step + 1) * B), s.outOffset * 4);
    };
    const out = await m.generate({
      textIds,
      batch: B,
      seed: 1,
      recipe: { attn_plus: 1.4 },
      numTokens: n,
      sampler,
    });
    seen.push(await ctx.readF32(rec));
    for (let b = 0; b < B; b++) {
      assert.deepEqual([...out[b]], Array.from({ length: n }, (_, k) => chosen[k * B + b]));
      const L = P + n - 1;
      const tokens = Int32Array.from({ length: L }, (_, i) => i < P ? textIds[i] : chosen[(i - P) * B + b]);
      const { mask, positionIds } = coglmInputsRef(L, txtLen);
      const hidden = transformerForwardRef(cpu, cpuConfig(dims), {
        tokens,
        positionIds,
        mask,
        logWeights: logWeightsRef(L, L, txtLen, 1.4),
      });
      const all = logitsRef(cpu, hidden, L, IMAGE_TOKENS);
      for (let k = 0; k < n; k++) {
        const row = P - 1 + k;
        // Step 0's logits come from the prompt (row 0, broadcast by the sampler); later steps from row b.
        const got = seen[0].subarray(
          (k * B + (k === 0 ? 0 : b)) * IMAGE_TOKENS,
          (k * B + (k === 0 ? 0 : b) + 1) * IMAGE_TOKENS,
        );
        assertClose(`step ${k} row ${b}`, got, all.subarray(row * IMAGE_TOKENS, (row + 1) * IMAGE_TOKENS), {
          atol: kv === "f16" ? 1e-2 : 1e-3,
          rtol: 1e-4,
        });
      }
    }
    rec.release();
    m.release();
  });
}

Deno.test("CogLM generate (greedy) is the CPU greedy continuation, same for every batch row; cancellation", async () => {
  const dims = DIMS[0];
  const { m, cpu } = await model(dims, "f16");
  const P = 5, txtLen = P - 1, n = 7;
  const textIds = Int32Array.from([260, 281, 299, 270, 300]);
  const steps: number[] = [];
  const out = await m.generate({
    textIds,
    batch: 2,
    seed: 0,
    recipe: { attn_plus: 1.4 },
    numTokens: n,
    onStep: (s) => steps.push(s),
  });
  const want = greedyContinuationRef(cpu, dims, textIds, { txtLen, n, imageTokens: IMAGE_TOKENS });
  assert.deepEqual([...out[0]], want);
  assert.deepEqual([...out[1]], want);
  assert.equal(steps[steps.length - 1], n);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    () =>
      m.generate({ textIds, batch: 2, seed: 0, recipe: { attn_plus: 1.4 }, numTokens: n, signal: ac.signal }),
    {
      name: "AbortError",
    },
  );
  m.release();
});

Deno.test("CogLM perplexity is the original's mean caption log-probability", async () => {
  const dims = DIMS[0];
  const { m, cpu } = await model(dims, "f32");
  const r = rng(5);
  const nImg = 9, caption = Int32Array.from([301, 262, 290, 275]);
  const samples = [0, 1, 2].map(() =>
    Int32Array.from({ length: nImg }, () => Math.floor(r() * IMAGE_TOKENS))
  );
  const got = await m.perplexity(samples, caption);
  for (const [b, s] of samples.entries()) {
    const want = coglmPerplexityRef(cpu, cpuConfig(dims), s, caption, dims.vocab);
    assert.ok(Math.abs(got[b] - want) < 1e-4, `sample ${b}: ${got[b]} vs ${want}`);
  }
  m.release();
});

// KV cache in f32 (the cache mechanics, exact to the f32 tolerance) and in f16 (the default: K/V rounded to f16,
// relative 4.9e-4 per element; measured up to 3.2e-3 on these O(3) logits, tolerance 1e-2).
for (const kv of ["f32", "f16"] as const) {
  Deno.test(`CogLM fill (completion layout: per-row prefix mask, provided tokens inside the filled part) matches full forwards (KV cache ${kv})`, async () => {
    const dims = DIMS[0];
    const { ctx, m, cpu } = await model(dims, "f32");
    m.kvDtype = kv;
    await assertFillMatchesCpu(ctx, m, cpu, dims, { imageTokens: IMAGE_TOKENS, kv });
    m.release();
  });
}
