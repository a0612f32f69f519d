// CogLM (stage 1) benchmarks: generation time (default recipe, cluster sampling) and tokens/s at batch 1, 4, 8 on the test fixture's tiny CogLM and a
// synthetic medium config (12 layers × 768, random f16 weights); a per-kernel GPU breakdown (timestamp queries) and
// the share of wall time spent outside the GPU (JS, submits, readbacks); fused decode attention vs the matmul path.
// Not a quality check (conformance covers correctness); shared machines give noisy numbers.

import type { GpuContext } from "../../src/gpu/context.ts";
import { CogLM } from "../../src/models/coglm.ts";
import {
  loadTransformer,
  syntheticTransformerSource,
  type TransformerDims,
} from "../../src/models/transformer.ts";
import { attention } from "../../src/kernels/attention.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { softmax } from "../../src/kernels/softmax.ts";
import { clusterTable } from "../../src/models/sampling.ts";
import { getRecipe } from "../../src/sampling/recipes.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";

const FIXTURE = new URL("../../tests/testdata/cogview2-tiny", import.meta.url).pathname;

/** 12 layers × 768 (GPT-2 small sized), CogLM's vocabulary layout (20000 image tokens first). */
export const MEDIUM: TransformerDims = {
  numLayers: 12,
  hidden: 768,
  heads: 12,
  headDim: 64,
  inner: 3072,
  vocab: 26008,
  maxSeq: 1024,
  eps: 1e-5,
  order: "sandwich",
};

// "一只可爱的猫 高清摄影 隔绝<start_of_image>"-sized prompt (10 ids, the last <start_of_image>).
const TEXT = Int32Array.from([21371, 20392, 23869, 20021, 22697, 24346, 20100, 20200, 20300, 26001]);

async function tinyModel(ctx: GpuContext, model?: string): Promise<CogLM> {
  if (model) {
    const m = await CogLM.load(ctx, model);
    await m.clusters();
    return m;
  }
  const { convertFixtureSet } = await import("../../src/convert/fixture.ts");
  const tmp = await Deno.makeTempDir({ prefix: "cogview2-bench-" });
  try {
    await convertFixtureSet(FIXTURE, `${tmp}/model`);
    const m = await CogLM.load(ctx, `${tmp}/model`);
    await m.clusters(); // read before the directory goes
    return m;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function mediumModel(ctx: GpuContext): Promise<CogLM> {
  const src = syntheticTransformerSource(MEDIUM, { seed: 7, dtype: "f16" });
  // 500 clusters of the 20000 image tokens, as cluster_label.npy (labels are arbitrary for timing).
  const labels = Int32Array.from({ length: 20000 }, (_, i) => (i * 7919) % 500);
  return CogLM.fromWeights(
    ctx,
    MEDIUM,
    await loadTransformer(ctx, src, MEDIUM),
    20000,
    clusterTable(ctx, labels, 500),
  );
}

async function benchModel(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  name: string,
  m: CogLM,
  o: { tokens: number; batches: number[]; profileBatch: number },
): Promise<void> {
  // The default style's recipe: CoglmStrategy cluster sampling on the GPU, as the pipeline runs it.
  const gen = (batch: number) =>
    m.generate({ textIds: TEXT, batch, seed: 1, recipe: getRecipe("mainbody"), numTokens: o.tokens });
  // Warm-up: creates every pipeline (reported apart: on Dawn/Mesa 25 a cold shader compile takes tens of seconds).
  const w0 = { ...ctx.stats }, tw = performance.now();
  await gen(1);
  const wparams = {
    model: name,
    batch: 1,
    tokens: o.tokens,
    layers: m.dims.numLayers,
    hidden: m.dims.hidden,
  };
  report({ name: "coglm_warmup_ms", params: wparams, value: performance.now() - tw, unit: "ms" });
  report({
    name: "coglm_warmup_pipelines",
    params: wparams,
    value: ctx.stats.pipelines - w0.pipelines,
    unit: "",
  });
  report({
    name: "coglm_warmup_compile_ms",
    params: wparams,
    value: ctx.stats.compileMs - w0.compileMs,
    unit: "ms",
  });
  for (const batch of o.batches) {
    const s0 = { ...ctx.stats };
    const t0 = performance.now();
    await gen(batch);
    const ms = performance.now() - t0;
    const params = { model: name, batch, tokens: o.tokens, layers: m.dims.numLayers, hidden: m.dims.hidden };
    report({ name: "coglm_generate_ms", params, value: ms, unit: "ms" });
    report({ name: "coglm_tokens_per_s", params, value: (batch * o.tokens) / (ms / 1000), unit: "tokens/s" });
    report({ name: "coglm_step_ms", params, value: ms / o.tokens, unit: "ms/step" });
    report({
      name: "coglm_dispatches_per_step",
      params,
      value: (ctx.stats.dispatches - s0.dispatches) / o.tokens,
      unit: "dispatches",
    });
  }
  // Per-kernel GPU time (each dispatch in its own timestamped pass, so the run itself is slower).
  const b = o.profileBatch;
  if (!ctx.startProfile()) {
    report({
      name: "coglm_profile",
      params: { model: name, note: "adapter has no timestamp queries" },
      value: 0,
      unit: "",
    });
    return;
  }
  const tp = performance.now();
  await gen(b);
  const profiledWall = performance.now() - tp;
  const kernels = await ctx.stopProfile();
  const gpu = kernels.reduce((s, k) => s + k.ms, 0);
  for (const k of kernels) {
    report({
      name: "coglm_kernel_ms",
      params: { model: name, batch: b, tokens: o.tokens, kernel: k.name, dispatches: k.dispatches },
      value: k.ms,
      unit: "ms",
    });
  }
  report({
    name: "coglm_gpu_ms",
    params: { model: name, batch: b, tokens: o.tokens },
    value: gpu,
    unit: "ms",
  });
  report({
    name: "coglm_outside_gpu_share",
    params: { model: name, batch: b, tokens: o.tokens, note: "1 - GPU time / wall time of the profiled run" },
    value: Math.max(0, 1 - gpu / profiledWall),
    unit: "fraction",
    baseline: "coglm_generate_ms",
  });
}

/** One decode step's attention for all layers' worth of heads: fused kernel vs matmul → softmax → matmul. */
export async function benchDecodeAttention(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  o: { batch: number; keys: number; reps: number },
): Promise<void> {
  const { hidden: H, heads, headDim: d } = MEDIUM;
  const B = o.batch, T = o.keys, maxLen = T + 1;
  const qkv = ctx.upload(new Float32Array(B * 3 * H).fill(0.01), [B, 3 * H]);
  const kc = ctx.upload(new Float32Array(B * maxLen * H).fill(0.02), [B, maxLen, H]);
  const vc = ctx.upload(new Float32Array(B * maxLen * H).fill(0.03), [B, maxLen, H]);
  const out = ctx.empty([B, H]);
  const scores = ctx.empty([B * heads, T]), probs = ctx.empty([B * heads, T]);
  const logw = ctx.upload(Float32Array.from({ length: T }, (_, j) => j < 9 ? 1.4 : 0), [1, T]);
  const fused = () =>
    attention(ctx, {
      batch: B,
      heads,
      headDim: d,
      rows: 1,
      keys: T,
      q: { t: qkv, ld: 3 * H, bs: 3 * H },
      k: { t: kc, ld: H, bs: maxLen * H },
      v: { t: vc, ld: H, bs: maxLen * H },
      out: { t: out, ld: H, bs: H },
      logWeights: { cols: 9, value: 1.4 },
    });
  const viaMatmul = () => {
    for (let b = 0; b < B; b++) {
      matmul(ctx, qkv, kc, {
        M: 1,
        N: T,
        K: d,
        batch: heads,
        aOff: b * 3 * H,
        aBatchStride: d,
        ldw: H,
        wOff: b * maxLen * H,
        wBatchStride: d,
        ldc: T,
        cOff: b * heads * T,
        cBatchStride: T,
        alpha: 1 / Math.sqrt(d),
        out: scores,
      });
    }
    softmax(ctx, scores, { n: T, rows: B * heads, add: logw, out: probs });
    for (let b = 0; b < B; b++) {
      matmul(ctx, probs, vc, {
        M: 1,
        N: d,
        K: T,
        transW: false,
        batch: heads,
        aOff: b * heads * T,
        aBatchStride: T,
        ldw: H,
        wOff: b * maxLen * H,
        wBatchStride: d,
        cOff: b * H,
        ldc: H,
        cBatchStride: d,
        out,
      });
    }
  };
  for (const [name, fn] of [["fused", fused], ["matmul_softmax_matmul", viaMatmul]] as const) {
    fn();
    await ctx.sync();
    const t0 = performance.now();
    for (let r = 0; r < o.reps; r++) fn();
    await ctx.sync();
    report({
      name: "coglm_decode_attention_ms",
      params: { path: name, batch: B, keys: T, heads, head_dim: d },
      value: (performance.now() - t0) / o.reps,
      unit: "ms/layer",
      baseline: name === "fused" ? undefined : "fused",
    });
  }
  [qkv, kc, vc, out, scores, probs, logw].forEach((t) => t.release());
}

/** A prompt / perplexity forward's attention (rows = keys, CogLM mask): fused kernel vs the matmul path. */
export async function benchPrefillAttention(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  o: { batch: number; rows: number; reps: number },
): Promise<void> {
  const { hidden: H, heads, headDim: d } = MEDIUM;
  const B = o.batch, L = o.rows;
  const qkv = ctx.upload(new Float32Array(B * L * 3 * H).map((_, i) => Math.sin(i)), [B * L, 3 * H]);
  const out = ctx.empty([B * L, H]);
  const run = (path: "fused" | "matmul") =>
    attention(ctx, {
      path,
      batch: B,
      heads,
      headDim: d,
      rows: L,
      keys: L,
      q: { t: qkv, ld: 3 * H, bs: L * 3 * H },
      k: { t: qkv, off: H, ld: 3 * H, bs: L * 3 * H },
      v: { t: qkv, off: 2 * H, ld: 3 * H, bs: L * 3 * H },
      out: { t: out, ld: H, bs: L * H },
      mask: { ctxCols: Math.min(9, L), causalOffset: 0 },
      logWeights: { cols: Math.min(9, L), value: 1.4 },
    });
  for (const path of ["fused", "matmul"] as const) {
    run(path);
    await ctx.sync();
    const t0 = performance.now();
    for (let r = 0; r < o.reps; r++) run(path);
    await ctx.sync();
    report({
      name: "coglm_prefill_attention_ms",
      params: { path, batch: B, rows: L, heads, head_dim: d },
      value: (performance.now() - t0) / o.reps,
      unit: "ms/layer",
      baseline: path === "fused" ? undefined : "fused",
    });
  }
  [qkv, out].forEach((t) => t.release());
}

export const coglmSuite: BenchSuite = {
  name: "coglm",
  description:
    "CogLM generation: ms, tokens/s at batch 1/4/8 (tiny fixture, synthetic 12×768), per-kernel GPU time",
  async run(ctx, report, { quick, model }) {
    const tiny = await tinyModel(ctx, model);
    try {
      await benchModel(ctx, report, model ? "converted" : "tiny-fixture", tiny, {
        tokens: quick ? 12 : 400,
        batches: [1, 4, 8],
        profileBatch: 4,
      });
    } finally {
      tiny.release();
    }
    for (const [batch, keys] of quick ? [[1, 111]] : [[1, 111], [8, 111], [1, 511], [8, 511]]) {
      await benchDecodeAttention(ctx, report, { batch, keys, reps: quick ? 3 : 10 });
    }
    for (const [batch, rows] of quick ? [[1, 111]] : [[1, 111], [1, 406], [3, 406]]) {
      await benchPrefillAttention(ctx, report, { batch, rows, reps: quick ? 1 : 3 });
    }
    const medium = await mediumModel(ctx);
    try {
      await benchModel(ctx, report, "synthetic-12x768", medium, {
        tokens: quick ? 2 : 32,
        batches: quick ? [1] : [1, 4, 8],
        profileBatch: quick ? 1 : 4,
      });
    } finally {
      medium.release();
    }
  },
};
