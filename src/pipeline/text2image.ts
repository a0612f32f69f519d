// Text-to-image, CogView2's whole pipeline: prompt → CogLM 20×20 → (post-selection) → DSR → LoPAR → VQ-VAE → PNG/JPEG.
// Not a model: it glues the stage APIs (models/, pipeline/super_resolution.ts) and reports progress; no kernels here.

import { StageMemory } from "./memory.ts";
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
  log?: (msg: string) => void;
}

export class Text2ImagePipeline implements Pipeline {
  readonly stages: Stages;
  readonly #info: PipelineInfo;
  readonly #memory: StageMemory | null;

  private constructor(stages: Stages, info: PipelineInfo, ctx?: GpuContext) {
    this.stages = stages;
    this.#info = info;
    this.#memory = ctx ? new StageMemory(ctx) : null;
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
    const coglm = await CogLM.load(ctx, md.dir);
    log(`CogLM loaded (${md.config.coglm.num_layers} layers, hidden ${md.config.coglm.hidden_size})`);
    const sr = await SuperResolution.load(ctx, md.dir);
    log("super-resolution (DSR + iterative SR) loaded");
    const vqvae = await Vqvae.load(ctx, md.dir);
    log(`VQ-VAE loaded; all stages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
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
      },
    };
    return new Text2ImagePipeline({ tokenizer, coglm, sr, vqvae }, info, ctx);
  }

  info(): PipelineInfo {
    return this.#info;
  }

  memory(): MemoryReport | null {
    return this.#memory?.report() ?? null;
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
  }

  async generate(
    request: GenerateRequest,
    emitEvent: EmitEvent,
    signal: AbortSignal,
  ): Promise<ResultImage[]> {
    this.validate(request);
    const emit = this.#memory?.wrap(emitEvent) ?? emitEvent;
    const { tokenizer, coglm, sr, vqvae } = this.stages;
    const recipe = getRecipe(request.style);
    const ids = this.textIds(request.prompt, request.style);
    const txtLen = ids.length - 1;
    const plan: StageName[] = ["coglm", "preview"];
    if (request.inversePrompt) plan.push("postselect");
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

    // A 160×160 preview of each sample as soon as stage 1 is done (kept for the first-stage-only result).
    progress.start("preview");
    const small: Float32Array[] = [];
    for (const [k, codes] of samples.entries()) {
      throwIfAborted(signal);
      small.push(await vqvae.decode(codes, 20, { signal }));
      emit({ type: "preview", index: k, image: encodeChw(small[k], 160, 160, "png") });
      progress.step(k + 1, samples.length);
    }
    progress.end();

    // Optional post-selection: CogLM's mean log-likelihood of "<start_of_chinese>" + prompt given each image.
    let order = samples.map((_, k) => k);
    let scores: number[] | undefined;
    if (request.inversePrompt) {
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
    return images;
  }

  async complete(request: CompletionRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    this.validate(request);
    return await runCompletion(this.stages, {
      request,
      textIds: this.textIds(request.prompt, request.style),
      recipe: getRecipe(request.style),
      maxInferenceBatch: this.#info.maxInferenceBatch,
      emit: this.#memory?.wrap(emit) ?? emit,
      signal,
    });
  }
}

function pick(cfg: object): Record<string, unknown> {
  const c = cfg as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ["num_layers", "hidden_size", "num_attention_heads", "vocab_size", "layout"]) {
    if (k in c) out[k] = c[k];
  }
  return out;
}
