// Host syncs (ctx.stats.hostSyncs: awaited onSubmittedWorkDone / mapAsync) of the GPU-resident stages: CogLM awaits
// the GPU at most once per CogLM.SYNC_INTERVAL steps plus the final token read; DSR and each LoPAR round once.
import assert from "node:assert/strict";
import { CogLM } from "../../src/models/coglm.ts";
import { clusterTable } from "../../src/models/sampling.ts";
import {
  loadTransformer,
  syntheticTransformerSource,
  type TransformerDims,
} from "../../src/models/transformer.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { sharedContext } from "../_util.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import { fixtureModelDir, golden } from "./_sr_fixture.ts";

const DIMS: TransformerDims = {
  numLayers: 2,
  hidden: 32,
  heads: 2,
  headDim: 16,
  inner: 64,
  vocab: 300,
  maxSeq: 1024,
  eps: 1e-5,
  order: "sandwich",
};

Deno.test("CogLM generate: 400 tokens with at most 20 host syncs; same tokens as a 1-step sync interval", async () => {
  const ctx = await sharedContext();
  const src = syntheticTransformerSource(DIMS, { seed: 5, dtype: "f16" });
  const m = CogLM.fromWeights(ctx, DIMS, await loadTransformer(ctx, src, DIMS), 257);
  const textIds = Int32Array.from([260, 281, 299, 270, 290, 300]);
  const gen = () => m.generate({ textIds, batch: 2, seed: 0, recipe: { attn_plus: 1.4 }, numTokens: 400 });
  try {
    await ctx.sync();
    const s0 = ctx.stats.hostSyncs;
    const out = await gen();
    const syncs = ctx.stats.hostSyncs - s0;
    assert.ok(syncs <= 20, `${syncs} host syncs for 400 tokens (at most 20)`);
    assert.ok(syncs >= 2, `${syncs} host syncs: the queue must stay bounded`);
    // Waiting after every step must not change the result.
    const saved = CogLM.SYNC_INTERVAL;
    CogLM.SYNC_INTERVAL = 1;
    try {
      const s1 = ctx.stats.hostSyncs;
      const ref = await gen();
      assert.equal(ctx.stats.hostSyncs - s1, 400, "interval 1: one sync per step");
      assert.deepEqual(out, ref);
    } finally {
      CogLM.SYNC_INTERVAL = saved;
    }
  } finally {
    m.release();
  }
});

Deno.test("CogLM generate: decode steps reuse their bind groups (none created after the first steps), cluster sampler", async () => {
  const ctx = await sharedContext();
  const src = syntheticTransformerSource(DIMS, { seed: 6, dtype: "f16" });
  const labels = Int32Array.from({ length: 257 }, (_, i) => (i * 7) % 13);
  const m = CogLM.fromWeights(
    ctx,
    DIMS,
    await loadTransformer(ctx, src, DIMS),
    257,
    clusterTable(ctx, labels, 13),
  );
  const at: number[] = [];
  try {
    await m.generate({
      textIds: Int32Array.from([260, 281, 299, 270, 290, 300]),
      batch: 2,
      seed: 0,
      recipe: { attn_plus: 1.4, temperature: 1.05, topk: 5, top_k_cluster: 1 },
      numTokens: 30,
      onStep: (step) => at[step] = ctx.stats.bindGroups,
    });
    // at[s]: bind groups created before step s is recorded (onStep(30) follows the final read). The sampler's pooled
    // temporaries share a size class here, so the pool hands them out in a cycle of 3 orders: steps 1-3 create
    // their bind groups, later steps none.
    assert.ok(at[2] > at[1], "the first steps create their bind groups");
    assert.equal(at[29] - at[4], 0, `bind groups created by decode steps 4..28: ${at[29] - at[4]}`);
  } finally {
    await m.release();
  }
});

Deno.test("DSR: one host sync per call; LoPAR: one per round — also with the batch in chunks (3 images: maxBatch 2; maxBatch 4 at a 1 MiB binding), same codes as one chunk", async () => {
  const ctx = await sharedContext();
  const text = Int32Array.from(await golden("dsr_forward.text_ids"));
  const low = Int32Array.from(await golden("dsr_forward.lowres_tokens"));
  const low2 = low.map((v, i) => (v + 7 * i) % 20000); // a second image, so the chunks differ
  const itText = Int32Array.from(await golden("itersr_lopar_greedy.text_ids"));
  const run = async (maxBatch: number, c = ctx) => {
    const sr = await SuperResolution.load(c, await fixtureModelDir(), { maxBatch });
    try {
      await c.sync();
      let s0 = c.stats.hostSyncs;
      const hi = await sr.directSr({ textIds: text, lowres: [low, low2, low], seed: 7 });
      assert.equal(c.stats.hostSyncs - s0, 1, `DSR host syncs (maxBatch ${maxBatch})`);
      s0 = c.stats.hostSyncs;
      const it = await sr.iterativeSr({ textIds: itText, highres: hi, seed: 3 });
      assert.equal(c.stats.hostSyncs - s0, 6, `LoPAR: 6 rounds, one host sync each (maxBatch ${maxBatch})`);
      return { hi, it };
    } finally {
      sr.release();
    }
  };
  // At a 1 MiB binding one tiny SR sequence's hidden states (4096 × 64 f32) take the whole binding: the chunks
  // shrink to one image whatever maxBatch says (before, the embedding of a 3-image chunk exceeded the binding).
  const small = new GpuContext({
    ...ctx.gpu,
    limits: { ...ctx.gpu.limits, maxStorageBufferBindingSize: 1 << 20 },
  });
  const two = await run(2), one = await run(3), limited = await run(4, small);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(two.hi[i], one.hi[i], `DSR image ${i}: chunking changed the codes`);
    assert.deepEqual(two.it[i], one.it[i], `LoPAR image ${i}: chunking changed the codes`);
    assert.deepEqual(limited.hi[i], one.hi[i], `DSR image ${i}: codes at a 1 MiB binding`);
    assert.deepEqual(limited.it[i], one.it[i], `LoPAR image ${i}: codes at a 1 MiB binding`);
  }
});

Deno.test("CogLM generate on the GPU schedules: one submit per decode step whatever the depth (no per-layer submits)", async () => {
  const shared = await sharedContext();
  // The same device with the kernels a GPU adapter gets (CPU adapters' windows matmul submits per weight matmul).
  const ctx = shared.withGpuSchedules();
  for (const numLayers of [1, 3]) {
    const dims = { ...DIMS, numLayers };
    const src = syntheticTransformerSource(dims, { seed: 5, dtype: "f16" });
    const m = CogLM.fromWeights(ctx, dims, await loadTransformer(ctx, src, dims), 257);
    const textIds = Int32Array.from([260, 281, 299, 270, 290, 300]);
    const gen = (n: number) =>
      m.generate({ textIds, batch: 2, seed: 0, recipe: { attn_plus: 1.4 }, numTokens: n });
    try {
      await gen(2);
      const s0 = { ...ctx.stats };
      await gen(41);
      const submits = ctx.stats.submits - s0.submits;
      // 40 decode steps + the prompt pass + fences and the token read.
      assert.ok(submits <= 44, `${submits} submits for 40 steps at ${numLayers} layers`);
      assert.ok(ctx.stats.dispatches - s0.dispatches > 40 * numLayers * 5, "the layers did run");
    } finally {
      m.release();
    }
  }
});
