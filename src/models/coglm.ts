// CogLM, stage 1 of CogView2: SAT CachedAutoregressiveModel (sandwich LN) generating 20×20 image tokens from text
// with a KV cache (the prompt runs once at batch 1, then one token per step for the whole batch), and the
// inverse-prompting score (post-selection). Mirrors cogview2_text2image.py + SAT filling_sequence/evaluate_perplexity.
// Not the sampler: src/sampling/strategy.ts (CoglmStrategy on the GPU) draws the tokens; greedy argmax is built in.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { attention, type AttentionOptions, kvStore } from "../kernels/attention.ts";
import { argmaxRows, logProb } from "../kernels/softmax.ts";
import { type CancelSignal, throwIfCancelled } from "./cancel.ts";
import { type ClusterTable, loadModelClusters, sampleCoglm } from "./sampling.ts";
import { type ModelDir, openModelDir } from "./config.ts";
import {
  allocScratch,
  type AttentionHook,
  embed,
  type LnChain,
  loadTransformer,
  logits,
  releaseScratch,
  releaseTransformer,
  type Scratch,
  standardAttentionBlock,
  type TransformerDims,
  transformerDims,
  transformerForward,
  type TransformerWeights,
} from "./transformer.ts";

/** Position id of `<start_of_image>`; image token k sits at 513 + k (get_masks_and_position_ids_coglm). */
export const IMAGE_POSITION0 = 512;
/** Position id of the first image token in the post-selection sequence (arange(513, 513 + 400)). */
export const PERPLEXITY_IMAGE_POSITION0 = 513;

/** What a sampler needs to know about one generation step. */
export interface SampleStep {
  /** Output rows (the batch). */
  rows: number;
  /** true on the first step: every output row samples logits row 0 (the prompt's, expanded to the batch). */
  broadcast: boolean;
  /** 0-based index of the token being generated. */
  step: number;
  /** Job seed. */
  seed: number;
  /** Write row r's id to out[outOffset + r·outStride] (i32; outStride default 1). */
  out: Tensor;
  outOffset: number;
  outStride?: number;
}

/** Records the sampling of ids from logits [rows, imageTokens] (f32) into `s.out`; GPU only, no readback. */
export type TokenSampler = (ctx: GpuContext, logits: Tensor, s: SampleStep) => void;

/** Deterministic argmax over the image logits (the golden greedy cases). */
export const greedySampler: TokenSampler = (ctx, lg, s) => {
  const n = lg.shape[lg.shape.length - 1];
  argmaxRows(ctx, lg, {
    n,
    rows: s.rows,
    ld: s.broadcast ? 0 : n,
    out: s.out,
    oOff: s.outOffset,
    oStride: s.outStride,
  });
};

/**
 * CoglmStrategy (coglm_strategy.py) on the GPU: softmax(logits / temperature) summed per cluster, one of the top-k
 * clusters drawn by mass, then a token drawn from softmax(logits masked to that cluster / top_k_cluster). Seeded by
 * (seed, step, row) with the project's Philox generator (src/sampling/rng.ts), so the same seed, prompt, recipe and
 * batch give the same tokens.
 */
export function clusterSampler(
  table: ClusterTable,
  recipe: { temperature: number; topk: number; top_k_cluster: number },
): TokenSampler {
  return (ctx, lg, s) => {
    sampleCoglm(ctx, lg, {
      clusters: table,
      temperature: recipe.temperature,
      topkCluster: recipe.top_k_cluster,
      topk: recipe.topk,
      seed: s.seed,
      step: s.step,
      rows: s.rows,
      rowOffset: 0,
      // The first step's logits are one row (the prompt's) expanded to the batch, as filling_sequence does.
      groupSize: s.broadcast ? 1 : s.rows,
      groupStride: s.broadcast ? 0 : s.rows,
      out: s.out,
      outOffset: s.outOffset,
      outStride: s.outStride ?? 1,
    });
  };
}

/** The sampling parameters generate() reads from a recipe (src/sampling/recipes.ts Recipe has them). */
export interface CoglmRecipe {
  attn_plus: number;
  temperature?: number;
  topk?: number;
  top_k_cluster?: number;
}

export interface GenerateOptions {
  /** Template ids ending with <start_of_image> (icetk ids incl. the 20000 offset). */
  textIds: Int32Array;
  batch: number;
  seed: number;
  recipe: CoglmRecipe;
  signal?: CancelSignal;
  onStep?: (step: number, steps: number) => void;
  /** Image tokens per sample (default 400 = 20×20). */
  numTokens?: number;
  /** Default: the recipe's CoglmStrategy over the model's cluster labels (greedy when it has none). */
  sampler?: TokenSampler;
}

/** What CogLM.fill (text-guided completion) takes, besides an optional sampler (see fill). */
export interface FillOptions {
  tokens: Int32Array;
  positionIds: Int32Array;
  txtLen: number;
  contextLength: number;
  attends: (i: number, j: number) => boolean;
  batch: number;
  seed: number;
  recipe: unknown;
  onStep?: (step: number, steps: number) => void;
  signal?: CancelSignal;
}

interface LayerCache {
  k: Tensor;
  v: Tensor;
}

/** Mask and attention bias of one cached pass (src/kernels/attention.ts AttentionOptions). */
type PassMask = Pick<AttentionOptions, "mask" | "visible" | "visibleHost" | "logWeights">;

/**
 * transformerForward layer hook of a KV-cached pass: `rows` new rows per batch entry store their K/V in `cache`
 * at positions t0.. and attend to the cache's first t0 + rows keys. With `prompt`, the pass runs at batch 1 and
 * attends within its own qkv, its K/V broadcast to all `batch` cache entries.
 */
function cachedPass(
  ctx: GpuContext,
  dims: TransformerDims,
  w: TransformerWeights,
  cache: LayerCache[],
  o: PassMask & { batch: number; rows: number; t0: number; cacheLen?: number; prompt?: boolean },
): AttentionHook {
  const H = dims.hidden, R = o.rows, ld = 3 * H;
  const { mask, visible, visibleHost, logWeights } = o;
  return (layer, xn, out, s, chain) =>
    standardAttentionBlock(ctx, w.layers[layer], xn, out, s, (qkv, c) => {
      const { k, v } = cache[layer];
      // One new row per batch entry (a generation step): the attention dispatch stores it (storeNew), no kvStore.
      const fused = !o.prompt && R === 1;
      if (!fused) {
        kvStore(ctx, qkv, k, v, {
          batch: o.batch,
          rows: R,
          width: H,
          t0: o.t0,
          ld,
          srcBs: o.prompt ? 0 : R * ld,
          kOff: H,
          vOff: 2 * H,
        });
      }
      const common = {
        heads: dims.heads,
        headDim: dims.headDim,
        rows: R,
        mask,
        visible,
        visibleHost,
        logWeights,
      };
      if (o.prompt) {
        attention(ctx, {
          ...common,
          batch: 1,
          keys: R,
          q: { t: qkv, ld },
          k: { t: qkv, off: H, ld },
          v: { t: qkv, off: 2 * H, ld },
          out: { t: c, ld: H },
        });
      } else {
        const bs = o.cacheLen! * H;
        attention(ctx, {
          ...common,
          batch: o.batch,
          keys: o.t0 + R,
          q: { t: qkv, ld, bs: R * ld },
          k: { t: k, ld: H, bs },
          v: { t: v, ld: H, bs },
          out: { t: c, ld: H, bs: R * H },
          storeNew: fused ? { kOff: H, vOff: 2 * H } : undefined,
        });
      }
    }, chain);
}

export class CogLM {
  #clusters: Promise<ClusterTable> | null = null;
  /**
   * Decode steps between host syncs. Each step is one submit recorded with cached bind groups (every buffer is
   * reused); every SYNC_INTERVAL steps the host waits for the fence it placed SYNC_INTERVAL steps earlier, so at
   * most 2·SYNC_INTERVAL steps are queued and generating 400 tokens awaits the GPU 19 times plus the final token
   * read (20 host syncs). Deno's completion promises resolve a queue round trip late (~12 ms on lavapipe and on an
   * H100), so per-step waits capped the step rate; cancellation is checked on the host before each step.
   */
  static SYNC_INTERVAL = 20;

  /**
   * Storage of the KV cache: "f16" (default: half the bytes; attention reads it widened, accumulating in f32) or
   * "f32". An odd hidden size keeps f32 (f16 rows are stored in pairs).
   */
  kvDtype: "f16" | "f32" = "f16";

  /** Per layer, K and V caches [batch, len, hidden] in `kvDtype`. */
  #kvCache(batch: number, len: number): LayerCache[] {
    const H = this.dims.hidden;
    const dt = this.kvDtype === "f16" && H % 2 === 0 ? "f16" : "f32";
    return this.weights.layers.map(() => ({
      k: this.ctx.empty([batch, len, H], dt),
      v: this.ctx.empty([batch, len, H], dt),
    }));
  }

  private constructor(
    readonly ctx: GpuContext,
    readonly dims: TransformerDims,
    readonly weights: TransformerWeights,
    /** Width of the sampling logits (config image_tokens, 20000). */
    readonly imageTokens: number,
    readonly modelDir: ModelDir | null,
  ) {}

  /** Loads the CogLM weights of a converted model directory into GPU buffers. */
  static async load(ctx: GpuContext, modelDir: string | ModelDir): Promise<CogLM> {
    const md = typeof modelDir === "string" ? await openModelDir(modelDir) : modelDir;
    const dims = transformerDims(md.config.coglm);
    const src = await md.weights("coglm");
    try {
      const w = await loadTransformer(ctx, src, dims);
      return new CogLM(ctx, dims, w, md.config.image_tokens, md);
    } finally {
      src.close();
    }
  }

  /**
   * A model over weights already on the GPU (tests, benchmarks with random weights); `clusters` (a table of
   * `imageTokens` labels) enables the recipe's cluster sampling, which a model directory otherwise provides.
   */
  static fromWeights(
    ctx: GpuContext,
    dims: TransformerDims,
    w: TransformerWeights,
    imageTokens = 20000,
    clusters?: ClusterTable,
  ): CogLM {
    const m = new CogLM(ctx, dims, w, imageTokens, null);
    if (clusters) m.#clusters = Promise.resolve(clusters);
    return m;
  }

  /** Frees the weights now and the cluster table once its load settles (await it to see the pool without both). */
  release(): Promise<void> {
    releaseTransformer(this.weights);
    const c = this.#clusters;
    this.#clusters = null;
    return c ? c.then((t) => t.tensor.release(), () => {}) : Promise.resolve();
  }

  /** The image tokens' cluster labels (config clusters.file, cluster_label.npy) on the GPU, loaded once. */
  clusters(): Promise<ClusterTable> {
    const md = this.modelDir;
    if (this.#clusters) return this.#clusters;
    if (!md) return Promise.reject(new Error("CogLM: no model directory, so no cluster labels"));
    this.#clusters ??= loadModelClusters(this.ctx, md).then((t) => {
      if (t.width !== this.imageTokens) {
        t.tensor.release();
        throw new Error(`${md.config.clusters.file}: ${t.width} labels for ${this.imageTokens} image tokens`);
      }
      return t;
    });
    return this.#clusters;
  }

  /** The recipe's CoglmStrategy when the model has cluster labels and the recipe its parameters, else greedy. */
  async defaultSampler(recipe: CoglmRecipe): Promise<TokenSampler> {
    const { temperature, topk, top_k_cluster } = recipe;
    const hasLabels = !!this.modelDir || !!this.#clusters;
    if (!hasLabels || temperature === undefined || topk === undefined || top_k_cluster === undefined) {
      return greedySampler;
    }
    return clusterSampler(await this.clusters(), { temperature, topk, top_k_cluster });
  }

  /**
   * One non-cached forward of a batch of equal-length sequences (tokens [batch·L]) with the CogLM mask family:
   * row i sees keys j < max(ctxCols, i + 1); `logWeights` adds `value` on keys < cols. Returns the final-LayerNorm
   * output [batch·L, hidden] (the caller releases it).
   */
  forward(
    tokens: Int32Array,
    positionIds: Int32Array,
    o: { batch?: number; ctxCols: number; logWeights?: { cols: number; value: number } },
  ): Tensor {
    const { ctx, dims } = this;
    const batch = o.batch ?? 1, L = tokens.length / batch, H = dims.hidden;
    if (!Number.isInteger(L) || positionIds.length !== tokens.length) {
      throw new Error(
        `CogLM.forward: ${tokens.length} tokens / ${positionIds.length} positions for batch ${batch}`,
      );
    }
    const ids = ctx.upload(tokens, [tokens.length], "i32"),
      pos = ctx.upload(positionIds, [tokens.length], "i32");
    const s = allocScratch(ctx, dims, tokens.length);
    embed(ctx, this.weights, ids, { rows: tokens.length, out: s.h, posIds: pos });
    transformerForward(
      ctx,
      dims,
      this.weights,
      s,
      (layer, xn, out, sc) =>
        standardAttentionBlock(ctx, this.weights.layers[layer], xn, out, sc, (qkv, c) =>
          attention(ctx, {
            batch,
            heads: dims.heads,
            headDim: dims.headDim,
            rows: L,
            keys: L,
            q: { t: qkv, ld: 3 * H, bs: L * 3 * H },
            k: { t: qkv, off: H, ld: 3 * H, bs: L * 3 * H },
            v: { t: qkv, off: 2 * H, ld: 3 * H, bs: L * 3 * H },
            out: { t: c, ld: H, bs: L * H },
            mask: { ctxCols: o.ctxCols, causalOffset: 0 },
            logWeights: o.logWeights,
          })),
    );
    releaseScratch(s, s.xn);
    ids.release(), pos.release();
    return s.xn;
  }

  /** Logits of `rows` rows of a hidden tensor over the first `cols` vocabulary rows (default: the image tokens). */
  logits(
    hidden: Tensor,
    o: { rows: number; aOff?: number; lda?: number; cols?: number; out?: Tensor; ln?: LnChain },
  ): Tensor {
    return logits(this.ctx, this.weights, hidden, { ...o, cols: o.cols ?? this.imageTokens });
  }

  /**
   * Prompt pass of a KV-cached generation: forwards `rows` ids at batch 1 (attending within themselves under the
   * given mask), writes their K/V to every one of the `batch` cache entries from position 0, computes the last
   * row's image logits into `lg`, records `sample` (step 0 for the whole batch) and flushes.
   */
  private prefill(
    cache: LayerCache[],
    ids: Tensor,
    pos: Tensor,
    o: PassMask & { batch: number; rows: number; lg: Tensor; sample: () => void },
  ): void {
    const { ctx, dims, weights: w } = this;
    const sp = allocScratch(ctx, dims, o.rows);
    embed(ctx, w, ids, { rows: o.rows, out: sp.h, posIds: pos });
    transformerForward(ctx, dims, w, sp, cachedPass(ctx, dims, w, cache, { ...o, t0: 0, prompt: true }));
    this.logits(sp.xn, { rows: 1, aOff: (o.rows - 1) * dims.hidden, out: o.lg });
    o.sample();
    ctx.flush();
    releaseScratch(sp);
  }

  /**
   * SAT filling_sequence for `batch` samples of one prompt: the template ids are forwarded once (batch 1) and
   * their K/V broadcast to the batch, then each step feeds the batch's previous tokens. Returns `batch` arrays of
   * `numTokens` image codes.
   */
  async generate(o: GenerateOptions): Promise<Int32Array[]> {
    const { ctx, dims, weights: w } = this;
    const B = o.batch, n = o.numTokens ?? 400, P = o.textIds.length, txtLen = P - 1;
    if (!(B >= 1 && Number.isInteger(B))) {
      throw new Error(`CogLM.generate: batch ${B} must be a positive integer`);
    }
    if (P < 1) throw new Error("CogLM.generate: empty textIds (the template ends with <start_of_image>)");
    if (IMAGE_POSITION0 + n > dims.maxSeq || txtLen > IMAGE_POSITION0) {
      throw new Error(
        `CogLM.generate: ${txtLen} text + ${n} image tokens exceed the position table (${dims.maxSeq})`,
      );
    }
    const sampler = o.sampler ?? await this.defaultSampler(o.recipe);
    const logw = { cols: txtLen, value: o.recipe.attn_plus };
    const maxLen = P + n;
    const cache = this.#kvCache(B, maxLen);
    const positions = Int32Array.from({ length: P }, (_, i) => i < txtLen ? i : IMAGE_POSITION0 + i - txtLen);
    const ids = ctx.upload(o.textIds, [P], "i32"), pos = ctx.upload(positions, [P], "i32");
    const tok = ctx.empty([n * B], "i32"); // step-major: token k of sample b at k·B + b
    const lg = ctx.empty([B, this.imageTokens]);
    let sd: Scratch | undefined;
    try {
      // Prompt: batch 1, its K/V written to every batch entry's cache.
      this.prefill(cache, ids, pos, {
        batch: B,
        rows: P,
        mask: { ctxCols: txtLen, causalOffset: 0 },
        logWeights: logw,
        lg,
        sample: () =>
          sampler(ctx, lg, { rows: B, broadcast: true, step: 0, seed: o.seed, out: tok, outOffset: 0 }),
      });

      // One token per step for the batch; every buffer is reused, so bind groups are made once.
      sd = allocScratch(ctx, dims, B);
      const hook = (t: number) =>
        cachedPass(ctx, dims, w, cache, { batch: B, rows: 1, t0: t, cacheLen: maxLen, logWeights: logw });
      let fence = ctx.fence(); // the prompt pass
      for (let step = 1; step < n; step++) {
        if (step % CogLM.SYNC_INTERVAL === 0) {
          await fence.wait(); // bounds the queue to 2·SYNC_INTERVAL steps
          fence = ctx.fence();
        }
        throwIfCancelled(o.signal);
        o.onStep?.(step, n);
        embed(ctx, w, tok, { rows: B, idOff: (step - 1) * B, out: sd.h, pos: IMAGE_POSITION0 + step });
        transformerForward(ctx, dims, w, sd, hook(P + step - 1), { lnChain: true, deferFinal: true });
        this.logits(sd.xn, { rows: B, out: lg, ln: sd.finalChain });
        sampler(ctx, lg, { rows: B, broadcast: false, step, seed: o.seed, out: tok, outOffset: step * B });
        ctx.flush();
      }
      const all = await ctx.read(tok) as Int32Array;
      o.onStep?.(n, n);
      return Array.from({ length: B }, (_, b) => Int32Array.from({ length: n }, (_, k) => all[k * B + b]));
    } finally {
      ctx.flush();
      for (const c of cache) c.k.release(), c.v.release();
      if (sd) releaseScratch(sd); // also when cancelled between steps
      [ids, pos, tok, lg].forEach((t) => t.release());
    }
  }

  /**
   * Inverse-prompting score of each sample, as cogview2_text2image.py's --inverse-prompt: the sequence is the
   * sample's image tokens (positions 513.., mutually visible) then `captionIds` (<start_of_chinese> + prompt ids,
   * positions 0.., causal, seeing every image token); score = mean log-probability (full vocabulary) of caption
   * tokens 1.. given their prefix (SAT evaluate_perplexity, reduction 'mean'). Higher is better.
   */
  async perplexity(samples: Int32Array[], captionIds: Int32Array): Promise<number[]> {
    const { ctx, dims } = this;
    if (!samples.length) return [];
    const nImg = samples[0].length, Lc = captionIds.length, L = nImg + Lc, H = dims.hidden;
    if (samples.some((s) => s.length !== nImg)) throw new Error("CogLM.perplexity: samples differ in length");
    if (Lc < 2) return samples.map(() => NaN); // no scored token (the original divides 0 by 0)
    const positions = new Int32Array(L);
    for (let i = 0; i < L; i++) positions[i] = i < nImg ? PERPLEXITY_IMAGE_POSITION0 + i : i - nImg;
    const targets = ctx.upload(captionIds.subarray(1), [Lc - 1], "i32");
    // Samples per forward: keep every activation within one storage binding.
    const widest = Math.max(dims.inner, 3 * H) * 4 * L;
    const per = Math.max(1, Math.min(samples.length, Math.floor(ctx.maxBinding / widest)));
    const scores: number[] = [];
    const lg = ctx.empty([Lc - 1, dims.vocab]);
    try {
      for (let s0 = 0; s0 < samples.length; s0 += per) {
        const m = Math.min(per, samples.length - s0);
        const tokens = new Int32Array(m * L), pos = new Int32Array(m * L);
        for (let b = 0; b < m; b++) {
          tokens.set(samples[s0 + b], b * L);
          tokens.set(captionIds, b * L + nImg);
          pos.set(positions, b * L);
        }
        const hidden = this.forward(tokens, pos, { batch: m, ctxCols: nImg });
        const outs: Tensor[] = [];
        for (let b = 0; b < m; b++) {
          // Logits of positions nImg .. L-2 predict caption tokens 1 .. Lc-1.
          this.logits(hidden, { rows: Lc - 1, aOff: (b * L + nImg) * H, cols: dims.vocab, out: lg });
          outs.push(logProb(ctx, lg, targets, { n: dims.vocab, rows: Lc - 1 }));
        }
        for (const t of outs) {
          const r = await ctx.readF32(t);
          let sum = 0;
          for (let i = 0; i < Lc - 1; i++) sum += r[2 * i + 1];
          scores.push(sum / (Lc - 1));
          t.release();
        }
        hidden.release();
      }
    } finally {
      lg.release();
      targets.release();
    }
    return scores;
  }

  /**
   * SAT filling_sequence over an arbitrary sequence (text-guided completion): `tokens` holds the template ids,
   * <start_of_image>, the context codes and then the cells to fill (-1) with any provided ones among them;
   * `attends(i, j)` is the mask (get_masks_and_position_ids_comp; each row must see a prefix of the sequence) and
   * log_attention_weights add the recipe's attn_plus on the first `txtLen` columns. The fixed prefix runs once at
   * batch 1; each step forwards the batch's last sampled token plus any provided tokens after it. Returns `batch`
   * filled copies of `tokens`.
   */
  async fill(o: FillOptions & { sampler?: TokenSampler }): Promise<Int32Array[]> {
    const { ctx, dims, weights: w } = this;
    const L = o.tokens.length, B = o.batch, H = dims.hidden, txtLen = o.txtLen;
    const recipe = o.recipe as CoglmRecipe;
    let F = 0;
    while (F < L && o.tokens[F] >= 0) F++;
    if (F === 0) throw new Error("CogLM.fill: the sequence must start with given tokens");
    if (o.positionIds.length !== L) throw new Error("CogLM.fill: positionIds and tokens differ in length");
    // Each row's visible keys must be a prefix [0, vis); decode rows (>= F) must be causal.
    const vis = new Int32Array(L);
    for (let i = 0; i < L; i++) {
      let v = 0;
      while (v < L && o.attends(i, v)) v++;
      for (let j = v; j < L; j++) {
        if (o.attends(i, j)) {
          throw new Error(`CogLM.fill: row ${i} of the mask is not a prefix (sees ${j} after ${v})`);
        }
      }
      if (i >= F && v !== i + 1) {
        throw new Error(`CogLM.fill: row ${i} (generated) must see exactly keys 0..${i}`);
      }
      vis[i] = v;
    }
    const steps = Array.from(o.tokens).filter((t) => t < 0).length;
    if (steps === 0) return Array.from({ length: B }, () => Int32Array.from(o.tokens));
    const sampler = o.sampler ?? await this.defaultSampler(recipe);
    const logw = { cols: txtLen, value: recipe.attn_plus };
    const cache = this.#kvCache(B, L);
    const seqInit = new Int32Array(B * L);
    for (let b = 0; b < B; b++) seqInit.set(o.tokens, b * L);
    const seqT = ctx.upload(seqInit, [B, L], "i32");
    const pos = ctx.upload(o.positionIds, [L], "i32");
    const visT = ctx.upload(vis.subarray(0, F), [F], "i32");
    const lg = ctx.empty([B, this.imageTokens]);
    const scratch = new Map<number, Scratch>();
    try {
      this.prefill(cache, seqT, pos, {
        batch: B,
        rows: F,
        visible: visT,
        visibleHost: vis.subarray(0, F),
        logWeights: logw,
        lg,
        sample: () =>
          sampler(ctx, lg, {
            rows: B,
            broadcast: true,
            step: 0,
            seed: o.seed,
            out: seqT,
            outOffset: F,
            outStride: L,
          }),
      });
      let counter = F, index = F, done = 1;
      let fence = ctx.fence(); // the prefix pass; then a host sync every SYNC_INTERVAL steps, as generate

      while (counter < L - 1) {
        if (o.tokens[counter + 1] >= 0) {
          counter++;
          continue;
        }
        if (done % CogLM.SYNC_INTERVAL === 0) {
          await fence.wait();
          fence = ctx.fence();
        }
        throwIfCancelled(o.signal);
        o.onStep?.(done, steps);
        const R = counter - index + 1, t0 = index;
        let s = scratch.get(R);
        if (!s) scratch.set(R, s = allocScratch(ctx, dims, B * R));
        embed(ctx, w, seqT, {
          rows: B * R,
          idOff: index,
          rowsPerBatch: R,
          idBatchStride: L,
          out: s.h,
          posIds: pos,
          posOff: index,
        });
        transformerForward(
          ctx,
          dims,
          w,
          s,
          cachedPass(ctx, dims, w, cache, {
            batch: B,
            rows: R,
            t0,
            cacheLen: L,
            mask: { ctxCols: 0, causalOffset: t0 },
            logWeights: logw,
          }),
        );
        this.logits(s.xn, { rows: B, lda: R * H, aOff: (R - 1) * H, out: lg });
        sampler(ctx, lg, {
          rows: B,
          broadcast: false,
          step: done,
          seed: o.seed,
          out: seqT,
          outOffset: counter + 1,
          outStride: L,
        });
        ctx.flush();
        counter++;
        index = counter;
        done++;
      }
      const all = await ctx.read(seqT) as Int32Array;
      o.onStep?.(steps, steps);
      return Array.from({ length: B }, (_, b) => all.slice(b * L, (b + 1) * L));
    } finally {
      ctx.flush();
      for (const c of cache) c.k.release(), c.v.release();
      for (const s of scratch.values()) releaseScratch(s);
      [seqT, pos, visT, lg].forEach((t) => t.release());
    }
  }
}
