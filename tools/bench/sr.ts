// Super-resolution benchmarks: ms per DSR forward (transformer only), per DSR step (forward + 3600 logits rows +
// cluster sampling) and per LoPAR round, at batch 1 and 4, on the tiny fixture model and a synthetic medium config
// (random f16 weights), plus the peak GPU pool bytes of each stage (ctx.resetPeak / ctx.peakBytes).
// Not a quality check (the conformance kinds dsr_* / itersr_* cover correctness); shared machines give noisy numbers.
import { join } from "node:path";
import type { GpuContext } from "../../src/gpu/context.ts";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import type { SrConfig } from "../../src/models/config.ts";
import { dsrInput, dsrMask, itersrInput, itersrMask } from "../../src/geometry/sr.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { satTransformerShapes } from "../../src/models/transformer.ts";
import { memoryWeightSource } from "../../src/reference/sr.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";

const FIXTURE = new URL("../../tests/testdata/cogview2-tiny", import.meta.url).pathname;

interface Dims {
  layers: number;
  hidden: number;
  heads: number;
}
/** The medium config on a real GPU (CogLM bench's 12×768) and a lighter one on CPU adapters (lavapipe). */
export const MEDIUM_GPU: Dims = { layers: 12, hidden: 768, heads: 12 };
export const MEDIUM_CPU: Dims = { layers: 4, hidden: 256, heads: 8 };

/** Deterministic values in [-a, a) (only speed matters; kept small so LayerNorm inputs stay tame). */
function filler(n: number, seed: number, a: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 * 2 - 1) * a;
  }
  return out;
}

function srConfig(d: Dims, layout: number[], cls: string): SrConfig {
  return {
    file: "memory",
    model_class: cls,
    num_layers: d.layers,
    hidden_size: d.hidden,
    num_attention_heads: d.heads,
    vocab_size: 20100,
    max_sequence_length: 1024,
    inner_hidden_size: 4 * d.hidden,
    layernorm_order: "sandwich",
    layernorm_epsilon: 1e-5,
    layout,
    kernel_size: 5,
    kernel_size2: 5,
    new_sequence_length: 4624,
  };
}

/** Random SAT-named weights of a DsrModel (plus = attention_plus) or ItersrModel. */
function syntheticWeights(d: Dims, plus: boolean, seed: number) {
  const H = d.hidden, m = new Map<string, { shape: number[]; data: Float32Array }>();
  const shapes = satTransformerShapes({
    numLayers: d.layers,
    hidden: H,
    heads: d.heads,
    headDim: H / d.heads,
    inner: 4 * H,
    vocab: 20100,
    maxSeq: 1024,
    eps: 1e-5,
    order: "sandwich",
  }, { plus, extraPositions: 3600 });
  let k = seed;
  for (const [name, shape] of shapes) {
    // Embeddings 0.5 / 0.1, linear weights 1/√K, biases 0.01, layer-norm gains 1 ± 0.1.
    const gain = /layernorm\.weight$/.test(name);
    const a = name === "transformer.word_embeddings.weight"
      ? 0.5
      : /position_embeddings/.test(name)
      ? 0.1
      : name.endsWith(".bias")
      ? 0.01
      : gain
      ? 0.1
      : 1 / Math.sqrt(shape[1]);
    const data = filler(shape.reduce((x, y) => x * y, 1), k++, a);
    if (gain) { for (let i = 0; i < data.length; i++) data[i] += 1; }
    m.set(name, { shape, data });
  }
  return memoryWeightSource(plus ? "synthetic-dsr" : "synthetic-itersr", m, "f16");
}

export async function syntheticSr(ctx: GpuContext, d: Dims): Promise<SuperResolution> {
  const dsrW = syntheticWeights(d, true, 11), itW = syntheticWeights(d, false, 911);
  const labels = Int32Array.from({ length: 20000 }, (_, i) => (i * 7919) % 500);
  return await SuperResolution.fromSources(ctx, {
    dsr: srConfig(d, [96, 496, 4096], "DsrModel"),
    itersr: srConfig(d, [16, 3616], "ItersrModel"),
    imageTokens: 20000,
    boi: 20100 - 1,
    numClusters: 500,
    weights: (name) => Promise.resolve(name === "dsr" ? dsrW : itW),
    clusterLabels: () => Promise.resolve(labels),
  });
}

async function median(n: number, f: () => Promise<void>): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

export async function benchModel(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  name: string,
  sr: SuperResolution,
  batches: number[],
  o: { steps: boolean; iters: number },
): Promise<void> {
  const text = Int32Array.from({ length: 9 }, (_, i) => 20000 + 17 * i);
  const low = Int32Array.from({ length: 400 }, (_, i) => (i * 37) % 20000);
  const high = Int32Array.from({ length: 3600 }, (_, i) => (i * 53) % 20000);
  const dsr = await sr.dsrModel();
  const dcfg = dsr.cfg;
  for (const B of batches) {
    // DSR forward (transformer only, up to the final LayerNorm).
    const inp = dsrInput(dcfg, text, low, sr.boi);
    const tok = new Int32Array(B * inp.tokens.length), pos = new Int32Array(B * inp.tokens.length);
    for (let b = 0; b < B; b++) {
      tok.set(inp.tokens, b * inp.tokens.length);
      pos.set(inp.positionIds, b * inp.tokens.length);
    }
    const mask = dsrMask(dcfg, inp.nPad);
    await ctx.sync();
    ctx.resetPeak();
    const fwd = async () => {
      const h = dsr.forward(tok, pos, B, mask);
      await ctx.sync();
      h.release();
    };
    const w0 = { ...ctx.stats }, tw = performance.now();
    await fwd(); // warm-up: pipeline creation (reported apart from the steady-state median)
    report({
      name: "dsr_forward_warmup",
      params: { model: name, batch: B },
      value: performance.now() - tw,
      unit: "ms",
    });
    report({
      name: "dsr_forward_warmup_compile",
      params: { model: name, batch: B, pipelines: ctx.stats.pipelines - w0.pipelines },
      value: ctx.stats.compileMs - w0.compileMs,
      unit: "ms",
    });
    const ms = await median(o.iters, fwd);
    report({ name: "dsr_forward", params: { model: name, batch: B }, value: ms, unit: "ms" });
    report({
      name: "dsr_forward_peak",
      params: { model: name, batch: B },
      value: ctx.peakBytes / 2 ** 20,
      unit: "MiB",
    });
    if (!o.steps) continue;
    // Full DSR step: forward + logits of the 3600 high-res rows + cluster sampling, per call.
    const lows = Array.from({ length: B }, () => low);
    const highs = Array.from({ length: B }, () => high);
    if (B === batches[0]) {
      // Warm-up of the step kernels (logits, sampling, LoPAR), reported apart like the forward's.
      const w1 = { ...ctx.stats }, t1 = performance.now();
      await sr.directSr({ textIds: text, lowres: lows, seed: 1 });
      await sr.iterativeSr({ textIds: text, highres: highs, seed: 1 });
      report({
        name: "sr_steps_warmup",
        params: { model: name, batch: B, pipelines: ctx.stats.pipelines - w1.pipelines },
        value: performance.now() - t1,
        unit: "ms",
      });
    }
    const stepMs = await median(
      1,
      async () => void await sr.directSr({ textIds: text, lowres: lows, seed: 1 }),
    );
    report({ name: "dsr_step", params: { model: name, batch: B }, value: stepMs, unit: "ms" });
    report({
      name: "dsr_step_peak",
      params: { model: name, batch: B },
      value: sr.lastPeakBytes / 2 ** 20,
      unit: "MiB",
    });
    // LoPAR: six rounds; ms per round = the call / 6.
    const roundMs = await median(1, async () =>
      void await sr.iterativeSr({ textIds: text, highres: highs, seed: 1 })) / 6;
    report({ name: "lopar_round", params: { model: name, batch: B }, value: roundMs, unit: "ms" });
    report({
      name: "lopar_peak",
      params: { model: name, batch: B },
      value: sr.lastPeakBytes / 2 ** 20,
      unit: "MiB",
    });
  }
  // iterative-SR forward alone at batch 1, for comparison with the DSR forward.
  const it = await sr.itersrModel();
  const ii = itersrInput(it.cfg, text, high);
  const imask = itersrMask(it.cfg, ii.nPad);
  const ifwd = async () => {
    const h = it.forward(ii.tokens, ii.positionIds, 1, imask, new Float32Array(16));
    await ctx.sync();
    h.release();
  };
  await ifwd();
  report({
    name: "itersr_forward",
    params: { model: name, batch: 1 },
    value: await median(o.iters, ifwd),
    unit: "ms",
  });
}

export const srSuite: BenchSuite = {
  name: "sr",
  description:
    "DSR forward/step and LoPAR round ms at batch 1 and 4 (tiny fixture, synthetic medium), peak GPU MiB; " +
    "warm-up (pipeline creation) apart; --quick: tiny model forwards only",
  async run(ctx, report, { quick, model }) {
    const tmp = await Deno.makeTempDir({ prefix: "bench-sr-" });
    try {
      const dir = model ?? join(tmp, "model");
      if (!model) await convertFixtureSet(FIXTURE, dir);
      const tiny = await SuperResolution.load(ctx, dir);
      try {
        await benchModel(ctx, report, model ? "converted" : "tiny", tiny, [1, 4], {
          steps: !quick,
          iters: quick ? 1 : 3,
        });
      } finally {
        tiny.release();
      }
      const dims = ctx.gpu.isFallback ? MEDIUM_CPU : MEDIUM_GPU;
      if (quick && ctx.gpu.isFallback) return; // the medium model takes minutes on a CPU adapter
      const medium = await syntheticSr(ctx, dims);
      try {
        await benchModel(
          ctx,
          report,
          `synthetic-${dims.layers}x${dims.hidden}`,
          medium,
          quick ? [1] : [1, 4],
          {
            steps: !quick,
            iters: quick ? 1 : 3,
          },
        );
      } finally {
        medium.release();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      ctx.trim();
    }
  },
};
