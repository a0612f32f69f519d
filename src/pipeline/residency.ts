// Stage residency: which models' weights are on the GPU while a job runs. "all" keeps CogLM, DSR, iterative SR and
// the VQ-VAE resident; "stage" keeps only the running stage's model (CogLM, then DSR, then iterative SR, then the
// VQ-VAE), unloading the others and freeing their buffers before it loads the next one from disk (streamed by
// models/load.ts, never whole in the JS heap); "auto" picks one from a configured GPU memory budget (WebGPU reports
// no adapter memory). Also the admission estimate: a job's peak pool bytes per stage, checked against the budget
// before it runs. Not an allocator: it decides what is loaded and reads the pool's counters (src/gpu/context.ts).
import type { GpuContext } from "../gpu/context.ts";
import type { DType } from "../gpu/tensor.ts";
import type { WeightInfo } from "../formats/weights.ts";
import { PipelineError } from "./types.ts";

export type Residency = "all" | "stage";
export type ResidencySetting = Residency | "auto";
/** The four models, in the order a text-to-image job uses them. */
export type ModelSlot = "coglm" | "dsr" | "itersr" | "vqvae";
export const MODEL_SLOTS: readonly ModelSlot[] = ["coglm", "dsr", "itersr", "vqvae"];

/** Parses --residency / COGVIEW2_RESIDENCY. */
export function parseResidency(v: string, what: string): ResidencySetting {
  if (v === "all" || v === "stage" || v === "auto") return v;
  throw new Error(`${what} must be stage, all or auto (got '${v}')`);
}

/** Parses --gpu-memory / COGVIEW2_GPU_MEMORY (GiB, e.g. 16 or 7.5) into bytes. */
export function parseGpuMemory(v: string, what: string): number {
  const g = Number(v);
  if (!v.trim() || !Number.isFinite(g) || g <= 0 || g > 1 << 20) {
    throw new Error(
      `${what} must be a GPU memory budget in GiB, a number > 0 such as 16 or 7.5 (got '${v}')`,
    );
  }
  return Math.round(g * 2 ** 30);
}

/** The residency a pipeline runs with, and why (printed at start, shown in /v1/model). */
export interface ResidencyChoice {
  setting: ResidencySetting;
  mode: Residency;
  /** The GPU memory budget (bytes), or null when none is configured. */
  budgetBytes: number | null;
  /** Where the budget came from ("--gpu-memory", "COGVIEW2_GPU_MEMORY", "none"). */
  budgetSource: string;
  /** One line: the choice and why. */
  reason: string;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * Resolves "auto": with no budget, "all" (WebGPU has no adapter-memory query, and no default for an unknown adapter
 * can be justified); with one, "all" when the estimated peak of a job at the configured batch with every model
 * resident fits, else "stage". `peakAll` / `peakStage`: the admission estimate's peak under each mode.
 */
export function chooseResidency(
  setting: ResidencySetting,
  budget: { bytes: number | null; source: string },
  peakAll: number,
  peakStage: number,
): ResidencyChoice {
  const b = budget.bytes;
  const est = `estimated peak ${gib(peakAll)} with every model resident, ${gib(peakStage)} by stage`;
  const within = b === null ? "" : `; budget ${gib(b)} (${budget.source})`;
  const base = { setting, budgetBytes: b, budgetSource: budget.source };
  if (setting !== "auto") {
    const over = b !== null && (setting === "all" ? peakAll : peakStage) > b;
    return {
      ...base,
      mode: setting,
      reason: `residency ${setting} (as configured): ${est}${within}` +
        (over ? " — over the budget: jobs that do not fit get 503" : ""),
    };
  }
  if (b === null) {
    return {
      ...base,
      mode: "all",
      reason:
        `residency all (auto, no GPU memory budget: WebGPU reports no adapter memory; set --gpu-memory GiB ` +
        `or COGVIEW2_GPU_MEMORY to choose by budget): ${est}`,
    };
  }
  if (peakAll <= b) {
    return { ...base, mode: "all", reason: `residency all (auto: it fits): ${est}${within}` };
  }
  return {
    ...base,
    mode: "stage",
    reason: `residency stage (auto: every model resident does not fit): ${est}${within}` +
      (peakStage > b ? " — even by stage over the budget: jobs that do not fit get 503" : ""),
  };
}

/** A model that can be loaded onto and unloaded from the GPU (one of the four). */
export class ModelSlotHolder<T> {
  #model: T | null = null;
  #loading: Promise<T> | null = null;
  /** Pool bytes the last load added (its weights as allocated), or null before the first load. */
  loadedBytes: number | null = null;

  constructor(
    readonly name: ModelSlot,
    private readonly ctx: GpuContext,
    private readonly loader: () => Promise<T>,
    private readonly unloader: (m: T) => void | Promise<void>,
    /** The weight file (warmed into the OS page cache before the stage needs it), if any. */
    readonly file?: string,
  ) {}

  get loaded(): boolean {
    return this.#model !== null;
  }

  /** The loaded model (loads it when needed). */
  async get(): Promise<T> {
    if (this.#model) return this.#model;
    this.#loading ??= (async () => {
      await this.ctx.sync();
      const before = this.ctx.poolBytes;
      const m = await this.loader();
      await this.ctx.sync();
      this.loadedBytes = this.ctx.poolBytes - before;
      return m;
    })();
    try {
      this.#model = await this.#loading;
    } finally {
      this.#loading = null;
    }
    return this.#model;
  }

  async unload(): Promise<void> {
    const m = this.#model;
    this.#model = null;
    if (m) await this.unloader(m);
  }
}

/** What ResidentModels needs of a model holder. */
export interface Slot {
  readonly loaded: boolean;
  /** Pool bytes the last load added. */
  readonly loadedBytes: number | null;
  readonly file?: string;
  get(): Promise<unknown>;
  unload(): Promise<void>;
}

/** The four models under one residency mode. */
export class ResidentModels {
  #warming: Promise<void> | null = null;
  #current: ModelSlot | null = null;
  /** Pool bytes when each model's stage last began (after its load): a stage's peak above it is its excess. */
  readonly afterEnter: Partial<Record<ModelSlot, number>> = {};
  /** Models loaded per transition (tests and logs): [slot entered, slots loaded after it]. */
  readonly transitions: { enter: ModelSlot; loaded: ModelSlot[]; poolBytes: number }[] = [];

  constructor(
    readonly ctx: GpuContext,
    readonly mode: Residency,
    readonly slots: { [K in ModelSlot]: Slot },
    private readonly log: (msg: string) => void = () => {},
  ) {}

  loaded(): ModelSlot[] {
    return MODEL_SLOTS.filter((s) => this.slots[s].loaded);
  }

  /**
   * Makes `slot` resident. By stage: first unloads every other model and frees the pool's idle buffers (their
   * weights leave the GPU before the next model's are allocated), then loads it; with `next`, starts warming that
   * model's weight file in the OS page cache while this stage runs.
   */
  async enter(slot: ModelSlot, next?: ModelSlot): Promise<void> {
    if (slot === this.#current) return;
    this.#current = slot;
    this.ctx.dropCaches(); // the kernels' shape caches (attention masks) belong to the stage that made them
    if (this.mode === "stage") {
      for (const s of MODEL_SLOTS) if (s !== slot && this.slots[s].loaded) await this.slots[s].unload();
      // The previous stage's weights and idle activation buffers leave the GPU before this stage's are allocated.
      this.ctx.trim();
      const was = this.slots[slot].loaded;
      const t0 = performance.now();
      await this.slots[slot].get();
      if (!was) {
        this.log(`residency stage: ${slot} loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
      if (next && next !== slot) this.warm(next);
    } else {
      this.ctx.trim(); // the previous stage's idle activation buffers (other size classes than this stage's)
      await this.slots[slot].get();
    }
    this.afterEnter[slot] = this.ctx.poolBytes;
    this.transitions.push({ enter: slot, loaded: this.loaded(), poolBytes: this.ctx.poolBytes });
  }

  /** Loads what an idle server keeps: every model ("all") or the first stage's, CogLM ("stage"). */
  async openAll(): Promise<void> {
    if (this.mode === "all") {
      for (const s of MODEL_SLOTS) await this.slots[s].get();
    } else await this.enter("coglm");
    this.#current = null; // a job's first stage records its own start
  }

  /**
   * The end of a job (done, failed or cancelled): back to the idle set of models, the kernels' shape caches dropped
   * and idle pool buffers freed, so the pool's bytes return to the same baseline after every job.
   */
  async settle(): Promise<void> {
    await this.#warming?.catch(() => {});
    await this.ctx.sync().catch(() => {});
    this.ctx.dropCaches();
    if (this.mode === "stage") await this.enter("coglm");
    this.#current = null;
    this.ctx.trim();
  }

  /** Unloads every model and frees the pool's idle buffers (shutdown, the end of a benchmark). */
  async unloadAll(): Promise<void> {
    for (const s of MODEL_SLOTS) await this.slots[s].unload();
    this.#current = null;
    this.ctx.dropCaches();
    this.ctx.trim();
  }

  /** Reads `slot`'s weight file once in the background (8 MiB at a time, nothing kept) so its load hits the page cache. */
  warm(slot: ModelSlot): void {
    const file = this.slots[slot].file;
    if (!file || this.#warming) return;
    this.#warming = warmFile(file).finally(() => (this.#warming = null));
  }
}

async function warmFile(path: string): Promise<void> {
  let f: Deno.FsFile | null = null;
  try {
    f = await Deno.open(path, { read: true });
    const buf = new Uint8Array(8 * 2 ** 20);
    while ((await f.read(buf)) !== null) {
      // the bytes are dropped: only the OS page cache keeps them
    }
  } catch {
    // warming is an optimisation: the load reads the file itself
  } finally {
    f?.close();
  }
}

// ------------------------------------------------------------------ admission

/**
 * Per model: bytes of its weights on the GPU and what a stage run adds above the pool bytes it starts with
 * (activations, caches, and on CPU adapters the kernels' repacked weight copies), as (batch, bytes) records: the
 * measured ones of earlier jobs, else one from a formula. A batch of b is estimated as max over records of
 * bytes·max(1, b/batch): linear above the measured batch, never below what that batch needed.
 */
export interface StageFootprint {
  /** Pool bytes of the model's weights (measured at load, else from the file's tensor metadata). */
  weights: number;
  records: { batch: number; bytes: number }[];
  source: "formula" | "measured";
}

/** Bytes a stage adds at batch `b` (see StageFootprint). */
export function excessAt(fp: StageFootprint, b: number): number {
  return fp.records.reduce((m, r) => Math.max(m, r.bytes * Math.max(1, b / r.batch)), 0);
}

/** Records a measured stage run (the formula's record is dropped at the first measurement). */
export function learn(fp: StageFootprint, batch: number, bytes: number): void {
  if (fp.source === "formula") fp.records = [];
  fp.source = "measured";
  const same = fp.records.find((r) => r.batch === batch);
  if (same) same.bytes = Math.max(same.bytes, bytes);
  else fp.records.push({ batch, bytes: Math.max(0, bytes) });
}

/** Pool bytes of a weight file's tensors as the loader allocates them (one buffer per tensor, by size class). */
export function weightFileBytes(ctx: GpuContext, infos: WeightInfo[]): number {
  return infos.reduce((s, i) => s + ctx.allocationBytes(i.shape, i.dtype as DType), 0);
}

/** Batch items each stage runs at once for a job of `n` images. */
export function stageBatches(n: number, coglmBatch: number, srBatch: number): Record<ModelSlot, number> {
  return {
    coglm: Math.min(n, coglmBatch),
    dsr: Math.min(n, srBatch),
    itersr: Math.min(n, srBatch),
    vqvae: 1,
  };
}

/**
 * A job's estimated peak pool bytes: the max over stages of (weights resident during the stage) + batch × per-item
 * bytes; by stage only the stage's own model is resident, with "all" every model is. `stages`: which stages run.
 */
export function estimatePeak(
  fp: Record<ModelSlot, StageFootprint>,
  mode: Residency,
  batches: Record<ModelSlot, number>,
  stages: readonly ModelSlot[] = MODEL_SLOTS,
): { peak: number; stage: ModelSlot; perStage: Record<string, number> } {
  const all = MODEL_SLOTS.reduce((s, m) => s + fp[m].weights, 0);
  const perStage: Record<string, number> = {};
  let peak = 0, at: ModelSlot = "coglm";
  for (const s of stages) {
    const v = (mode === "all" ? all : fp[s].weights) + excessAt(fp[s], batches[s]);
    perStage[s] = v;
    if (v > peak) [peak, at] = [v, s];
  }
  return { peak, stage: at, perStage };
}

/** Throws a 503 PipelineError when a job's estimated peak exceeds the budget, naming the largest n that fits. */
export function admit(
  o: {
    n: number;
    budget: number | null;
    mode: Residency;
    fp: Record<ModelSlot, StageFootprint>;
    coglmBatch: number;
    srBatch: number;
    stages: readonly ModelSlot[];
  },
): void {
  if (o.budget === null) return;
  const est = (n: number) => estimatePeak(o.fp, o.mode, stageBatches(n, o.coglmBatch, o.srBatch), o.stages);
  const e = est(o.n);
  if (e.peak <= o.budget) return;
  let fits = 0;
  for (let n = o.n - 1; n >= 1; n--) {
    if (est(n).peak <= o.budget) {
      fits = n;
      break;
    }
  }
  throw new PipelineError(
    `Not enough GPU memory for this job: its ${e.stage} stage needs an estimated ${gib(e.peak)} ` +
      `(residency ${o.mode}, ${o.n} image(s)), the budget is ${gib(o.budget)} (--gpu-memory). ` +
      (fits
        ? `Ask for at most ${fits} image(s)` +
          (o.mode === "all"
            ? ", or start the server with --residency stage."
            : ", or start the server with a smaller --batch.")
        : o.mode === "all"
        ? "Start the server with --residency stage (or a larger --gpu-memory if the GPU has it)."
        : "No job fits this budget with this model; raise --gpu-memory if the GPU has more memory."),
    503,
  );
}

/** A transformer stage's sizes for the formula estimate (model config). */
export interface TransformerSizes {
  layers: number;
  hidden: number;
  inner: number;
  heads: number;
}

/**
 * The formula estimate of what a stage adds above its weights for one batch item, used until a job has measured
 * it: f32 activations of the widest layer (residual, LayerNorm out, q/k/v, attention out, MLP inner: (7h + inner)
 * rows), attention scores, the logits, CogLM's f16 KV cache, the VQ-VAE's largest maps; on CPU adapters also the
 * kernels' cached weight copies (the windows matmul's packed copy ≈ the weights; the VQ-VAE's convolutions widen
 * f16 weights to f32). `maxBinding` caps blocked buffers (scores and logits run in blocks under it).
 */
export function formulaExcess(
  slot: ModelSlot,
  o: {
    cpu: boolean;
    weights: number;
    maxBinding: number;
    imageTokens: number;
    transformer?: TransformerSizes & { seq: number; attendRows: number };
    vqvae?: { outChannels: number; side: number };
  },
): number {
  const copies = o.cpu ? (slot === "vqvae" ? 2 : 1) * o.weights : 0;
  if (slot === "vqvae") {
    const v = o.vqvae!;
    const px = (8 * v.side) ** 2;
    const map = 4 * px * v.outChannels;
    return copies + 12 * map + Math.min(4 * (v.side * v.side) ** 2, o.maxBinding) + 32 * 2 ** 20;
  }
  const t = o.transformer!;
  const acts = 4 * t.attendRows * (7 * t.hidden + t.inner) + 4 * t.heads * t.attendRows * t.attendRows;
  // CogLM: a few rows of logits per step; SR: the high-res rows' logits and probabilities, in blocks under a binding.
  const logits = slot === "coglm"
    ? Math.min(4 * t.attendRows * o.imageTokens, o.maxBinding) + 4 * 4 * o.imageTokens
    : 2 * Math.min(4 * t.seq * o.imageTokens, o.maxBinding);
  const kv = slot === "coglm" ? 2 * t.layers * t.seq * t.hidden * 2 : 0;
  const seqActs = slot === "coglm" ? 0 : 4 * t.seq * (7 * t.hidden + t.inner);
  return copies + Math.max(acts, seqActs) + logits + kv;
}
