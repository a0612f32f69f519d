// Plain TypeScript CPU forward of SwissArmyTransformer's BaseTransformer (CogLM: CachedAutoregressiveModel,
// layernorm_order 'sandwich' or 'pre') over one sequence, with explicit mask and log_attention_weights.
// Not fast and not cached: the twin that src/models/transformer.ts / coglm.ts are checked against.
import { type CpuWeights, geluSat, layerNorm, linear } from "./sr.ts";
import { standardAttentionRef } from "./attention.ts";

export interface RefTransformerConfig {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  layernorm_epsilon: number;
  layernorm_order: string;
}

export interface RefForwardInput {
  tokens: ArrayLike<number>;
  positionIds: ArrayLike<number>;
  /** 0/1 [L, L] (undefined: all visible). */
  mask?: ArrayLike<number>;
  /** Additive [L, L] (undefined: none). */
  logWeights?: ArrayLike<number>;
}

/** final_layernorm output [L, hidden] of BaseTransformer.forward. */
export function transformerForwardRef(
  w: CpuWeights,
  cfg: RefTransformerConfig,
  inp: RefForwardInput,
): Float32Array {
  const H = cfg.hidden_size, L = inp.tokens.length, eps = cfg.layernorm_epsilon;
  const heads = cfg.num_attention_heads, d = H / heads;
  const we = w("transformer.word_embeddings.weight").data,
    pe = w("transformer.position_embeddings.weight").data;
  let h = new Float32Array(L * H);
  for (let i = 0; i < L; i++) {
    for (let c = 0; c < H; c++) h[i * H + c] = we[inp.tokens[i] * H + c] + pe[inp.positionIds[i] * H + c];
  }
  const sandwich = cfg.layernorm_order === "sandwich";
  for (let l = 0; l < cfg.num_layers; l++) {
    const p = `transformer.layers.${l}.`;
    const t = (n: string) => w(p + n);
    const xn = layerNorm(h, L, H, t("input_layernorm.weight"), t("input_layernorm.bias"), eps);
    const qkv = linear(xn, L, H, t("attention.query_key_value.weight"), t("attention.query_key_value.bias"));
    const q = new Float32Array(L * H), k = new Float32Array(L * H), v = new Float32Array(L * H);
    for (let i = 0; i < L; i++) {
      q.set(qkv.subarray(i * 3 * H, i * 3 * H + H), i * H);
      k.set(qkv.subarray(i * 3 * H + H, i * 3 * H + 2 * H), i * H);
      v.set(qkv.subarray(i * 3 * H + 2 * H, i * 3 * H + 3 * H), i * H);
    }
    const ctxv = standardAttentionRef(q, k, v, {
      heads,
      d,
      rows: L,
      keys: L,
      mask: inp.mask,
      logw: inp.logWeights,
    });
    let a = linear(ctxv, L, H, t("attention.dense.weight"), t("attention.dense.bias"));
    if (sandwich) a = layerNorm(a, L, H, t("third_layernorm.weight"), t("third_layernorm.bias"), eps);
    const hm = new Float32Array(L * H);
    for (let i = 0; i < L * H; i++) hm[i] = h[i] + a[i];
    const mi = layerNorm(
      hm,
      L,
      H,
      t("post_attention_layernorm.weight"),
      t("post_attention_layernorm.bias"),
      eps,
    );
    const inner = t("mlp.dense_h_to_4h.weight").shape[0];
    const m1 = linear(mi, L, H, t("mlp.dense_h_to_4h.weight"), t("mlp.dense_h_to_4h.bias")).map(geluSat);
    let m2 = linear(m1, L, inner, t("mlp.dense_4h_to_h.weight"), t("mlp.dense_4h_to_h.bias"));
    if (sandwich) m2 = layerNorm(m2, L, H, t("fourth_layernorm.weight"), t("fourth_layernorm.bias"), eps);
    h = new Float32Array(L * H);
    for (let i = 0; i < L * H; i++) h[i] = hm[i] + m2[i];
  }
  return layerNorm(
    h,
    L,
    H,
    w("transformer.final_layernorm.weight"),
    w("transformer.final_layernorm.bias"),
    eps,
  );
}

/** logits [rows, cols] = hidden rows · word_embeddings[:cols]ᵀ. */
export function logitsRef(w: CpuWeights, hidden: Float32Array, rows: number, cols: number): Float32Array {
  const we = w("transformer.word_embeddings.weight");
  const H = we.shape[1];
  return linear(hidden.subarray(0, rows * H), rows, H, {
    data: we.data.subarray(0, cols * H),
    shape: [cols, H],
  });
}

/** get_masks_and_position_ids_coglm: causal mask with the first `txtLen` columns visible to all; positions. */
export function coglmInputsRef(len: number, txtLen: number): { mask: Float32Array; positionIds: Int32Array } {
  const mask = new Float32Array(len * len);
  for (let i = 0; i < len; i++) {
    for (let j = 0; j < len; j++) {
      mask[i * len + j] = j <= i || j < txtLen ? 1 : 0;
    }
  }
  const positionIds = Int32Array.from({ length: len }, (_, i) => i < txtLen ? i : 512 + i - txtLen);
  return { mask, positionIds };
}

/**
 * Post-selection score (evaluate_perplexity): the mean log-probability of each caption token given the image tokens
 * (positions 513.., fully visible) and the caption before it (positions 0.., causal), full-vocabulary logits.
 */
export function coglmPerplexityRef(
  w: CpuWeights,
  cfg: RefTransformerConfig,
  image: ArrayLike<number>,
  caption: ArrayLike<number>,
  vocab: number,
): number {
  const nImg = image.length, tokens = [...Array.from(image), ...Array.from(caption)], L = tokens.length;
  const positionIds = tokens.map((_, i) => i < nImg ? 513 + i : i - nImg);
  const mask = new Float32Array(L * L);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) mask[i * L + j] = j < nImg || (i >= nImg && j <= i) ? 1 : 0;
  }
  const lg = logitsRef(w, transformerForwardRef(w, cfg, { tokens, positionIds, mask }), L, vocab);
  let sum = 0;
  for (let i = nImg; i < L - 1; i++) {
    const row = lg.subarray(i * vocab, (i + 1) * vocab);
    let mx = -Infinity;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    sum += row[tokens[i + 1]] - (mx + Math.log(z));
  }
  return sum / (L - 1 - nImg);
}
