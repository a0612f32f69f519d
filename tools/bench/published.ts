// `deno task bench --shape published`: the published CogView2 architecture built directly in GPU memory with seeded
// random weights made by a kernel (src/models/random_weights.ts: nothing read or uploaded but small tables), run by
// the same stage code as `serve`: CogLM generation with the recipe's cluster sampler, DSR, six LoPAR rounds, VQ-VAE
// decode at 480×480. Per stage: wall and GPU seconds (timestamp queries per compute pass where the adapter has
// them), analytic FLOPs and bytes, TFLOP/s, GB/s, fraction of the adapter's peak, submits, host syncs, peak GPU
// memory, and the roofline lower bound. Not a quality check: the weights are random.
//
// Shapes: CogLM 48 layers × 3072 hidden × 48 heads (MLP 12288), vocabulary 150010 (the first 20000 rows are the image
// tokens); DSR and iterative SR 2560 hidden × 40 heads (MLP 10240), the same vocabulary (their inputs hold text ids);
// VQ-VAE at icetk's widths (128 base channels, 256 hidden and code dim, 20000 codes). No source we have states the SR
// models' depth: SR_LAYERS_DEFAULT (printed with every run) is an assumption.

import type { GpuContext, KernelTiming } from "../../src/gpu/context.ts";
import type { SrConfig } from "../../src/models/config.ts";
import type { WeightSource } from "../../src/formats/weights.ts";
import { CogLM } from "../../src/models/coglm.ts";
import { loadTransformer, satTransformerShapes, type TransformerDims } from "../../src/models/transformer.ts";
import { randomWeightSource } from "../../src/models/random_weights.ts";
import { Vqvae } from "../../src/models/vqvae.ts";
import { LOPAR_ROUNDS, loparRoundMask } from "../../src/geometry/sr.ts";
import { clusterTable } from "../../src/models/sampling.ts";
import { getRecipe } from "../../src/sampling/recipes.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { ModelSlotHolder, ResidentModels } from "../../src/pipeline/residency.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import { attentionSplitFor, attentionWgOverride } from "../../src/kernels/attention.ts";
import { choices } from "../../src/kernels/choices.ts";
import { fillUniform } from "../../src/kernels/fill.ts";
import { icetkShapes } from "./vqvae.ts";
import type { BenchResult } from "./_types.ts";
import { median } from "./_timing.ts";

/** Depth of each SR transformer when --sr-layers is not given (an assumption: no source states it). */
export const SR_LAYERS_DEFAULT = 24;
const COGLM_LAYERS = 48;
const VOCAB = 150010;
const IMAGE_TOKENS = 20000;
/** `<start_of_image>`: a special id above icetk's 150000 pieces, inside the table. */
const BOI = 150001;
const SR_HIDDEN = 2560, SR_HEADS = 40;

export interface PublishedOptions {
  layers?: number;
  batch: number;
  srLayers?: number;
  tokens: number;
  /** Linear weights of the three transformers: f16 (default) or int8 (+ f32 group scales, convert --weights int8). */
  weights?: "f16" | "int8";
  /**
   * "stage" (default): a stage's models are on the GPU only while it runs (CogLM released before SR, DSR and
   * iterative SR swapped); "all": every model stays resident to the end.
   */
  residency?: "all" | "stage";
  /**
   * "coglm": stop after the CogLM stage (its memory and tokens/s without the long SR stages); "vqvae": the VQ-VAE
   * decode alone, of seeded pseudo-random 60×60 codes (no transformer is built); default "all".
   */
  stages?: "all" | "coglm" | "vqvae";
  /**
   * VQ-VAE decode grid (default 60: 480×480). Below 60 the stage runs at side×side codes and its 60×60 peak is
   * extrapolated (activations scale with the pixels), the formula printed: the full decode took minutes on lavapipe.
   */
  vqSide?: number;
  /** LoPAR rounds run (default all 6). The peak is round 1's (it re-predicts the most cells); seconds then cover fewer rounds. */
  loparRounds?: number;
  /**
   * Per-kernel GPU time per stage (--profile): every dispatch in its own timestamped pass (slower than the plain
   * run), kernels ranked by GPU ms with dispatch counts, share of the stage's GPU time and their workgroup grids.
   */
  profile?: boolean;
}

/** One kernel's GPU time in a stage, with its share of the stage's GPU time and its grids (largest first). */
export interface StageKernel {
  kernel: string;
  ms: number;
  dispatches: number;
  share: number;
  grids: { grid: string; ms: number; dispatches: number }[];
}

/** Aggregates a per-dispatch profile (per kernel and grid) into kernels, largest GPU time first. */
export function stageKernels(timings: KernelTiming[]): StageKernel[] {
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const by = new Map<string, StageKernel>();
  for (const t of timings) {
    const k = by.get(t.name) ?? { kernel: t.name, ms: 0, dispatches: 0, share: 0, grids: [] };
    k.ms += t.ms;
    k.dispatches += t.dispatches;
    if (t.grid !== undefined) {
      // One entry per grid (a grid recorded in several phases is summed).
      const g = k.grids.find((x) => x.grid === t.grid);
      if (g) g.ms += t.ms, g.dispatches += t.dispatches;
      else k.grids.push({ grid: t.grid, ms: t.ms, dispatches: t.dispatches });
    }
    by.set(t.name, k);
  }
  const out = [...by.values()].sort((a, b) => b.ms - a.ms);
  for (const k of out) {
    k.share = total > 0 ? k.ms / total : 0;
    k.grids.sort((a, b) => b.ms - a.ms);
  }
  return out;
}

/** One kernel × grid of a CogLM decode step (--profile): dispatches and GPU µs per step, per layer where it repeats. */
export interface StepKernel {
  kernel: string;
  grid: string;
  /** Dispatches per decode step. */
  perStep: number;
  /** Dispatches per layer when every layer runs it the same number of times (perStep a multiple of the layers). */
  perLayer: number | null;
  /** GPU µs per step and per dispatch. */
  usPerStep: number;
  usPerDispatch: number;
}

/**
 * The decode steps' dispatches (KernelTiming entries of phase "decode", by kernel and grid) over `steps` steps of a
 * `layers`-layer model, in recording order of a step: per-layer kernels first (largest GPU time first), then the
 * once-per-step ones.
 */
export function decodeStepKernels(timings: KernelTiming[], steps: number, layers: number): StepKernel[] {
  const by = new Map<string, StepKernel>();
  for (const t of timings) {
    if (t.phase !== "decode") continue;
    const grid = t.grid ?? "";
    const key = `${t.name}@${grid}`;
    const k = by.get(key) ??
      { kernel: t.name, grid, perStep: 0, perLayer: null, usPerStep: 0, usPerDispatch: 0 };
    k.perStep += t.dispatches;
    k.usPerStep += t.ms * 1000;
    by.set(key, k);
  }
  const out = [...by.values()];
  for (const k of out) {
    k.usPerDispatch = k.perStep > 0 ? k.usPerStep / k.perStep : 0;
    k.perStep /= steps;
    k.usPerStep /= steps;
    const pl = k.perStep / layers;
    k.perLayer = layers > 1 && Number.isInteger(pl) ? pl : null;
  }
  return out.sort((a, b) =>
    (a.perLayer === null ? 1 : 0) - (b.perLayer === null ? 1 : 0) || b.usPerStep - a.usPerStep
  );
}

/**
 * The host's time per decode step: the median gap between the starts of consecutive steps (stepAt[s], s >= 1), leaving
 * out the steps that begin with a host sync (every `syncInterval`-th) and the last gap (the final read): what recording
 * and submitting one step costs the host while the GPU runs behind it. Null with fewer than 2 such gaps.
 */
export function hostStepMs(stepAt: number[], syncInterval: number): number | null {
  const gaps: number[] = [];
  for (let s = 2; s < stepAt.length - 1; s++) {
    if (s % syncInterval === 0 || stepAt[s] === undefined || stepAt[s - 1] === undefined) continue;
    gaps.push(stepAt[s] - stepAt[s - 1]);
  }
  return gaps.length < 2 ? null : median(gaps);
}

/** Pool bytes of one transformer layer's tensors as loaded (layer 0 of `src`, the pool's size classes). */
function layerBytes(ctx: GpuContext, src: WeightSource, prefix: string): number {
  return src.names().filter((n) => n.startsWith(prefix)).reduce((s, n) => {
    const i = src.info(n);
    return s + ctx.allocationBytes(i.shape, i.dtype as "f16" | "f32" | "i8");
  }, 0);
}

/** Vector (non-tensor-core) f32 peaks and memory bandwidth of GPUs self-hosters use (vendor datasheets). */
const PEAKS: { match: RegExp; name: string; tflops: number; gbps: number }[] = [
  { match: /H200/i, name: "H200 SXM", tflops: 67, gbps: 4800 },
  { match: /H100/i, name: "H100 SXM", tflops: 67, gbps: 3350 },
  { match: /A100/i, name: "A100 80GB SXM", tflops: 19.5, gbps: 2039 },
  { match: /L40S/i, name: "L40S", tflops: 91.6, gbps: 864 },
  { match: /\bL4\b/i, name: "L4", tflops: 30.3, gbps: 300 },
  { match: /4090/, name: "RTX 4090", tflops: 82.6, gbps: 1008 },
  { match: /Apple M/i, name: "Apple M-series (M2 Max figures)", tflops: 13.6, gbps: 400 },
];

interface Peak {
  name: string;
  tflops: number;
  gbps: number;
  source: string;
}

/** The adapter's peaks from the table, else measured here (best of a 1024³ weight matmul and a 64 MiB copy). */
async function adapterPeak(ctx: GpuContext): Promise<Peak> {
  const known = PEAKS.find((p) => p.match.test(ctx.gpu.name));
  if (known) return { ...known, source: "datasheet" };
  const n = 1024;
  const a = ctx.empty([n, n]), w = ctx.empty([n, n], "f16");
  fillUniform(ctx, a, { seed: 1, scale: 1, offset: 0 });
  fillUniform(ctx, w, { seed: 2, scale: 0.03, offset: 0 });
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    await ctx.sync();
    const t0 = performance.now();
    const c1 = matmul(ctx, a, w, { M: n, N: n, K: n, constantW: true });
    const c2 = matmul(ctx, a, w, { M: n, N: n, K: n, constantW: true });
    await ctx.sync();
    if (i) best = Math.min(best, (performance.now() - t0) / 2);
    c1.release(), c2.release();
  }
  const bytes = 64 * 2 ** 20;
  const x = ctx.empty([bytes / 4]), y = ctx.empty([bytes / 4]);
  let bestCopy = Infinity;
  for (let i = 0; i < 4; i++) {
    await ctx.sync();
    const t0 = performance.now();
    ctx.copy(x, y), ctx.copy(y, x);
    await ctx.sync();
    if (i) bestCopy = Math.min(bestCopy, (performance.now() - t0) / 2);
  }
  for (const t of [a, w, x, y]) t.release();
  return {
    name: ctx.gpu.name,
    tflops: 2 * n ** 3 / (best / 1000) / 1e12,
    gbps: 2 * bytes / (bestCopy / 1000) / 1e9,
    source: "measured here (1024³ f16-weight matmul, 64 MiB buffer copy)",
  };
}

function srConfig(layers: number, layout: number[], cls: string): SrConfig {
  return {
    file: "random",
    model_class: cls,
    num_layers: layers,
    hidden_size: SR_HIDDEN,
    num_attention_heads: SR_HEADS,
    vocab_size: VOCAB,
    max_sequence_length: 1024,
    inner_hidden_size: 4 * SR_HIDDEN,
    layernorm_order: "sandwich",
    layernorm_epsilon: 1e-5,
    layout,
    kernel_size: 5,
    kernel_size2: 5,
    new_sequence_length: 4624,
  };
}

/** Analytic work of one stage: FLOPs (2 per multiply-add) and a lower bound on bytes moved. */
interface Work {
  flops: number;
  bytes: number;
}

/** One CogLM generation: the prompt pass at batch 1, then n − 1 decode steps for the batch; f16 weights read once per step. */
export function coglmWork(
  d: TransformerDims,
  P: number,
  n: number,
  B: number,
  o: { weightBytes?: number; kvBytes?: number } = {},
): Work {
  const H = d.hidden, I = d.inner, l = d.numLayers;
  const layerParams = 4 * H * H + 2 * H * I;
  const wb = o.weightBytes ?? 2, kb = o.kvBytes ?? 4;
  const weightBytes = wb * l * layerParams, logitsBytes = 2 * IMAGE_TOKENS * H;
  let flops = P * l * 2 * layerParams + l * 4 * H * P * P + 2 * H * IMAGE_TOKENS;
  let bytes = weightBytes + logitsBytes;
  for (let k = 1; k < n; k++) {
    const t = P + k;
    flops += B * (l * (2 * layerParams + 4 * H * t) + 2 * H * IMAGE_TOKENS);
    // weights, K/V cache read, logits written and read by the sampler
    bytes += weightBytes + logitsBytes + B * l * 2 * t * H * kb + B * IMAGE_TOKENS * 4 * 3;
  }
  return { flops, bytes };
}

/** One SR transformer pass over B sequences of L rows, `plus` adding DSR's second QKV/dense, then `rows` logits rows. */
export function srWork(
  layers: number,
  L: number,
  B: number,
  keysPerRow: number,
  logitRows: number,
  plus: boolean,
): Work {
  const H = SR_HIDDEN, I = 4 * H;
  const layerFlops = 2 * L * (4 * H * H + 2 * H * I) + 4 * H * L * keysPerRow;
  const layerWeights = 2 * ((plus ? 8 : 4) * H * H + 2 * H * I);
  const layerActs = 4 * L * (8 * H + 2 * I) + 4 * 6 * L * H;
  return {
    flops: B * (layers * layerFlops + 2 * H * IMAGE_TOKENS * logitRows),
    bytes: layers * (layerWeights + B * layerActs) + 2 * IMAGE_TOKENS * H +
      B * logitRows * IMAGE_TOKENS * 4 * 3,
  };
}

interface StageResult {
  stage: "coglm" | "dsr" | "itersr" | "vqvae";
  wall: number;
  gpu: number | null;
  work: Work;
  submits: number;
  syncs: number;
  peak: number;
  /** --profile: the stage's kernels. */
  kernels?: StageKernel[];
  /** --profile, CogLM: the dispatches of phase "decode" (the timings as recorded). */
  timings?: KernelTiming[];
}

async function measure(
  ctx: GpuContext,
  stage: StageResult["stage"],
  work: Work,
  run: () => Promise<void>,
  profile = false,
): Promise<StageResult> {
  await ctx.sync();
  ctx.resetPeak();
  const s0 = { ...ctx.stats };
  // CPU adapters: no GPU seconds unless --profile asks. lavapipe's pass timestamps covered a fraction of the work (DSR
  // 14 s of 178 s wall at --layers 1) and, with a minutes-long VQ-VAE decode, the run ended in a wgpu queue timeout panic.
  const timed = profile
    ? ctx.startProfile({ perDispatch: true, byGrid: true })
    : !ctx.gpu.isFallback && ctx.startProfile({ perDispatch: false });
  const t0 = performance.now();
  await run();
  const wall = (performance.now() - t0) / 1000;
  const s1 = { ...ctx.stats };
  const peak = ctx.peakBytes;
  const timings = timed ? await ctx.stopProfile() : [];
  const gpu = timed ? timings.reduce((s, k) => s + k.ms, 0) / 1000 : null;
  return {
    ...(profile && timed ? { kernels: stageKernels(timings), timings } : {}),
    stage,
    wall,
    gpu,
    work,
    submits: s1.submits - s0.submits,
    syncs: s1.hostSyncs - s0.hostSyncs,
    peak,
  };
}

/** Builds the published-shape models (random weights on the GPU) and runs every stage once. */
export async function runPublished(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  log: (s: string) => void,
  o: PublishedOptions,
): Promise<void> {
  const B = o.batch;
  const layers = Math.min(o.layers ?? COGLM_LAYERS, COGLM_LAYERS);
  const srLayers = Math.min(o.srLayers ?? SR_LAYERS_DEFAULT, o.layers ?? Infinity);
  const n = o.tokens;
  const weights = o.weights ?? "f16", residency = o.residency ?? "stage";
  const vqSide = o.vqSide ?? 60, rounds = Math.min(o.loparRounds ?? LOPAR_ROUNDS, LOPAR_ROUNDS);
  const peak = await adapterPeak(ctx);
  log(
    `# published shapes: CogLM ${layers}×3072×48 heads (vocab ${VOCAB}), DSR/iterative SR ${srLayers}×${SR_HIDDEN}×${SR_HEADS} ` +
      `heads (SR depth ${o.srLayers ? "from --sr-layers" : `default ${SR_LAYERS_DEFAULT}, an assumption`}` +
      `${
        o.layers !== undefined ? `, capped by --layers ${o.layers}` : ""
      }), VQ-VAE at icetk widths; batch ${B}, ` +
      `${n} CogLM tokens; random ${
        weights === "int8" ? "int8 (linear, group 64) + f16" : "f16"
      } weights made on the GPU; residency ${residency}`,
  );
  log(
    `# peak: ${peak.name}: ${peak.tflops.toFixed(3)} TFLOP/s f32, ${
      peak.gbps.toFixed(1)
    } GB/s (${peak.source})`,
  );
  const pad = (s: string, w: number) => s.padStart(w);
  log(
    `${"stage".padEnd(7)}${pad("wall s", 9)}${pad("GPU s", 9)}${pad("GFLOP", 10)}${pad("GB", 8)}${
      pad("TFLOP/s", 9)
    }` +
      `${pad("GB/s", 8)}${pad("%roof", 7)}${pad("submits", 8)}${pad("syncs", 6)}${pad("peak GiB", 9)}`,
  );
  /** Prints and reports one stage as soon as it is measured (a run cut short by a timeout keeps its lines). */
  const emit = (r: StageResult) => {
    const tflops = r.work.flops / r.wall / 1e12, gbps = r.work.bytes / r.wall / 1e9;
    const roof = Math.max(r.work.flops / (peak.tflops * 1e12), r.work.bytes / (peak.gbps * 1e9));
    const frac = roof / r.wall; // the fraction of the roofline-limited rate achieved
    log(
      `${r.stage.padEnd(7)}${pad(r.wall.toFixed(2), 9)}${pad(r.gpu === null ? "n/a" : r.gpu.toFixed(2), 9)}` +
        `${pad((r.work.flops / 1e9).toFixed(1), 10)}${pad((r.work.bytes / 1e9).toFixed(2), 8)}${
          pad(tflops.toFixed(4), 9)
        }` +
        `${pad(gbps.toFixed(1), 8)}${pad((100 * frac).toFixed(2), 7)}${pad(String(r.submits), 8)}${
          pad(String(r.syncs), 6)
        }` +
        `${pad((r.peak / 2 ** 30).toFixed(2), 9)}  roofline lower bound ${roof.toFixed(3)} s vs measured ${
          r.wall.toFixed(2)
        } s`,
    );
    const params = {
      stage: r.stage,
      batch: B,
      layers,
      sr_layers: srLayers,
      tokens: n,
      weights,
      residency,
      ...(r.stage === "vqvae" && vqSide !== 60 ? { vq_side: vqSide } : {}),
      ...(r.stage === "itersr" && rounds < LOPAR_ROUNDS ? { lopar_rounds: rounds } : {}),
    };
    report({ name: "published_stage_seconds", params, value: r.wall, unit: "s" });
    if (r.gpu !== null) report({ name: "published_stage_gpu_seconds", params, value: r.gpu, unit: "s" });
    report({ name: "published_stage_tflops", params, value: tflops, unit: "TFLOP/s" });
    report({ name: "published_stage_gbps", params, value: gbps, unit: "GB/s" });
    report({ name: "published_stage_flops", params, value: r.work.flops, unit: "FLOP" });
    report({ name: "published_stage_bytes", params, value: r.work.bytes, unit: "B" });
    report({ name: "published_stage_peak_fraction", params, value: frac, unit: `of ${peak.name} roofline` });
    report({ name: "published_stage_roofline_seconds", params, value: roof, unit: "s" });
    report({ name: "published_stage_host_syncs", params, value: r.syncs, unit: "syncs" });
    report({ name: "published_stage_submits", params, value: r.submits, unit: "submits" });
    report({
      name: "published_peak_gpu_bytes",
      params: { stage: r.stage, batch: B, layers, weights, residency },
      value: r.peak,
      unit: "B",
    });
    // Full depth: the measured peak plus the missing layers of every model resident during the stage.
    const extra = residentDuring(r.stage).map((m) => ({ m, ...perLayer[m] }));
    const full = extra.reduce((s, e) => s + (e.full - e.have) * e.bytes, r.peak);
    fullPeaks.push(full);
    log(
      `#   ${r.stage} peak ${
        (r.peak / 2 ** 30).toFixed(3)
      } GiB at ${layers}/${srLayers} layers; full depth = peak` +
        extra.map((e) => ` + (${e.full} − ${e.have}) × ${(e.bytes / 2 ** 20).toFixed(1)} MiB/layer (${e.m})`)
          .join("") +
        ` = ${(full / 2 ** 30).toFixed(3)} GiB`,
    );
    if (r.kernels) emitKernels(log, report, r, { batch: B, layers, sr_layers: srLayers });
    if (r.timings && r.stage === "coglm") {
      emitDecodeStep(log, report, r.timings, { batch: B, layers, steps: n - 1 });
    } else if (o.profile) log(`#   ${r.stage}: --profile: this adapter has no timestamp queries`);
    if (r.stage === "coglm") {
      report({
        name: "published_coglm_tokens_per_s",
        params: { batch: B, layers, tokens: n, weights, residency },
        value: B * n / r.wall,
        unit: "tokens/s",
      });
    }
  };
  // Per-layer pool bytes of each model (filled in as they are built) and which models are resident in each stage.
  const perLayer: Record<"coglm" | "dsr" | "itersr", { bytes: number; have: number; full: number }> = {
    coglm: { bytes: 0, have: layers, full: COGLM_LAYERS },
    dsr: { bytes: 0, have: srLayers, full: o.srLayers ?? SR_LAYERS_DEFAULT },
    itersr: { bytes: 0, have: srLayers, full: o.srLayers ?? SR_LAYERS_DEFAULT },
  };
  const residentDuring = (stage: StageResult["stage"]): ("coglm" | "dsr" | "itersr")[] =>
    residency === "all"
      ? stage === "coglm" ? ["coglm"] : ["coglm", "dsr", "itersr"]
      : stage === "vqvae"
      ? []
      : [stage];
  const fullPeaks: number[] = [];
  const finish = (what: string) =>
    fullDepthReport(log, report, {
      what,
      fullPeaks,
      B,
      weights,
      residency,
      srFull: perLayer.dsr.full,
      measured: layers === COGLM_LAYERS && srLayers === perLayer.dsr.full,
      stages: o.stages ?? "all",
    });
  const recipe = getRecipe("mainbody");
  const text = Int32Array.from([21371, 20392, 23869, 20021, 22697, 24346, 20100, 20200, 20300, BOI]);

  // ---- CogLM
  const dims: TransformerDims = {
    numLayers: layers,
    hidden: 3072,
    heads: 48,
    headDim: 64,
    inner: 12288,
    vocab: VOCAB,
    maxSeq: 1024,
    eps: 1e-5,
    order: "sandwich",
  };
  const tl = performance.now();
  const coglmSrc = randomWeightSource(ctx, satTransformerShapes(dims, {}), {
    origin: "random CogLM",
    seed: 1,
    dtype: weights,
  });
  const labels = Int32Array.from({ length: IMAGE_TOKENS }, (_, i) => (i * 7919) % 500);
  // The models load and unload through the pipeline's residency (src/pipeline/residency.ts), as serve runs them.
  const srShapes = (plus: boolean) =>
    satTransformerShapes(
      { ...dims, numLayers: srLayers, hidden: SR_HIDDEN, heads: SR_HEADS, headDim: 64, inner: 4 * SR_HIDDEN },
      { plus, extraPositions: 3600 },
    );
  const dsrSrc = randomWeightSource(ctx, srShapes(true), { origin: "random DSR", seed: 2, dtype: weights });
  const itSrc = randomWeightSource(ctx, srShapes(false), {
    origin: "random iterative SR",
    seed: 3,
    dtype: weights,
  });
  const sr = await SuperResolution.fromSources(ctx, {
    dsr: srConfig(srLayers, [96, 496, 4096], "DsrModel"),
    itersr: srConfig(srLayers, [16, 3616], "ItersrModel"),
    imageTokens: IMAGE_TOKENS,
    boi: BOI,
    numClusters: 500,
    weights: (name) => Promise.resolve(name === "dsr" ? dsrSrc : itSrc),
    clusterLabels: () => Promise.resolve(labels),
  }, { preload: false, maxResidentBytes: Infinity });
  const vqSrc = randomWeightSource(ctx, icetkShapes({ c: 128, hidden: 256, d: 256, n: IMAGE_TOKENS }), {
    origin: "random icetk VQ-VAE",
    seed: 4,
    dtype: "f16",
  });
  const slots = {
    coglm: new ModelSlotHolder(
      "coglm",
      ctx,
      async () =>
        CogLM.fromWeights(
          ctx,
          dims,
          await loadTransformer(ctx, coglmSrc, dims),
          IMAGE_TOKENS,
          clusterTable(ctx, labels, 500),
        ),
      (m) => m.release(),
    ),
    dsr: new ModelSlotHolder("dsr", ctx, () => sr.dsrModel(), () => sr.unload("dsr")),
    itersr: new ModelSlotHolder("itersr", ctx, () => sr.itersrModel(), () => sr.unload("itersr")),
    vqvae: new ModelSlotHolder(
      "vqvae",
      ctx,
      () => Vqvae.fromWeights(ctx, vqSrc, { compressRate: 8 }),
      (m) => m.release(),
    ),
  };
  const models = new ResidentModels(ctx, residency, slots, log);
  // ---- VQ-VAE decode, side×side codes → 8·side pixels per image (60: 480×480)
  const vqvaeStage = async (high: Int32Array[]) => {
    const side = vqSide;
    await models.enter("vqvae");
    const vq = await slots.vqvae.get();
    const start = ctx.poolBytes;
    const codes60 = high.map((h) => side === 60 ? h : h.subarray(0, side * side));
    const vqResult = await measure(
      ctx,
      "vqvae",
      { flops: B * vq.decodeFlops(side), bytes: B * vq.decodeBytes(side) },
      async () => {
        for (const h of codes60) await vq.decode(h, side);
      },
      o.profile,
    );
    if (side !== 60) {
      // Activations scale with the decoder's pixels: peak(60) = start + (peak(side) − start)·(60/side)².
      const f = (60 / side) ** 2;
      const peak60 = start + (vqResult.peak - start) * f;
      log(
        `# vqvae at ${side}×${side} codes: peak ${(vqResult.peak / 2 ** 30).toFixed(3)} GiB, stage start ` +
          `${
            (start / 2 ** 30).toFixed(3)
          } GiB; at 60×60 (extrapolated, not measured): start + (peak − start) × ` +
          `(60/${side})² = ${(start / 2 ** 30).toFixed(3)} + ${
            ((vqResult.peak - start) / 2 ** 30).toFixed(3)
          } × ` +
          `${f.toFixed(2)} = ${
            (peak60 / 2 ** 30).toFixed(3)
          } GiB (the mid attention's scores grow with pixels², but ` +
          `run in query-row blocks under one binding)`,
      );
      report({
        name: "published_vqvae_peak_extrapolated_bytes",
        params: { batch: B, weights, residency, side },
        value: peak60,
        unit: "B",
      });
      vqResult.peak = peak60;
    }
    emit(vqResult);
    await models.unloadAll();
    ctx.trim();
  };
  if (o.stages === "vqvae") {
    // Codes as the iterative SR would hand them over (one 60×60 grid per image), seeded: the decode's cost does not
    // depend on the values.
    const high = Array.from(
      { length: B },
      (_, b) => Int32Array.from({ length: 3600 }, (_, i) => (i * 7919 + b * 104729) % IMAGE_TOKENS),
    );
    await vqvaeStage(high);
    return finish("the VQ-VAE alone (--stages vqvae)");
  }
  await models.enter("coglm");
  const coglm = await slots.coglm.get();
  await ctx.sync();
  log(
    `# CogLM built in ${((performance.now() - tl) / 1000).toFixed(1)} s (${
      (ctx.poolBytes / 2 ** 30).toFixed(2)
    } GiB pool)`,
  );
  // Which decode attention runs (choices.ts attentionWg / attentionSplit, or COGVIEW2_ATTENTION_WG / _SPLIT): the
  // split count follows the key count under the GPUs' heuristic.
  const splitAt = (keys: number) =>
    attentionSplitFor(ctx, { batch: B, heads: dims.heads, headDim: dims.headDim, keys });
  log(
    `# decode attention: ${
      attentionWgOverride() ?? choices(ctx).attentionWg
    } invocations per workgroup, key splits ` +
      `${[64, 128, 200, 300, 420].map((k) => `${splitAt(k)} at ${k}`).join(", ")} keys`,
  );
  // --profile: the decode steps' dispatches are counted apart from the prompt pass (phase "decode", from step 1 on).
  // stepAt[s]: when step s began recording (the host's view; see hostStepMs).
  // stepSubmit[s]: ctx.stats.submitMs then (the host's time in flush(), the submits, so far).
  let stepAt: number[] = [], stepBindGroups: number[] = [], stepSubmit: number[] = [];
  const gen = (tokens: number) => {
    stepAt = [];
    stepBindGroups = [];
    stepSubmit = [];
    return coglm.generate({
      textIds: text,
      batch: B,
      seed: 1,
      recipe,
      numTokens: tokens,
      onStep: (step) => {
        stepAt[step] = performance.now();
        stepBindGroups[step] = ctx.stats.bindGroups;
        stepSubmit[step] = ctx.stats.submitMs;
        ctx.profilePhase(step >= 1 && step < tokens ? "decode" : null);
      },
    });
  };
  // One layer's weights and its K/V cache (kvDtype, text + n positions per batch row).
  const kvDt = coglm.kvDtype;
  perLayer.coglm.bytes = layerBytes(ctx, coglmSrc, "transformer.layers.0.") +
    2 * ctx.allocationBytes([B, text.length + n, dims.hidden], kvDt);
  await gen(2); // compiles the pipelines
  let codes: Int32Array[] = [];
  const wBytes = weights === "int8" ? 1 + 4 / 64 : 2;
  let coglmWall = 0, coglmDispatches = 0;
  emit(
    await measure(
      ctx,
      "coglm",
      coglmWork(dims, text.length, n, B, { weightBytes: wBytes, kvBytes: kvDt === "f16" ? 2 : 4 }),
      async () => {
        const t0 = performance.now(), d0 = ctx.stats.dispatches;
        codes = await gen(n);
        coglmWall = (performance.now() - t0) / 1000;
        coglmDispatches = ctx.stats.dispatches - d0;
      },
      o.profile,
    ),
  );
  const host = hostStepMs(stepAt, CogLM.SYNC_INTERVAL);
  // The same steps' median submit time (the series is cumulative like stepAt, so the same gaps apply).
  const submit = hostStepMs(stepSubmit, CogLM.SYNC_INTERVAL);
  if (host !== null) {
    const stepMs = 1000 * coglmWall / n, perStep = coglmDispatches / n;
    log(
      `#   coglm host: ${
        host.toFixed(3)
      } ms per decode step recording + submitting (median; steps that begin ` +
        `with a host sync left out; ${perStep.toFixed(0)} dispatches per token, ${
          (1000 * host / perStep).toFixed(1)
        } µs each, of which submitting (flush) ${submit === null ? "n/a" : `${submit.toFixed(3)} ms`}; ${
          n > 5 ? stepBindGroups[n - 1] - stepBindGroups[4] : "n/a"
        } bind groups created by steps 4..${n - 2}) vs ${stepMs.toFixed(3)} ms per token of the stage: ${
          host >= 0.8 * stepMs ? "the host's recording bounds the step rate" : "GPU-bound"
        }${o.profile ? " (--profile: each dispatch in its own pass)" : ""}`,
    );
    report({
      name: "published_coglm_host_ms_per_step",
      params: { batch: B, layers, tokens: n, weights, ...(o.profile ? { profile: true } : {}) },
      value: host,
      unit: "ms",
    });
    if (submit !== null) {
      report({
        name: "published_coglm_submit_ms_per_step",
        params: { batch: B, layers, tokens: n, weights, ...(o.profile ? { profile: true } : {}) },
        value: submit,
        unit: "ms",
      });
    }
  }
  if (o.stages === "coglm") {
    await models.unloadAll();
    return finish("CogLM only (--stages coglm)");
  }
  const lowres = codes.map((c) =>
    Int32Array.from({ length: 400 }, (_, i) => i < c.length ? c[i] : (i * 37) % IMAGE_TOKENS)
  );

  // ---- DSR and iterative SR (by stage: CogLM leaves the GPU first; all: on top of it)
  const ts = performance.now();
  // DSR's layer 0 tensors include its attention_plus mixin's layer 0 entries.
  perLayer.dsr.bytes = layerBytes(ctx, dsrSrc, "transformer.layers.0.") +
    layerBytes(ctx, dsrSrc, "mixins.attention_plus.query_key_value.0.") +
    layerBytes(ctx, dsrSrc, "mixins.attention_plus.dense.0.");
  perLayer.itersr.bytes = layerBytes(ctx, itSrc, "transformer.layers.0.");
  await models.enter("dsr");
  await ctx.sync();
  log(
    `# DSR built in ${((performance.now() - ts) / 1000).toFixed(1)} s (${
      (ctx.poolBytes / 2 ** 30).toFixed(2)
    } GiB pool)`,
  );
  const srText = text.subarray(0, text.length - 1);
  let high: Int32Array[] = [];
  // DSR rows: 496 text + low-res rows attend among themselves; 3600 high-res rows see a 9×5 + 5×5 window.
  const dsrWork = srWork(srLayers, 4096, B, 70, 3600, true);
  dsrWork.flops += B * srLayers * 4 * SR_HIDDEN * 496 * 496;
  emit(
    await measure(ctx, "dsr", dsrWork, async () => {
      high = await sr.directSr({ textIds: srText, lowres, seed: 1 });
    }, o.profile),
  );
  let itWork: Work = { flops: 0, bytes: 0 };
  for (let r = 1; r <= rounds; r++) {
    const rows = loparRoundMask(60, r).reduce((s: number, v) => s + v, 0);
    const w = srWork(srLayers, 3616, B, 45 + 16, rows, false);
    itWork = { flops: itWork.flops + w.flops, bytes: itWork.bytes + w.bytes };
  }
  await models.enter("itersr");
  if (rounds < LOPAR_ROUNDS) {
    log(
      `# iterative SR: ${rounds} of ${LOPAR_ROUNDS} LoPAR rounds (--lopar-rounds; round 1 predicts the most cells)`,
    );
  }
  emit(
    await measure(ctx, "itersr", itWork, async () => {
      high = await sr.iterativeSr({ textIds: srText, highres: high, seed: 1, rounds });
    }, o.profile),
  );

  await vqvaeStage(high);
  finish("the whole pipeline");
}

/** Kernels listed per stage (the rest are summed into one line); grids shown per kernel. */
const TOP_KERNELS = 12, TOP_GRIDS = 4;

/** --profile: prints a stage's top kernels by GPU ms and reports every kernel (and kernel × grid) as JSON. */
function emitKernels(
  log: (s: string) => void,
  report: (r: BenchResult) => void,
  r: StageResult,
  base: { batch: number; layers: number; sr_layers: number },
): void {
  const ks = r.kernels!;
  const total = ks.reduce((s, k) => s + k.ms, 0);
  const params = { stage: r.stage, ...base };
  log(
    `#   ${r.stage} kernels (--profile: each dispatch its own timestamped pass): GPU ${
      (total / 1000).toFixed(3)
    } s ` +
      `of ${r.wall.toFixed(2)} s wall; share = of the stage's GPU time`,
  );
  log(
    `#     ${"kernel".padEnd(36)}${"GPU ms".padStart(11)}${"dispatches".padStart(11)}${
      "share".padStart(8)
    }  top grids (x×y×z: ms)`,
  );
  for (const k of ks.slice(0, TOP_KERNELS)) {
    const grids = k.grids.slice(0, TOP_GRIDS).map((g) => `${g.grid}: ${g.ms.toFixed(1)}`).join(", ");
    log(
      `#     ${k.kernel.padEnd(36)}${k.ms.toFixed(2).padStart(11)}${String(k.dispatches).padStart(11)}` +
        `${(100 * k.share).toFixed(1).padStart(7)}%  ${grids}${k.grids.length > TOP_GRIDS ? ", …" : ""}`,
    );
  }
  const rest = ks.slice(TOP_KERNELS);
  if (rest.length) {
    const ms = rest.reduce((s, k) => s + k.ms, 0);
    log(
      `#     ${`(${rest.length} more kernels)`.padEnd(36)}${ms.toFixed(2).padStart(11)}${
        String(rest.reduce((s, k) => s + k.dispatches, 0)).padStart(11)
      }${(total > 0 ? (100 * ms) / total : 0).toFixed(1).padStart(7)}%`,
    );
  }
  // The transformers' FLOPs are almost all weight products: the stage's analytic FLOPs over the matmul kernels' GPU
  // time is the rate the projections ran at (an upper bound: attention's FLOPs are counted in).
  const mm = ks.filter((k) => /^(gemm_tiles|gemm_sg|gemv|matmul)/.test(k.kernel));
  const mmMs = mm.reduce((s, k) => s + k.ms, 0);
  if (r.stage !== "vqvae" && mmMs > 0) {
    const tflops = r.work.flops / (mmMs / 1000) / 1e12;
    log(
      `#     matmul kernels (${mm.map((k) => k.kernel).join(", ")}): ${(mmMs / 1000).toFixed(3)} s GPU, ` +
        `${(100 * mmMs / total).toFixed(1)}% of the stage; stage FLOPs / their time = ${
          tflops.toFixed(3)
        } TFLOP/s ` +
        `(attention's FLOPs included: an upper bound)`,
    );
    report({ name: "published_stage_matmul_tflops", params, value: tflops, unit: "TFLOP/s" });
  }
  for (const k of ks) {
    report({
      name: "published_stage_kernel_ms",
      params: { ...params, kernel: k.kernel, dispatches: k.dispatches, share: Number(k.share.toFixed(4)) },
      value: k.ms,
      unit: "ms",
    });
    for (const g of k.grids) {
      report({
        name: "published_stage_kernel_grid_ms",
        params: { ...params, kernel: k.kernel, grid: g.grid, dispatches: g.dispatches },
        value: g.ms,
        unit: "ms",
      });
    }
  }
}

/**
 * --profile, CogLM: one decode step's dispatches by kernel and grid (per step, per layer, GPU µs), their sum, and JSON
 * entries `published_coglm_step_kernel_us` {batch, layers, kernel, grid, per_step, per_layer} and
 * `published_coglm_step_dispatches` / `published_coglm_step_gpu_us` {batch, layers}.
 */
function emitDecodeStep(
  log: (s: string) => void,
  report: (r: BenchResult) => void,
  timings: KernelTiming[],
  base: { batch: number; layers: number; steps: number },
): void {
  const ks = decodeStepKernels(timings, base.steps, base.layers);
  if (!ks.length) return;
  const params = { batch: base.batch, layers: base.layers };
  const dispatches = ks.reduce((s, k) => s + k.perStep, 0), us = ks.reduce((s, k) => s + k.usPerStep, 0);
  const perLayer = ks.reduce((s, k) => s + (k.perLayer ?? 0), 0);
  log(
    `#   coglm decode step (--profile, mean of ${base.steps} steps at batch ${base.batch}): ${
      dispatches.toFixed(1)
    } dispatches (${perLayer} per layer × ${base.layers} + ${
      (dispatches - perLayer * base.layers).toFixed(1)
    } per ` +
      `step), GPU ${
        us.toFixed(1)
      } µs per step (sum of the dispatches' own passes); /layer = /step ÷ depth where a ` +
      `multiple (a per-step kernel can be one by chance: compare two depths)`,
  );
  log(
    `#     ${"kernel".padEnd(30)}${"grid".padStart(12)}${"/layer".padStart(8)}${"/step".padStart(8)}${
      "µs/step".padStart(11)
    }${"µs each".padStart(10)}`,
  );
  for (const k of ks) {
    log(
      `#     ${k.kernel.padEnd(30)}${k.grid.padStart(12)}${
        (k.perLayer === null ? "-" : String(k.perLayer)).padStart(8)
      }${(Number.isInteger(k.perStep) ? String(k.perStep) : k.perStep.toFixed(2)).padStart(8)}${
        k.usPerStep.toFixed(1).padStart(11)
      }${k.usPerDispatch.toFixed(2).padStart(10)}`,
    );
    report({
      name: "published_coglm_step_kernel_us",
      params: {
        ...params,
        kernel: k.kernel,
        grid: k.grid,
        per_step: k.perStep,
        per_layer: k.perLayer ?? "-",
      },
      value: k.usPerStep,
      unit: "µs/step",
    });
  }
  report({ name: "published_coglm_step_dispatches", params, value: dispatches, unit: "dispatches/step" });
  report({ name: "published_coglm_step_gpu_us", params, value: us, unit: "µs/step" });
}

/** Prints and reports the full-depth peak over the measured stages. */
function fullDepthReport(
  log: (s: string) => void,
  report: (r: BenchResult) => void,
  o: {
    what: string;
    fullPeaks: number[];
    B: number;
    weights: string;
    residency: string;
    srFull: number;
    measured: boolean;
    stages: "all" | "coglm" | "vqvae";
  },
): void {
  const { fullPeaks, B, weights, residency } = o;
  const fullPeak = Math.max(...fullPeaks);
  log(
    `# ${o.what} at full depth (CogLM ${COGLM_LAYERS}, SR ${o.srFull} layers), batch ${B}, ${weights}, ` +
      `residency ${residency}: peak ${
        (fullPeak / 2 ** 30).toFixed(3)
      } GiB (max over stages of the lines above)` +
      (o.measured ? " — measured, not extrapolated" : ""),
  );
  report({
    name: "published_full_depth_peak_gpu_bytes",
    params: { batch: B, weights, residency, ...(o.stages !== "all" ? { stages: o.stages } : {}) },
    value: fullPeak,
    unit: "B",
  });
}
