// The contract between the server/CLI and an image pipeline: requests, progress events, results, errors.
// Not an implementation: text2image.ts and completion.ts implement it; the server never imports model code.

/** A text-to-image request, already structurally validated (types and ranges) by the caller. */
export interface GenerateRequest {
  prompt: string;
  /** One of `PipelineInfo.styles` (the original's recipe names: none, mainbody, photo, ...). */
  style: string;
  /** Number of images (the original's `--batch-size`). */
  n: number;
  /** Seed of every random draw of the job (uint32). */
  seed: number;
  /** Stop after CogLM: the 160×160 images upscaled to 480×480 as the original saves them. */
  onlyFirstStage: boolean;
  /** Post-selection: order the samples by CogLM's likelihood of the prompt given the image, best first. */
  inversePrompt: boolean;
  format: ImageFormat;
}

/** Text-guided completion: re-generate the pixels inside `box` of `image` from `prompt`. */
export interface CompletionRequest {
  prompt: string;
  style: string;
  n: number;
  seed: number;
  /** An encoded PNG or JPEG; resized (short side to 480) and centre-cropped to 480×480 as the original does. */
  image: Uint8Array;
  /**
   * [h0, w0, h1, w1] as the original's `cord2mask`: fractions (0..1) of the 480×480 crop's rows (h) and columns (w);
   * rows ⌊480·h0⌋..⌊480·h1⌋-1 and columns ⌊480·w0⌋..⌊480·w1⌋-1 are re-generated.
   */
  box: [number, number, number, number];
  format: ImageFormat;
}

export type ImageFormat = "png" | "jpeg";

/** Stage names in pipeline order. */
export type StageName = "coglm" | "preview" | "postselect" | "dsr" | "itersr" | "decode" | "encode";

export type PipelineEvent =
  /** A stage starts; `progress` is the job's overall fraction done (0..1). */
  | { type: "stage"; stage: StageName; progress: number }
  /** One step of a stage finished. */
  | { type: "step"; stage: StageName; step: number; steps: number; progress: number }
  /** A low-resolution preview of sample `index` (encoded PNG). */
  | { type: "preview"; index: number; image: EncodedImage }
  /** A stage finished after `seconds` of wall time. */
  | { type: "stage_done"; stage: StageName; seconds: number; progress: number };

export type EmitEvent = (event: PipelineEvent) => void;

/** GPU pool accounting (src/pipeline/memory.ts), reported by GET /v1/model. */
export interface MemoryReport {
  /** Bytes the pool holds now (live tensors, idle pooled buffers and model weights). */
  current_bytes: number;
  /** Highest pool bytes since the server started. */
  peak_bytes: number;
  /** Per stage name: the highest pool bytes seen while that stage ran (any job so far). */
  stage_peak_bytes: Record<string, number>;
  /** Stage residency in use: "all" models resident, or only the running "stage"'s (src/pipeline/residency.ts). */
  residency?: "all" | "stage";
  /** Models whose weights are on the GPU now. */
  resident_models?: string[];
  /** The configured GPU memory budget (--gpu-memory), or null. */
  gpu_memory_bytes?: number | null;
  /**
   * The admission estimate of a job at the configured CogLM batch: its peak and per model stage (weights resident
   * then + the stage's bytes above them), and whether those come from earlier jobs ("measured") or a formula.
   */
  estimate?: {
    batch: number;
    peak_bytes: number;
    stage_peak_bytes: Record<string, number>;
    sources: Record<string, string>;
  };
}

export interface EncodedImage {
  data: Uint8Array;
  mime: "image/png" | "image/jpeg";
  width: number;
  height: number;
}

export interface ResultImage extends EncodedImage {
  /** Post-selection score (mean log-likelihood of the prompt), when inverse prompting ran. */
  score?: number;
}

export interface PipelineInfo {
  /** Short model name shown to users, e.g. "cogview2 (converted)" or "demo". */
  name: string;
  /** Model directory. */
  dir: string;
  /** True for the built-in random-weight demo model: its images are noise. */
  demo: boolean;
  /** A sentence telling users what the model is (and for the demo, how to get real weights). */
  notice: string;
  styles: string[];
  defaultStyle: string;
  maxImages: number;
  /** The original rejects templated prompts longer than this many tokens. */
  maxPromptTokens: number;
  /** CogLM batch (the original's --max-inference-batch-size). */
  maxInferenceBatch: number;
  completion: boolean;
  /** Free-form details (sizes, adapter) for GET /v1/model. */
  details: Record<string, unknown>;
}

/** An error the pipeline raises for a request the user can fix (HTTP 400) or a missing capability (503). */
export class PipelineError extends Error {
  constructor(message: string, readonly status: 400 | 503 = 400) {
    super(message);
    this.name = "PipelineError";
  }
}

export interface Pipeline {
  info(): PipelineInfo;
  /** Throws PipelineError when the request cannot run (too many tokens, unknown style); cheap, no GPU work. */
  validate(request: GenerateRequest | CompletionRequest): void | Promise<void>;
  generate(request: GenerateRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]>;
  complete(request: CompletionRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]>;
  /** GPU pool bytes now, at their highest, and per stage (GET /v1/model); optional. */
  memory?(): MemoryReport | null;
  /** Stops at once, abandoning work in flight (shutdown after the grace period); optional. */
  close?(): void;
}

/**
 * Throws an AbortError when the job was cancelled; called between steps. Any signal with a synchronous `aborted`
 * (an AbortSignal, the pipeline worker's shared flag; the models' CancelSignal).
 */
export function throwIfAborted(signal: { readonly aborted: boolean } | undefined): void {
  if (signal?.aborted) throw new DOMException("Job cancelled", "AbortError");
}

export function isAbortError(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError" ||
    (e instanceof Error && e.name === "AbortError");
}
