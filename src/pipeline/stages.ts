// The stage interfaces of the text-to-image pipeline (what it uses of the tokenizer, CogLM, super-resolution and the
// VQ-VAE; tests pass doubles) and the helpers text2image.ts and completion.ts share. Types and small host-side
// functions only, so neither pipeline module imports the other for them (no cycle).
import { encodeJpeg, encodePng, toRgba8 } from "../formats/image.ts";
import type { CancelSignal } from "../models/cancel.ts";
import type { Recipe } from "../sampling/recipes.ts";
import type { EncodedImage } from "./types.ts";

export type OnStep = (step: number, steps: number) => void;

/** What the pipeline uses of the tokenizer (src/tokenizer/icetk.ts IceTokenizer). */
export interface TokenizerStage {
  readonly numTokens: number;
  encode(text: string): ArrayLike<number>;
  tokenToId(token: string): number;
}

/** What the pipeline uses of CogLM (src/models/coglm.ts). */
export interface CoglmStage {
  generate(o: {
    textIds: Int32Array;
    batch: number;
    seed: number;
    recipe: Recipe;
    signal?: CancelSignal;
    onStep?: OnStep;
  }): Promise<Int32Array[]>;
  /** The original's inverse-prompting score of each sample (higher = better). */
  perplexity(samples: Int32Array[], captionIds: Int32Array): Promise<number[]>;
}

/** The options of SrStage.directSr (SuperResolution.directSr takes these and more). */
export interface DirectSrOptions {
  textIds: Int32Array;
  lowres: Int32Array[];
  seed: number;
  /** The style's DSR sampling parameters (topk_dsr, temp_cluster_dsr), as the original sets them per style. */
  recipe?: { topk_dsr: number; temp_cluster_dsr: number };
  signal?: CancelSignal;
  onStep?: OnStep;
}

/** The options of SrStage.iterativeSr (SuperResolution.iterativeSr takes these and more). */
export interface IterativeSrOptions {
  textIds: Int32Array;
  highres: Int32Array[];
  inputMask?: Uint8Array;
  seed: number;
  signal?: CancelSignal;
  onStep?: OnStep;
}

/** What the pipeline uses of super-resolution (src/pipeline/super_resolution.ts). */
export interface SrStage {
  directSr(o: DirectSrOptions): Promise<Int32Array[]>;
  iterativeSr(o: IterativeSrOptions): Promise<Int32Array[]>;
}

/** What the pipeline uses of the VQ-VAE (src/models/vqvae.ts). */
export interface VqvaeStage {
  /** Codes [side²] → image [3, 8·side, 8·side] in [0, 1] (nominally). */
  decode(codes: Int32Array, side: number, o?: { signal?: CancelSignal }): Promise<Float32Array>;
  encode(chw: Float32Array, h: number, w: number): Promise<Int32Array>;
}

/** Loaded stages of one model directory (or test doubles). */
export interface Stages {
  tokenizer: TokenizerStage;
  coglm: CoglmStage;
  sr: SrStage;
  vqvae: VqvaeStage;
}

/** Seed of CogLM batch `b`: batch 0 uses the job's seed; others a fixed mix of it. */
export function batchSeed(seed: number, b: number): number {
  return b === 0 ? seed >>> 0 : (Math.imul(b, 0x9e3779b9) ^ seed) >>> 0;
}

/** Encodes a [3, h, w] image with values in [0, 1] as PNG or JPEG. */
export function encodeChw(chw: Float32Array, h: number, w: number, format: "png" | "jpeg"): EncodedImage {
  const rgba = toRgba8(chw, h, w);
  return format === "jpeg"
    ? { data: encodeJpeg(rgba, w, h, 95), mime: "image/jpeg", width: w, height: h }
    : { data: encodePng(rgba, w, h), mime: "image/png", width: w, height: h };
}
