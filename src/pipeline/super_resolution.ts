// Stages 2 and 3 of CogView2: direct super-resolution (20×20 → 60×60 codes in one DSR step, cluster sampler) and
// iterative super-resolution (six LoPAR rounds of the iterative-SR model, per-round top-k), as sr_pipeline/ runs them.
// Not the models (src/models/dsr.ts, itersr.ts) and not the sampling kernels (src/kernels/sampling.ts): it batches,
// builds layouts, keeps both models resident or swaps them, computes logits in row blocks and places the samples.
import { join } from "node:path";
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { CancelPoints, type CancelSignal, driveSteps, type Steps } from "../models/cancel.ts";
import { readNpy } from "../formats/npy.ts";
import { type ClusterTable, clusterTable } from "../models/sampling.ts";
import type { SrPick } from "../models/sr_common.ts";
import type { WeightSource } from "../formats/weights.ts";
import { openModelDir, type SrConfig } from "../models/config.ts";
import { DsrModel } from "../models/dsr.ts";
import type { DirectSrOptions, IterativeSrOptions } from "./stages.ts";
import { throwIfAborted } from "./types.ts";
import { ItersrModel } from "../models/itersr.ts";
import {
  dsrInput,
  dsrMask,
  itersrInput,
  itersrMask,
  LOPAR_ROUNDS,
  LOPAR_TOPKS,
  loparRoundMask,
} from "../geometry/sr.ts";

/** DSR sampling parameters of a style recipe (src/sampling/recipes.ts); defaults are the original's. */
export interface DsrRecipe {
  topk_dsr: number;
  temp_cluster_dsr: number;
}
export const DEFAULT_DSR_RECIPE: DsrRecipe = { topk_dsr: 100, temp_cluster_dsr: 0.89 };

export interface SuperResolutionOptions {
  /** Sequences per forward (the original's max_bz = 4). */
  maxBatch?: number;
  /**
   * Keep both models on the GPU when their weights together take at most this many bytes; otherwise only the model
   * in use is resident and the other is loaded when needed (the original swaps from CPU memory). Default 8 GiB or
   * the COGVIEW2_SR_RESIDENT_BYTES environment variable.
   */
  maxResidentBytes?: number;
  /** Load the DSR model (and the iterative-SR one when both stay resident) now (default true); else on first use. */
  preload?: boolean;
}

/** Where the stage's models come from: a converted model directory (load) or explicit sources (fromSources). */
export interface SrSources {
  dsr: SrConfig;
  itersr: SrConfig;
  /** Image vocabulary (logits width): 20000. */
  imageTokens: number;
  /** Id of `<start_of_image>`. */
  boi: number;
  numClusters: number;
  /** Opens a model's weights (the caller closes them). */
  weights(name: "dsr" | "itersr"): Promise<WeightSource>;
  /** cluster_label.npy: one cluster per image token. */
  clusterLabels(): Promise<ArrayLike<number>>;
}

/** How the token of one logits row is chosen: greedy (conformance) or the original's samplers. */
export type SrDecode = "sample" | "greedy";

function defaultResidentBytes(): number {
  try {
    const v = Number(Deno.env.get("COGVIEW2_SR_RESIDENT_BYTES"));
    if (Number.isFinite(v) && v > 0) return v;
  } catch {
    // no env permission: the default
  }
  return 8 * 2 ** 30;
}

export class SuperResolution {
  #dsr: DsrModel | null = null;
  #itersr: ItersrModel | null = null;
  #clusters: ClusterTable | null = null;
  /** Sequences per forward (may be changed between calls). */
  maxBatch: number;
  /** `<start_of_image>`: image_tokens + the SentencePiece piece count (icetk appends the special tokens). */
  readonly boi: number;
  readonly imageTokens: number;
  /** Both models stay resident (decided at load from their weight sizes). */
  resident = true;
  /** Peak pool bytes of the last directSr / iterativeSr call (ctx.peakBytes after resetPeak). */
  lastPeakBytes = 0;

  private constructor(
    readonly ctx: GpuContext,
    readonly sources: SrSources,
    readonly options: SuperResolutionOptions,
  ) {
    this.maxBatch = Math.max(1, options.maxBatch ?? 4);
    this.imageTokens = sources.imageTokens;
    this.boi = sources.boi;
  }

  /** Opens a converted model directory and loads the DSR model (and the iterative-SR model when both fit). */
  static async load(
    ctx: GpuContext,
    modelDir: string,
    options: SuperResolutionOptions = {},
  ): Promise<SuperResolution> {
    const md = await openModelDir(modelDir);
    return await SuperResolution.fromSources(ctx, {
      dsr: md.config.dsr,
      itersr: md.config.itersr,
      imageTokens: md.config.image_tokens,
      boi: md.config.image_tokens + md.config.tokenizer.pieces,
      numClusters: md.config.clusters.num_clusters,
      weights: (name) => md.weights(name),
      clusterLabels: async () =>
        (await readNpy(join(md.dir, md.config.clusters.file))).data as ArrayLike<number>,
    }, options);
  }

  /** Builds the stage from explicit configs and weight sources (benchmarks with synthetic weights). */
  static async fromSources(
    ctx: GpuContext,
    sources: SrSources,
    options: SuperResolutionOptions = {},
  ): Promise<SuperResolution> {
    const sr = new SuperResolution(ctx, sources, options);
    const budget = options.maxResidentBytes ?? defaultResidentBytes();
    const [a, b] = await Promise.all([sr.#weightBytes("dsr"), sr.#weightBytes("itersr")]);
    sr.resident = a + b <= budget;
    if (options.preload === false) return sr;
    await sr.dsrModel();
    if (sr.resident) await sr.itersrModel();
    return sr;
  }

  async #weightBytes(name: "dsr" | "itersr"): Promise<number> {
    const src = await this.sources.weights(name);
    try {
      return src.names().reduce((s, n) => s + src.info(n).byteLength, 0);
    } finally {
      src.close();
    }
  }

  /** The DSR model, loaded (and the iterative-SR model unloaded when they do not both fit). */
  async dsrModel(): Promise<DsrModel> {
    if (this.#dsr) return this.#dsr;
    if (!this.resident && this.#itersr) {
      this.#itersr.release();
      this.#itersr = null;
      this.ctx.trim();
    }
    const src = await this.sources.weights("dsr");
    try {
      this.#dsr = await DsrModel.load(this.ctx, src, this.sources.dsr);
    } finally {
      src.close();
    }
    return this.#dsr;
  }

  /** The iterative-SR model, loaded (and the DSR model unloaded when they do not both fit). */
  async itersrModel(): Promise<ItersrModel> {
    if (this.#itersr) return this.#itersr;
    if (!this.resident && this.#dsr) {
      this.#dsr.release();
      this.#dsr = null;
      this.ctx.trim();
    }
    const src = await this.sources.weights("itersr");
    try {
      this.#itersr = await ItersrModel.load(this.ctx, src, this.sources.itersr);
    } finally {
      src.close();
    }
    return this.#itersr;
  }

  async #clusterTable(): Promise<ClusterTable> {
    if (this.#clusters) return this.#clusters;
    this.#clusters = clusterTable(this.ctx, await this.sources.clusterLabels(), this.sources.numClusters);
    return this.#clusters;
  }

  /** Whether a model is on the GPU now. */
  loaded(name: "dsr" | "itersr"): boolean {
    return (name === "dsr" ? this.#dsr : this.#itersr) !== null;
  }

  /** Frees one model's weights (DSR's with the cluster table its sampler reads); it loads again on next use. */
  unload(name: "dsr" | "itersr"): void {
    if (name === "dsr") {
      this.#dsr?.release();
      this.#clusters?.tensor.release();
      this.#dsr = this.#clusters = null;
    } else {
      this.#itersr?.release();
      this.#itersr = null;
    }
  }

  /** Frees both models and the cluster table. */
  release(): void {
    this.#dsr?.release();
    this.#itersr?.release();
    this.#clusters?.tensor.release();
    this.#dsr = this.#itersr = this.#clusters = null;
  }

  /**
   * Direct super-resolution: each 400-code low-res image → 3600 high-res codes, one DSR step, cluster sampler with
   * the recipe's topk_dsr / temp_cluster_dsr (temperature 1, as the original calls it). `textIds` excludes the final
   * `<start_of_image>`. Sample k draws with RNG rows k·3600.. so results do not depend on the batch split.
   */
  /**
   * Sequences per forward: maxBatch, fewer when a chunk's hidden states [chunk·seqLen, hidden] f32 — the largest
   * activation the transformer binds whole (its wider ones are split by rows) — would exceed the adapter's storage
   * binding (published widths on a 128 MiB adapter: 4096 × 2560 × 4 B = 40 MiB per sequence, so 3). The codes do not
   * depend on the chunking (draws are keyed by image index).
   */
  chunkSize(model: { geometry: { seqLen: number }; dims: { hidden: number } }): number {
    const perSeq = model.geometry.seqLen * model.dims.hidden * 4;
    return Math.max(1, Math.min(this.maxBatch, Math.floor(this.ctx.maxBinding / perSeq)));
  }

  async directSr(o: DirectSrOptions & { recipe?: DsrRecipe; decode?: SrDecode }): Promise<Int32Array[]> {
    const ctx = this.ctx;
    ctx.resetPeak();
    const model = await this.dsrModel();
    const recipe = o.recipe ?? DEFAULT_DSR_RECIPE;
    const table = o.decode === "greedy" ? null : await this.#clusterTable();
    const g = model.geometry, cfg = model.cfg, L = g.seqLen;
    const out: Int32Array[] = [];
    const per = this.chunkSize(model);
    const chunks = Math.ceil(o.lowres.length / per);
    // Every chunk of maxBatch images is recorded, then all their ids are read with one wait: one host sync per call.
    const pending: Tensor[] = [];
    try {
      for (let c = 0; c < chunks; c++) {
        throwIfAborted(o.signal);
        const imgs = o.lowres.slice(c * per, (c + 1) * per);
        const B = imgs.length;
        const tokens = new Int32Array(B * L), pos = new Int32Array(B * L);
        let nPad = 0;
        imgs.forEach((img, b) => {
          const inp = dsrInput(cfg, o.textIds, img, this.boi);
          tokens.set(inp.tokens, b * L);
          pos.set(inp.positionIds, b * L);
          nPad = inp.nPad;
        });
        const pick: SrPick = !table ? { kind: "greedy" } : {
          kind: "cluster",
          clusters: table,
          topk: Math.min(recipe.topk_dsr, table.numClusters),
          temperature2: recipe.temp_cluster_dsr,
          seed: o.seed,
          step: 0,
        };
        pending.push(
          await srRecord(
            ctx,
            o.signal,
            model.forwardSteps(tokens, pos, B, dsrMask(cfg, nPad)),
            (hidden) => model.pickHighres(hidden, B, pick, this.imageTokens, c * per),
          ),
        );
        o.onStep?.(c + 1, chunks);
      }
    } catch (e) {
      for (const t of pending) t.release();
      throw e;
    }
    for (const got of await readIds(ctx, pending.splice(0))) {
      for (let b = 0; b < got.length / g.s1; b++) out.push(got.slice(b * g.s1, (b + 1) * g.s1));
    }
    this.lastPeakBytes = ctx.peakBytes;
    return out;
  }

  /**
   * Iterative super-resolution (LoPAR): six rounds; round r re-masks the cells whose tiled `mask_raw` value is ≥ r
   * (and, with `inputMask`, only inside it) with `<start_of_image>` and re-predicts them with top-k
   * [60,40,40,40,20,20,10][r] sampling; every other code is kept. Text: the first layout[0] ids, left-padded.
   */
  async iterativeSr(
    o: IterativeSrOptions & {
      decode?: SrDecode;
      /** Run only the first `rounds` LoPAR rounds (benchmarks: round 1 re-predicts the most cells); default all. */
      rounds?: number;
      /** Called with each round's model input (tests, conformance). */
      onRoundInput?: (round: number, sample: number, tokens: Int32Array) => void;
    },
  ): Promise<Int32Array[]> {
    const ctx = this.ctx;
    ctx.resetPeak();
    const model = await this.itersrModel();
    const g = model.geometry, cfg = model.cfg, L = g.seqLen, T = g.textLen;
    if (o.inputMask && o.inputMask.length !== g.s1) throw new Error(`inputMask must have ${g.s1} entries`);
    const out: Int32Array[] = [];
    const per = this.chunkSize(model);
    const chunks = Math.ceil(o.highres.length / per);
    const nRounds = Math.min(o.rounds ?? LOPAR_ROUNDS, LOPAR_ROUNDS);
    const steps = chunks * nRounds;
    const roundMasks = Array.from(
      { length: LOPAR_ROUNDS },
      (_, r) => loparRoundMask(g.highSide, r + 1, o.inputMask),
    );
    // Rounds outer, chunks of maxBatch images inner: each round records every chunk, then reads all their ids with
    // one wait (one host sync per round at any batch); the next round's inputs need those ids on the host.
    const cur = o.highres.map((x) => Int32Array.from(x));
    for (let r = 1; r <= nRounds; r++) {
      throwIfAborted(o.signal);
      const m = roundMasks[r - 1];
      const pending: { ids: Tensor; rows: number[]; c: number }[] = [];
      try {
        for (let c = 0; c < chunks; c++) {
          throwIfAborted(o.signal);
          const chunk = cur.slice(c * per, (c + 1) * per);
          const B = chunk.length;
          const tokens = new Int32Array(B * L), pos = new Int32Array(B * L);
          // Rows to predict: the cells holding <start_of_image> after masking (the original's `unfixed`).
          const rows: number[] = [];
          let nPad = 0;
          chunk.forEach((img, b) => {
            for (let i = 0; i < g.s1; i++) if (m[i]) img[i] = this.boi;
            const inp = itersrInput(cfg, o.textIds, img);
            tokens.set(inp.tokens, b * L);
            pos.set(inp.positionIds, b * L);
            nPad = inp.nPad;
            o.onRoundInput?.(r, c * per + b, inp.tokens);
            for (let i = 0; i < g.s1; i++) if (img[i] === this.boi) rows.push(b * L + T + i);
          });
          if (rows.length) {
            // Logits / top-k over the rows to predict only; sample k draws with RNG rows k·3600...
            const pick: SrPick = o.decode === "greedy"
              ? { kind: "greedy" }
              : { kind: "topk", topk: LOPAR_TOPKS[r], seed: o.seed, step: r };
            const ids = await srRecord(
              ctx,
              o.signal,
              model.forwardSteps(tokens, pos, B, itersrMask(cfg, nPad), new Float32Array(T)),
              (hidden) => model.pickRows(hidden, rows, pick, this.imageTokens, c * per),
            );
            pending.push({ ids, rows, c });
          }
          o.onStep?.((r - 1) * chunks + c + 1, steps);
        }
      } catch (e) {
        for (const p of pending) p.ids.release();
        throw e;
      }
      const got = await readIds(ctx, pending.map((p) => p.ids));
      pending.forEach((p, j) => {
        p.rows.forEach((row, k) => {
          const b = Math.floor(row / L);
          cur[p.c * per + b][row - b * L - T] = got[j][k];
        });
      });
    }
    out.push(...cur);
    this.lastPeakBytes = ctx.peakBytes;
    return out;
  }
}

/**
 * One SR forward of a batch chunk: the model's forward, then its pick over the hidden states; returns the picked ids
 * on the GPU, not read. With a signal, both are submitted in steps (each layer's attention block, each layer, each
 * logits block) with a cancellation point between them; without, they are only recorded. The hidden states go back
 * to the pool here; the caller reads every chunk's ids with one wait (readIds) and releases them.
 */
async function srRecord(
  ctx: GpuContext,
  signal: CancelSignal | undefined,
  forward: Steps<Tensor>,
  pick: (hidden: Tensor) => Steps<Tensor>,
): Promise<Tensor> {
  const points = CancelPoints.of(ctx, signal);
  const hidden = await driveSteps(forward, points);
  try {
    return await driveSteps(pick(hidden), points);
  } finally {
    hidden.release();
  }
}

/** Reads the ids of every chunk of a round with one host sync, then releases them. */
async function readIds(ctx: GpuContext, ids: Tensor[]): Promise<Int32Array[]> {
  try {
    return (await ctx.readMany(ids)) as Int32Array[];
  } finally {
    for (const t of ids) t.release();
  }
}
