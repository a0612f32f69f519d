// Text-to-image, CogView2's whole pipeline: prompt → CogLM 20×20 → (post-selection) → DSR → LoPAR → VQ-VAE → PNG/JPEG.
// Not a model: it glues the stage APIs (models/, pipeline/super_resolution.ts) and reports progress; no kernels here.

import { StageMemory } from "./memory.ts";
import type { FillOptions } from "../models/coglm.ts";
import type { GpuContext } from "../gpu/context.ts";
import { openModelDir } from "../models/config.ts";
import { getRecipe, STYLES } from "../sampling/recipes.ts";
import { Progress } from "./progress.ts";
import {
  type CompletionRequest,
  type EmitEvent,
  type GenerateRequest,
  type MemoryReport,
  type Pipeline,
  PipelineError,
  type PipelineInfo,
  type ResultImage,
  type StageName,
  throwIfAborted,
} from "./types.ts";
import { runCompletion } from "./completion.ts";
import { resizeNearestChw } from "./image_ops.ts";
import { batchSeed, encodeChw, type Stages } from "./stages.ts";
import {
  admit,
  chooseResidency,
  estimatePeak,
  formulaExcess,
  learn,
  MODEL_SLOTS,
  type ModelSlot,
  ModelSlotHolder,
  type ResidencyChoice,
  type ResidencySetting,
  ResidentModels,
  stageBatches,
  type StageFootprint,
  weightFileBytes,
} from "./residency.ts";

/** The original rejects templated prompts longer than this (cogview2_text2image.py: `if len(seq) > 110`). */
export const MAX_PROMPT_TOKENS = 110;
export const DEFAULT_STYLE = "mainbody";

export interface Text2ImageOptions {
  ctx: GpuContext;
  /** A converted model directory (config.json + safetensors), see `deno task convert`. */
  modelDir: string;
  /** The random-weight demo model: its images are noise. */
  demo?: boolean;
  /** CogLM batch (the original's --max-inference-batch-size, default 8). */
  maxInferenceBatch?: number;
  /** Most images per request (default 16). */
  maxImages?: number;
  /**
   * Which models stay on the GPU (src/pipeline/residency.ts): "all", "stage" (only the running stage's) or "auto"
   * (default: from the budget; "all" without one).
   */
  residency?: ResidencySetting;
  /** GPU memory budget in bytes (--gpu-memory): jobs whose estimated peak exceeds it get 503; auto chooses by it. */
  gpuMemoryBytes?: number | null;
  /** Where the budget came from, for the start line ("--gpu-memory", "COGVIEW2_GPU_MEMORY"). */
  gpuMemorySource?: string;
  log?: (msg: string) => void;
}

/** Sequences per SR forward (SuperResolution's default, the original's max_bz). */
const SR_BATCH = 4;

/** The residency state of an opened pipeline: the models' holders, the footprints, the choice. */
interface ResidencyState {
  models: ResidentModels;
  footprints: Record<ModelSlot, StageFootprint>;
  choice: ResidencyChoice;
}

export class Text2ImagePipeline implements Pipeline {
  readonly stages: Stages;
  readonly #info: PipelineInfo;
  readonly #memory: StageMemory | null;
  /** Residency (loaded pipelines; doubles built by fromStages have none). */
  readonly residency: ResidencyState | null;

  private constructor(stages: Stages, info: PipelineInfo, ctx?: GpuContext, residency?: ResidencyState) {
    this.stages = stages;
    this.#info = info;
    this.#memory = ctx ? new StageMemory(ctx) : null;
    this.residency = residency ?? null;
  }

  /** A pipeline over already-built stages (tests use doubles; `open` loads the real ones). */
  static fromStages(stages: Stages, info: PipelineInfo): Text2ImagePipeline {
    return new Text2ImagePipeline(stages, info);
  }

  /** Loads every stage of a converted model directory onto the GPU. */
  static async open(options: Text2ImageOptions): Promise<Text2ImagePipeline> {
    const log = options.log ?? (() => {});
    const { ctx, modelDir } = options;
    const md = await openModelDir(modelDir);
    const t0 = performance.now();
    // The model modules load with the model, so the server's and CLI's other paths start without compiling them.
    const [{ IceTokenizer }, { CogLM }, { SuperResolution }, { Vqvae }] = await Promise.all([
      import("../tokenizer/icetk.ts"),
      import("../models/coglm.ts"),
      import("./super_resolution.ts"),
      import("../models/vqvae.ts"),
    ]);
    const tokenizer = await IceTokenizer.fromFile(md.path(md.config.tokenizer.file));
    log(`tokenizer: ${tokenizer.numTokens} tokens`);
    // The models load through holders: by stage only the running stage's model is on the GPU (residency.ts).
    const sr = await SuperResolution.load(ctx, md.dir, { preload: false, maxResidentBytes: Infinity });
    const file = (m: ModelSlot) => md.path(md.config[m].file);
    const slots = {
      coglm: new ModelSlotHolder(
        "coglm",
        ctx,
        async () => {
          const m = await CogLM.load(ctx, md);
          await m.clusters(); // resident with the weights, so the pool's baseline includes it
          return m;
        },
        (m) => m.release(),
        file("coglm"),
      ),
      dsr: new ModelSlotHolder("dsr", ctx, () => sr.dsrModel(), () => sr.unload("dsr"), file("dsr")),
      itersr: new ModelSlotHolder(
        "itersr",
        ctx,
        () => sr.itersrModel(),
        () => sr.unload("itersr"),
        file("itersr"),
      ),
      vqvae: new ModelSlotHolder(
        "vqvae",
        ctx,
        () => Vqvae.load(ctx, md.dir),
        (m) => m.release(),
        file("vqvae"),
      ),
    };
    const footprints = await formulaFootprints(ctx, md);
    const mbz = options.maxInferenceBatch ?? 8;
    const batches = stageBatches(mbz, mbz, SR_BATCH);
    const budget = options.gpuMemoryBytes ?? null;
    const choice = chooseResidency(
      options.residency ?? "auto",
      { bytes: budget, source: budget === null ? "none" : options.gpuMemorySource ?? "--gpu-memory" },
      estimatePeak(footprints, "all", batches).peak,
      estimatePeak(footprints, "stage", batches).peak,
    );
    log(choice.reason);
    const models = new ResidentModels(ctx, choice.mode, slots, log);
    await models.openAll();
    log(
      `${choice.mode === "all" ? "all models" : "CogLM (first stage)"} loaded in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s; GPU pool ${(ctx.poolBytes / 2 ** 30).toFixed(3)} GiB`,
    );
    // The stages the pipeline calls: each call makes its model resident first (by stage: unloading the others).
    const coglm = async () => {
      await models.enter("coglm");
      return await slots.coglm.get();
    };
    const vq = async () => {
      await models.enter("vqvae");
      return await slots.vqvae.get();
    };
    const stages: Stages = {
      tokenizer,
      coglm: {
        generate: async (o) => (await coglm()).generate(o),
        perplexity: async (s, c) => (await coglm()).perplexity(s, c),
        fill: async (o: FillOptions) => (await coglm()).fill(o),
      } as Stages["coglm"],
      sr: {
        directSr: async (o) => {
          await models.enter("dsr", "itersr");
          return await sr.directSr(o);
        },
        iterativeSr: async (o) => {
          await models.enter("itersr", "vqvae");
          return await sr.iterativeSr(o);
        },
      },
      vqvae: {
        decode: async (codes, side, o) => (await vq()).decode(codes, side, o),
        encode: async (chw, h, w) => (await vq()).encode(chw, h, w),
      },
    };
    const demo = options.demo ?? false;
    const info: PipelineInfo = {
      name: demo ? "cogview2-demo (random weights)" : "cogview2",
      dir: md.dir,
      demo,
      notice: demo
        ? "Demo model: CogView2's architecture at a tiny size with random weights, so every image is noise. To generate real images, convert the official weights with `deno task convert` " +
          "(see the README) and start the server with --model DIR or COGVIEW2_MODEL=DIR."
        : "CogView2 with converted official weights.",
      styles: [...STYLES],
      defaultStyle: DEFAULT_STYLE,
      maxImages: options.maxImages ?? 16,
      maxPromptTokens: MAX_PROMPT_TOKENS,
      maxInferenceBatch: options.maxInferenceBatch ?? 8,
      completion: true,
      details: {
        adapter: ctx.gpu.name,
        dtype: md.config.dtype,
        coglm: pick(md.config.coglm),
        dsr: pick(md.config.dsr),
        itersr: pick(md.config.itersr),
        tokenizer_tokens: tokenizer.numTokens,
        residency: {
          setting: choice.setting,
          mode: choice.mode,
          gpu_memory_bytes: choice.budgetBytes,
          gpu_memory_source: choice.budgetSource,
          reason: choice.reason,
        },
      },
    };
    return new Text2ImagePipeline(stages, info, ctx, { models, footprints, choice });
  }

  info(): PipelineInfo {
    return this.#info;
  }

  memory(): MemoryReport | null {
    const r = this.#memory?.report() ?? null;
    const st = this.residency;
    if (!r || !st) return r;
    const mbz = this.#info.maxInferenceBatch;
    const est = estimatePeak(st.footprints, st.choice.mode, stageBatches(mbz, mbz, SR_BATCH));
    return {
      ...r,
      residency: st.choice.mode,
      resident_models: st.models.loaded(),
      gpu_memory_bytes: st.choice.budgetBytes,
      estimate: {
        batch: mbz,
        peak_bytes: est.peak,
        stage_peak_bytes: est.perStage,
        sources: Object.fromEntries(MODEL_SLOTS.map((m) => [m, st.footprints[m].source])),
      },
    };
  }

  /** The CogLM text ids of a request: the style template applied to the prompt (ends with <start_of_image>). */
  textIds(prompt: string, style: string): number[] {
    const recipe = getRecipe(style);
    return Array.from(this.stages.tokenizer.encode(recipe.template.replace("{}", prompt)));
  }

  validate(request: GenerateRequest | CompletionRequest): void {
    if (!STYLES.includes(request.style as typeof STYLES[number])) {
      throw new PipelineError(`Unknown style '${request.style}'; styles: ${STYLES.join(", ")}`);
    }
    const n = this.textIds(request.prompt, request.style).length;
    if (n > MAX_PROMPT_TOKENS) {
      throw new PipelineError(
        `Prompt is too long: ${n} tokens with the '${request.style}' template, the limit is ${MAX_PROMPT_TOKENS}`,
      );
    }
    const st = this.residency;
    if (st) {
      const firstOnly = "onlyFirstStage" in request && request.onlyFirstStage;
      admit({
        n: request.n,
        budget: st.choice.budgetBytes,
        mode: st.choice.mode,
        fp: st.footprints,
        coglmBatch: this.#info.maxInferenceBatch,
        srBatch: SR_BATCH,
        stages: firstOnly ? ["coglm", "vqvae"] : MODEL_SLOTS,
      });
    }
  }

  async generate(
    request: GenerateRequest,
    emitEvent: EmitEvent,
    signal: AbortSignal,
  ): Promise<ResultImage[]> {
    this.validate(request);
    try {
      return await this.#generate(request, this.#memory?.wrap(emitEvent) ?? emitEvent, signal);
    } finally {
      await this.residency?.models.settle();
    }
  }

  /** A stage's measured bytes above its weights, for the admission estimate of later jobs. */
  #learn(slot: ModelSlot, batch: number): void {
    const st = this.residency;
    const start = st?.models.afterEnter[slot];
    if (!st || start === undefined) return;
    learn(st.footprints[slot], batch, st.models.ctx.peakBytes - start);
  }

  async #generate(request: GenerateRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    const { tokenizer, coglm, sr, vqvae } = this.stages;
    const recipe = getRecipe(request.style);
    const ids = this.textIds(request.prompt, request.style);
    const txtLen = ids.length - 1;
    // By stage, post-selection (CogLM) runs before the previews (VQ-VAE), so CogLM is loaded once per job.
    const byStage = this.residency?.choice.mode === "stage";
    const plan: StageName[] = byStage && request.inversePrompt ? ["coglm", "postselect", "preview"] : [
      "coglm",
      "preview",
      ...(request.inversePrompt ? ["postselect" as const] : []),
    ];
    if (!request.onlyFirstStage) plan.push("dsr", "itersr");
    plan.push("decode");
    const progress = new Progress(emit, plan);

    // Stage 1: CogLM, `maxInferenceBatch` samples at a time.
    progress.start("coglm");
    const mbz = this.#info.maxInferenceBatch;
    const batches = Math.ceil(request.n / mbz);
    const samples: Int32Array[] = [];
    for (let b = 0; b < batches; b++) {
      const batch = Math.min(mbz, request.n - b * mbz);
      const out = await coglm.generate({
        textIds: Int32Array.from(ids),
        batch,
        seed: batchSeed(request.seed, b),
        recipe,
        signal,
        onStep: (step: number, steps: number) => progress.step(b * steps + step, batches * steps),
      });
      samples.push(...out);
      throwIfAborted(signal);
    }
    progress.end();

    this.#learn("coglm", Math.min(mbz, request.n));

    // A 160×160 preview of each sample as soon as stage 1 is done (kept for the first-stage-only result).
    const small: Float32Array[] = [];
    const previews = async () => {
      progress.start("preview");
      for (const [k, codes] of samples.entries()) {
        throwIfAborted(signal);
        small.push(await vqvae.decode(codes, 20, { signal }));
        emit({ type: "preview", index: k, image: encodeChw(small[k], 160, 160, "png") });
        progress.step(k + 1, samples.length);
      }
      progress.end();
    };

    // Optional post-selection: CogLM's mean log-likelihood of "<start_of_chinese>" + prompt given each image.
    let order = samples.map((_, k) => k);
    let scores: number[] | undefined;
    const postselect = async () => {
      progress.start("postselect");
      const caption = Int32Array.from([
        tokenizer.tokenToId("<start_of_chinese>"),
        ...Array.from(tokenizer.encode(request.prompt)),
      ]);
      scores = await coglm.perplexity(samples, caption);
      order = order.sort((a, b) => scores![b] - scores![a]);
      progress.step(1, 1);
      progress.end();
      throwIfAborted(signal);
    };
    for (const st of plan) {
      if (st === "preview") await previews();
      else if (st === "postselect") await postselect();
    }
    const ordered = order.map((k) => samples[k]);
    const orderedScores = scores ? order.map((k) => scores![k]) : undefined;

    if (request.onlyFirstStage) {
      // The original decodes 20×20 → 160×160 and saves it upscaled (nearest) to 480×480.
      progress.start("decode");
      const images: ResultImage[] = [];
      for (const [k, i] of order.entries()) {
        const big = resizeNearestChw(small[i], { c: 3, h: 160, w: 160 }, 480, 480);
        images.push({ ...encodeChw(big, 480, 480, request.format), score: orderedScores?.[k] });
        progress.step(k + 1, ordered.length);
        throwIfAborted(signal);
      }
      progress.end();
      return images;
    }

    // Stage 2: direct super-resolution; DSR/LoPAR see the text without the trailing <start_of_image>.
    const srText = Int32Array.from(ids.slice(0, txtLen));
    progress.start("dsr");
    const high = await sr.directSr({
      textIds: srText,
      lowres: ordered,
      seed: batchSeed(request.seed, 1000),
      recipe,
      signal,
      onStep: (step: number, steps: number) => progress.step(step, steps),
    });
    progress.end();
    this.#learn("dsr", Math.min(SR_BATCH, request.n));
    throwIfAborted(signal);

    // Stage 3: iterative super-resolution (LoPAR).
    progress.start("itersr");
    const refined = await sr.iterativeSr({
      textIds: srText,
      highres: high,
      seed: batchSeed(request.seed, 2000),
      signal,
      onStep: (step: number, steps: number) => progress.step(step, steps),
    });
    progress.end();
    this.#learn("itersr", Math.min(SR_BATCH, request.n));
    throwIfAborted(signal);

    // VQ-VAE: 60×60 codes → 480×480.
    progress.start("decode");
    const images: ResultImage[] = [];
    for (const [k, codes] of refined.entries()) {
      const img = await vqvae.decode(codes, 60, { signal });
      images.push({ ...encodeChw(img, 480, 480, request.format), score: orderedScores?.[k] });
      progress.step(k + 1, refined.length);
      throwIfAborted(signal);
    }
    progress.end();
    this.#learn("vqvae", 1);
    return images;
  }

  async complete(request: CompletionRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    this.validate(request);
    try {
      return await runCompletion(this.stages, {
        request,
        textIds: this.textIds(request.prompt, request.style),
        recipe: getRecipe(request.style),
        maxInferenceBatch: this.#info.maxInferenceBatch,
        emit: this.#memory?.wrap(emit) ?? emit,
        signal,
      });
    } finally {
      await this.residency?.models.settle();
    }
  }
}

/**
 * Each model's footprint from its file and config before any job measured it: weight bytes from the tensors'
 * metadata (nothing read), the stage's excess from residency.ts's formula at batch 1.
 */
async function formulaFootprints(
  ctx: GpuContext,
  md: Awaited<ReturnType<typeof openModelDir>>,
): Promise<Record<ModelSlot, StageFootprint>> {
  const out = {} as Record<ModelSlot, StageFootprint>;
  const c = md.config;
  for (const slot of MODEL_SLOTS) {
    const src = await md.weights(slot);
    let weights: number, excess: number;
    try {
      const infos = src.names().map((n) => src.info(n));
      weights = weightFileBytes(ctx, infos);
      const base = {
        cpu: ctx.gpu.isFallback,
        weights,
        maxBinding: ctx.maxBinding,
        imageTokens: c.image_tokens,
      };
      if (slot === "vqvae") {
        const outCh = Math.max(
          ...infos.filter((i) => /conv_out\.weight$/.test(i.name) && i.shape[0] === 3).map((i) => i.shape[1]),
          1,
        );
        excess = formulaExcess(slot, { ...base, vqvae: { outChannels: outCh, side: 60 } });
      } else {
        const t = c[slot];
        const sizes = {
          layers: t.num_layers,
          hidden: t.hidden_size,
          inner: t.inner_hidden_size,
          heads: t.num_attention_heads,
        };
        const transformer = slot === "coglm"
          ? { ...sizes, seq: MAX_PROMPT_TOKENS + 401, attendRows: MAX_PROMPT_TOKENS + 401 }
          : (() => {
            // The SR base attention: DSR's text + low-res rows among themselves; iterative SR's text rows.
            const lay = c[slot].layout;
            return { ...sizes, seq: lay[lay.length - 1], attendRows: lay.length > 2 ? lay[1] : lay[0] };
          })();
        excess = formulaExcess(slot, { ...base, transformer });
      }
    } finally {
      src.close();
    }
    out[slot] = { weights, records: [{ batch: 1, bytes: excess }], source: "formula" };
  }
  return out;
}

function pick(cfg: object): Record<string, unknown> {
  const c = cfg as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ["num_layers", "hidden_size", "num_attention_heads", "vocab_size", "layout"]) {
    if (k in c) out[k] = c[k];
  }
  return out;
}
