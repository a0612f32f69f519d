// `deno task gpu-info [--gpu dawn|wgpu|auto] [--retune]`: the backend and adapter WebGPU gives this machine (first
// line `gpu: <backend> · <adapter> · <driver>`), its limits and features, and the tuning cache that `auto` chooses by
// (src/gpu/tuning.ts: one row per backend, adapter and driver). Exits 1 when no backend can start (the reason on
// stderr). tools/run.sh uses it to decide whether Mesa's lavapipe must be installed.
// `--measure --gpu B` (what auto runs in a child process per backend) prints one JSON line: the measurement.
import { takeGpuFlag } from "../src/gpu/backends.ts";
import {
  acquireGpu,
  closeGpu,
  describeGpu,
  formatSubgroupMatrixConfig,
  gpuLine,
  SUBGROUP_MATRIX_FEATURE,
} from "../src/gpu/device.ts";
import { GEMM_VARIANT_NAMES, GEMM_VARIANTS, gemmVariantUnsupported, sgmatPlan } from "../src/kernels/gemm.ts";
import { TENSOR_CORE_GEMM, TENSOR_CORE_GEMMS } from "../src/kernels/matmul.ts";
import { tensorCoreMode } from "../src/gpu/env.ts";
import { GpuContext } from "../src/gpu/context.ts";
import {
  AUTO_EXPLAINED,
  type BackendMeasurement,
  readTuning,
  type StageSlices,
  tuningFile,
  tuningTable,
} from "../src/gpu/tuning.ts";
import { add } from "../src/kernels/elementwise.ts";
import { LOPAR_ROUNDS, loparRoundMask } from "../src/geometry/sr.ts";
import { ensureDemoModel } from "../src/demo/model.ts";
import { openModelDir } from "../src/models/config.ts";
import { CogLM } from "../src/models/coglm.ts";
import { Vqvae } from "../src/models/vqvae.ts";
import { SuperResolution } from "../src/pipeline/super_resolution.ts";
import { DEFAULT_STYLE, getRecipe } from "../src/sampling/recipes.ts";
import { IceTokenizer } from "../src/tokenizer/icetk.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 2654435761 + seed) % 1000) / 1000 - 0.5;
  return out;
}

const PROMPT = "a photo of a cat";
/** CogLM tokens per timed slice (two host syncs and the final read, as CogLM syncs every 20 steps). */
const COGLM_TOKENS = 40;
/** CogLM tokens in the warm-up. */
const WARM_TOKENS = 2;

/**
 * The measurement auto compares (src/gpu/tuning.ts predictJobs / e2eScore): the demo model (the tiny fixture's
 * architecture, seeded random weights; created in the cache when absent, so no test data is needed) runs a bounded
 * slice of each stage through the model APIs. First a warm-up pass that creates and compiles every pipeline (CogLM
 * 2 tokens at batch 1 and 4, both decodes, DSR, LoPAR's first round in full and on 200 cells), then the timed
 * pass: CogLM COGLM_TOKENS tokens at batch 1 and 4, one 160x160 preview decode, one DSR call, LoPAR's first round
 * (2300 cells re-predicted) and the same round limited to the last round's 200 cells (so the six rounds' cost can be
 * split into forward and per-cell parts), one 480x480 decode; the SR stages at batch 1 only (see predictJobs). Each
 * call ends with a read of its result, so each is timed to completion. About 25 s per backend on a quiet 2-core
 * lavapipe once Mesa has the shaders cached (1-1.5 min at load 9-11). Also the queue round trip and the cost of a
 * dispatch, for the table.
 */
async function measure(ctx: GpuContext, log: (l: string) => void): Promise<BackendMeasurement> {
  const tAll = performance.now();
  const x = ctx.upload(filler(64, 1), [64]), y = ctx.upload(filler(64, 2), [64]), z = ctx.empty([64]);
  add(ctx, x, y, z);
  await ctx.sync();
  const rt: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    add(ctx, x, y, z);
    await ctx.sync();
    rt.push(performance.now() - t0);
  }
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) add(ctx, x, y, z);
  await ctx.sync();
  const dispatchUs = (performance.now() - t0) * 1000 / 200;
  [x, y, z].forEach((t) => t.release());

  const dir = await ensureDemoModel({ log });
  const md = await openModelDir(dir);
  const tokenizer = await IceTokenizer.fromFile(md.path(md.config.tokenizer.file));
  const coglm = await CogLM.load(ctx, md);
  const sr = await SuperResolution.load(ctx, dir, { maxResidentBytes: Infinity });
  const vq = await Vqvae.load(ctx, dir);
  try {
    const recipe = getRecipe(DEFAULT_STYLE);
    const ids = Int32Array.from(tokenizer.encode(recipe.template.replace("{}", PROMPT)));
    const srText = ids.slice(0, ids.length - 1); // SR sees the text without <start_of_image>
    // Codes for the SR stages and the decoders: any valid image codes (the work does not depend on them).
    const n = md.config.image_tokens;
    const codes = (len: number, seed: number) =>
      Int32Array.from({ length: len }, (_, i) => (i * 7919 + seed * 104729) % n);
    const low = [0, 1, 2, 3].map((b) => codes(400, b));
    const high = codes(3600, 4);
    const ms = async (f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      return performance.now() - t;
    };
    const generate = (batch: number, numTokens: number) =>
      ms(() => coglm.generate({ textIds: ids, batch, seed: 1, recipe, numTokens })).then((t) =>
        t / numTokens
      );
    const preview = () => ms(() => vq.decode(low[0], 20));
    const decode = () => ms(() => vq.decode(high, 60));
    const dsr = () => ms(() => sr.directSr({ textIds: srText, lowres: low.slice(0, 1), seed: 1, recipe }));
    // LoPAR round 1 re-predicts 2300 of 3600 cells; with the last round's mask as input mask only its 200.
    const few = loparRoundMask(60, LOPAR_ROUNDS);
    const lopar = (inputMask?: Uint8Array) =>
      ms(() => sr.iterativeSr({ textIds: srText, highres: [high], seed: 2, rounds: 1, inputMask }));

    const p0 = ctx.stats.pipelines, w0 = performance.now();
    await generate(1, WARM_TOKENS);
    await generate(4, WARM_TOKENS);
    // Both decode sizes: each compiles pipelines the other does not (lavapipe: 4 each, e.g. the band kernels of the
    // 480x480 maps above one storage binding).
    await preview();
    await decode();
    await dsr();
    await lopar();
    await lopar(few);
    const warmupS = (performance.now() - w0) / 1000;
    const pipelines = ctx.stats.pipelines - p0;
    // Each timed slice, and which of them still created pipelines (their first compile is then in their time).
    const lateIn: string[] = [];
    const slice = async (name: keyof StageSlices, f: () => Promise<number>) => {
      const before = ctx.stats.pipelines;
      const t = await f();
      if (ctx.stats.pipelines > before) lateIn.push(`${name} ${ctx.stats.pipelines - before}`);
      return t;
    };
    const stages: StageSlices = {
      coglmStepB1: await slice("coglmStepB1", () => generate(1, COGLM_TOKENS)),
      coglmStepB4: await slice("coglmStepB4", () => generate(4, COGLM_TOKENS)),
      preview: await slice("preview", preview),
      dsrB1: await slice("dsrB1", dsr),
      loparB1: await slice("loparB1", () => lopar()),
      loparB1Last: await slice("loparB1Last", () => lopar(few)),
      decode: await slice("decode", decode),
    };
    // The warm-up's work at the timed speed: what is left is compile time.
    const warmWork = WARM_TOKENS * (stages.coglmStepB1 + stages.coglmStepB4) + stages.preview +
      stages.decode +
      stages.dsrB1 + stages.loparB1 + stages.loparB1Last;
    return {
      backend: ctx.gpu.backend,
      adapter: ctx.gpu.name,
      driver: ctx.gpu.driver,
      roundTripMs: median(rt),
      dispatchUs,
      stages,
      warmupS,
      compileS: Math.max(0, warmupS - warmWork / 1000),
      pipelines,
      latePipelines: ctx.stats.pipelines - p0 - pipelines,
      lateIn,
      totalS: (performance.now() - tAll) / 1000,
      measuredAt: new Date().toISOString(),
    };
  } finally {
    coglm.release();
    sr.release();
    vq.release();
  }
}

try {
  let rest = takeGpuFlag(Deno.args);
  const measureOnly = rest.includes("--measure");
  rest = rest.filter((a) => a !== "--measure");
  if (rest.length) {
    throw new Error(`gpu-info takes only --gpu, --retune and --measure (got ${rest.join(" ")})`);
  }
  const gpu = await acquireGpu({ log: (l) => console.error(l) });
  if (measureOnly) {
    const ctx = new GpuContext(gpu);
    console.log(JSON.stringify(await measure(ctx, (l) => console.error(l))));
    closeGpu(gpu);
    Deno.exit(0);
  }
  console.log(gpuLine(gpu));
  console.log(describeGpu(gpu));
  console.log(
    `subgroups ${gpu.hasSubgroups ? "yes" : "no"}; timestamps ${gpu.hasTimestamps ? "yes" : "no"}; ` +
      `uniform buffers per stage ${gpu.limits.maxUniformBuffersPerShaderStage}; storage buffers per stage ` +
      `${gpu.limits.maxStorageBuffersPerShaderStage}; workgroup storage ${gpu.limits.maxComputeWorkgroupStorageSize} B ` +
      `(the GEMV LN prologue needs 7 and rows × hidden × 4 B + ~2-3 KiB: src/kernels/gemv.ts gemvLnApplies)`,
  );
  console.log(`adapter features: ${gpu.adapterFeatures.join(", ") || "none"}`);
  // Tensor-core tiles are reachable from WGSL only through this (experimental) feature and its shapes.
  const smf = gpu.adapterFeatures.includes(SUBGROUP_MATRIX_FEATURE);
  console.log(
    `subgroup matrix (${SUBGROUP_MATRIX_FEATURE} ${smf ? "yes" : "no"}${
      smf ? `, enabled on the device ${gpu.hasSubgroupMatrix ? "yes" : "no"}` : ""
    }): ${
      gpu.subgroupMatrixConfigs.map(formatSubgroupMatrixConfig).join(", ") || "no configurations reported"
    }; subgroups ${gpu.subgroupMinSize ?? "?"}-${gpu.subgroupMaxSize ?? "?"} wide${
      gpu.subgroupSize ? " (fixed size)" : ""
    }`,
  );
  if (gpu.subgroupMatrixNote) console.log(`subgroup matrix: ${gpu.subgroupMatrixNote}`);
  // What the tensor-core GEMM (gemm_sgmat*, src/kernels/gemm.ts) would run with here, or why it cannot.
  const sgmat = new GpuContext(gpu);
  for (const v of GEMM_VARIANT_NAMES.filter((v) => GEMM_VARIANTS[v].sgmat)) {
    const why = gemmVariantUnsupported(sgmat, v);
    const plan = why ? null : sgmatPlan(sgmat, GEMM_VARIANTS[v]);
    console.log(`${v}: ${why ?? `runs with ${plan!.describe}`}`);
  }
  const tc = gemmVariantUnsupported(sgmat, TENSOR_CORE_GEMM);
  console.log(
    `tensor cores (COGVIEW2_TENSOR_CORES=1 precise, =fast plain; now ${tensorCoreMode()}): ${
      tc
        ? `unavailable here, the SR GEMMs keep choices.ts's (${tc})`
        : `with f16 weights the SR GEMMs would run ${TENSOR_CORE_GEMM} (=fast: ${TENSOR_CORE_GEMMS.fast[0]})`
    }`,
  );
  closeGpu(gpu);
  console.log(`\nauto's measurements (${tuningFile()}):`);
  console.log(AUTO_EXPLAINED);
  console.log(tuningTable(readTuning()));
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(1);
}
