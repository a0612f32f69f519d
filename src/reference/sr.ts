// Plain TypeScript CPU forward of CogView2's DSR (DsrModel, sparse_attention_2d_light) and iterative-SR (ItersrModel,
// sparse_attention_2d_text) transformers, one sequence at a time, in float64 arithmetic over float32 storage.
// Not fast: it is the twin the GPU models (src/models/dsr.ts, itersr.ts) and the golden cases are checked against.
import type { WeightSource } from "../formats/weights.ts";
import { QSCALE_SUFFIX } from "../formats/int8.ts";
import { dequantizeInt8Ref } from "./int8.ts";
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from "../gpu/f16.ts";
import {
  crossWindow,
  dsrGeometry,
  itersrGeometry,
  MASKED_SCORE,
  ownWindow,
  type SrLayoutConfig,
  type Window,
} from "../geometry/sr.ts";

export interface CpuTensor {
  data: Float32Array;
  shape: number[];
}

/** Named float weights (a checkpoint's keys); throws for a missing name. */
export type CpuWeights = (name: string) => CpuTensor;

/** Reads every tensor of a weight source as float32 (small models only: tests and the tiny fixture). */
export async function loadCpuWeights(src: WeightSource): Promise<CpuWeights> {
  const map = new Map<string, CpuTensor>();
  for (const name of src.names()) {
    const info = src.info(name);
    const raw = await src.read(name);
    const copy = raw.slice();
    let data: Float32Array;
    if (info.dtype === "f16") data = f16BitsToF32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    else if (info.dtype === "bf16") {
      data = bf16BitsToF32(new Uint16Array(copy.buffer, 0, copy.byteLength / 2));
    } else if (info.dtype === "f32") data = new Float32Array(copy.buffer, 0, copy.byteLength / 4);
    else if (info.dtype === "i8" && src.has(name + QSCALE_SUFFIX)) {
      // int8 weights (convert --weights int8): dequantised with their per-group scales.
      const si = src.info(name + QSCALE_SUFFIX);
      const sb = (await src.read(name + QSCALE_SUFFIX)).slice();
      const group = info.shape[info.shape.length - 1] / si.shape[si.shape.length - 1];
      data = dequantizeInt8Ref(
        new Int8Array(copy.buffer, 0, copy.byteLength),
        new Float32Array(sb.buffer),
        group,
      );
    } else continue;
    map.set(name, { data, shape: info.shape });
  }
  return (name: string) => {
    const t = map.get(name);
    if (!t) throw new Error(`${src.origin}: no tensor ${name}`);
    return t;
  };
}

/** The model config fields the forward needs (src/models/config.ts SrConfig satisfies it). */
export interface SrModelConfig extends SrLayoutConfig {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  layernorm_epsilon?: number;
  layernorm_order?: string;
}

// ------------------------------------------------------------------ building blocks

/** y[M, N] = x[M, K]·Wᵀ + b (W [N, K], nn.Linear). */
export function linear(x: Float32Array, M: number, K: number, w: CpuTensor, b?: CpuTensor): Float32Array {
  const N = w.shape[0];
  if (w.shape[1] !== K) throw new Error(`linear: weight [${w.shape}] does not take K=${K}`);
  const y = new Float32Array(M * N);
  const W = w.data;
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      let s = b ? b.data[n] : 0;
      const wo = n * K;
      for (let k = 0; k < K; k++) s += x[xo + k] * W[wo + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

export function layerNorm(
  x: Float32Array,
  M: number,
  H: number,
  w: CpuTensor,
  b: CpuTensor,
  eps: number,
): Float32Array {
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[m * H + i];
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[m * H + i] - mean) ** 2;
    const r = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) y[m * H + i] = (x[m * H + i] - mean) * r * w.data[i] + b.data[i];
  }
  return y;
}

/** SwissArmyTransformer's tanh-approximation GELU. */
export function geluSat(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x)));
}

/** Cells of a non-causal f_similar window for query (i, j) on a side×side query grid over a kside×kside key grid. */
export function windowCells(i: number, j: number, side: number, kside: number, w: Window): Int32Array {
  const a = side / kside;
  const ci = Math.floor(i / a), cj = Math.floor(j / a);
  const out = new Int32Array(w.kH * w.kW);
  for (let p = 0; p < w.kH * w.kW; p++) {
    const y = ci - (w.kH >> 1) + Math.floor(p / w.kW), x = cj - (w.kW >> 1) + (p % w.kW);
    out[p] = y >= 0 && y < kside && x >= 0 && x < kside ? y * kside + x : -1;
  }
  return out;
}

// ------------------------------------------------------------------ the layer stack

type AttentionFn = (x: Float32Array, layer: number) => Float32Array;

function transformerStack(
  w: CpuWeights,
  cfg: SrModelConfig,
  tokens: ArrayLike<number>,
  positions: ArrayLike<number>,
  split: number,
  attention: AttentionFn,
): Float32Array {
  const H = cfg.hidden_size, L = tokens.length, eps = cfg.layernorm_epsilon ?? 1e-5;
  const sandwich = (cfg.layernorm_order ?? "sandwich") === "sandwich";
  const we = w("transformer.word_embeddings.weight"), pe = w("transformer.position_embeddings.weight");
  const pe2 = w("mixins.extra_position_embedding.position_embeddings.weight");
  let h = new Float32Array(L * H);
  for (let t = 0; t < L; t++) {
    const tok = tokens[t];
    const [tab, row] = t < split ? [pe, positions[t]] : [pe2, positions[t] - cfg.max_sequence_length];
    if (tok < 0 || tok >= we.shape[0]) throw new Error(`token ${tok} at ${t} is outside the vocabulary`);
    if (row < 0 || row >= tab.shape[0]) {
      throw new Error(`position ${positions[t]} at ${t} is outside the tables`);
    }
    for (let i = 0; i < H; i++) h[t * H + i] = we.data[tok * H + i] + tab.data[row * H + i];
  }
  for (let l = 0; l < cfg.num_layers; l++) {
    const p = `transformer.layers.${l}.`;
    const x = layerNorm(h, L, H, w(p + "input_layernorm.weight"), w(p + "input_layernorm.bias"), eps);
    let a = attention(x, l);
    if (sandwich) a = layerNorm(a, L, H, w(p + "third_layernorm.weight"), w(p + "third_layernorm.bias"), eps);
    const h2 = new Float32Array(L * H);
    for (let i = 0; i < L * H; i++) h2[i] = h[i] + a[i];
    const x2 = layerNorm(
      h2,
      L,
      H,
      w(p + "post_attention_layernorm.weight"),
      w(p + "post_attention_layernorm.bias"),
      eps,
    );
    const inner = w(p + "mlp.dense_h_to_4h.weight").shape[0];
    const u = linear(x2, L, H, w(p + "mlp.dense_h_to_4h.weight"), w(p + "mlp.dense_h_to_4h.bias"));
    for (let i = 0; i < u.length; i++) u[i] = geluSat(u[i]);
    let m = linear(u, L, inner, w(p + "mlp.dense_4h_to_h.weight"), w(p + "mlp.dense_4h_to_h.bias"));
    if (sandwich) {
      m = layerNorm(m, L, H, w(p + "fourth_layernorm.weight"), w(p + "fourth_layernorm.bias"), eps);
    }
    for (let i = 0; i < L * H; i++) h2[i] += m[i];
    h = h2;
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

/** Softmax of `s` in place (float64 accumulation). */
function softmaxInPlace(s: Float64Array): void {
  let mx = -Infinity;
  for (const v of s) mx = Math.max(mx, v);
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i] = Math.exp(s[i] - mx);
  for (let i = 0; i < s.length; i++) s[i] /= sum;
}

/** Standard masked attention of rows [0, s) over columns [0, s) of one head. */
function fullAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  ld: number,
  qOff: number,
  kOff: number,
  vOff: number,
  s: number,
  d: number,
  mask: ArrayLike<number>,
  logW: ArrayLike<number> | undefined,
  out: Float32Array,
  outLd: number,
  outOff: number,
): void {
  const scale = 1 / Math.sqrt(d);
  const sc = new Float64Array(s);
  for (let i = 0; i < s; i++) {
    for (let j = 0; j < s; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[i * ld + qOff + c] * scale * k[j * ld + kOff + c];
      if (logW) dot += logW[i * s + j];
      const mk = mask[i * s + j];
      sc[j] = dot * mk + MASKED_SCORE * (1 - mk);
    }
    softmaxInPlace(sc);
    for (let c = 0; c < d; c++) {
      let acc = 0;
      for (let j = 0; j < s; j++) acc += sc[j] * v[j * ld + vOff + c];
      out[i * outLd + outOff + c] = acc;
    }
  }
}

// ------------------------------------------------------------------ DSR

export interface DsrForwardInput {
  tokens: ArrayLike<number>;
  positionIds: ArrayLike<number>;
  /** [layout[1], layout[1]] base-attention mask (1 visible). */
  mask: ArrayLike<number>;
  /** [layout[1], layout[1]] added to base scores before masking (zeros in the original). */
  logAttentionWeights?: ArrayLike<number>;
}

/** DsrModel forward of one sequence (layout[2] tokens): the final-layernorm output [layout[2], hidden]. */
export function dsrForwardCpu(w: CpuWeights, cfg: SrModelConfig, inp: DsrForwardInput): Float32Array {
  const g = dsrGeometry(cfg);
  const H = cfg.hidden_size, nh = cfg.num_attention_heads, d = H / nh;
  if (inp.tokens.length !== g.seqLen) {
    throw new Error(`DSR takes ${g.seqLen} tokens, got ${inp.tokens.length}`);
  }
  const own = ownWindow(cfg), cross = crossWindow(cfg);
  // Window cells per high-res query, shared by all layers and heads.
  const ownCells: Int32Array[] = [], crossCells: Int32Array[] = [];
  for (let i = 0; i < g.highSide; i++) {
    for (let j = 0; j < g.highSide; j++) {
      ownCells.push(windowCells(i, j, g.highSide, g.highSide, own));
      crossCells.push(windowCells(i, j, g.highSide, g.lowSide, cross));
    }
  }
  const attention: AttentionFn = (x, l) => {
    const p = `transformer.layers.${l}.attention.`;
    const qkv0 = linear(
      x.subarray(0, g.s0 * H),
      g.s0,
      H,
      w(p + "query_key_value.weight"),
      w(p + "query_key_value.bias"),
    );
    const qkv1 = linear(
      x.subarray(g.s0 * H),
      g.s1,
      H,
      w(`mixins.attention_plus.query_key_value.${l}.weight`),
      w(`mixins.attention_plus.query_key_value.${l}.bias`),
    );
    const ctx0 = new Float32Array(g.s0 * H), ctx1 = new Float32Array(g.s1 * H);
    const scale = 1 / Math.sqrt(d);
    const nc = cross.kH * cross.kW, no = own.kH * own.kW;
    const sc = new Float64Array(nc + no);
    for (let h = 0; h < nh; h++) {
      fullAttention(
        qkv0,
        qkv0,
        qkv0,
        3 * H,
        h * d,
        H + h * d,
        2 * H + h * d,
        g.s0,
        d,
        inp.mask,
        inp.logAttentionWeights,
        ctx0,
        H,
        h * d,
      );
      for (let r = 0; r < g.s1; r++) {
        const qo = r * 3 * H + h * d;
        const cc = crossCells[r], oc = ownCells[r];
        for (let p2 = 0; p2 < nc; p2++) {
          if (cc[p2] < 0) {
            sc[p2] = MASKED_SCORE;
            continue;
          }
          const ko = (g.textLen + cc[p2]) * 3 * H + H + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv1[qo + c] * scale * qkv0[ko + c];
          sc[p2] = dot;
        }
        for (let p2 = 0; p2 < no; p2++) {
          if (oc[p2] < 0) {
            sc[nc + p2] = MASKED_SCORE;
            continue;
          }
          const ko = oc[p2] * 3 * H + H + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv1[qo + c] * scale * qkv1[ko + c];
          sc[nc + p2] = dot;
        }
        softmaxInPlace(sc);
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let p2 = 0; p2 < nc; p2++) {
            if (cc[p2] >= 0) acc += sc[p2] * qkv0[(g.textLen + cc[p2]) * 3 * H + 2 * H + h * d + c];
          }
          for (let p2 = 0; p2 < no; p2++) {
            if (oc[p2] >= 0) acc += sc[nc + p2] * qkv1[oc[p2] * 3 * H + 2 * H + h * d + c];
          }
          ctx1[r * H + h * d + c] = acc;
        }
      }
    }
    const out = new Float32Array(g.seqLen * H);
    out.set(linear(ctx0, g.s0, H, w(p + "dense.weight"), w(p + "dense.bias")), 0);
    out.set(
      linear(
        ctx1,
        g.s1,
        H,
        w(`mixins.attention_plus.dense.${l}.weight`),
        w(`mixins.attention_plus.dense.${l}.bias`),
      ),
      g.s0 * H,
    );
    return out;
  };
  return transformerStack(w, cfg, inp.tokens, inp.positionIds, g.s0, attention);
}

// ------------------------------------------------------------------ iterative SR

export interface ItersrForwardInput {
  tokens: ArrayLike<number>;
  positionIds: ArrayLike<number>;
  /** [layout[0]] text-column mask (1 visible). */
  mask: ArrayLike<number>;
  /** [layout[0]] added to the high-res rows' text scores before masking (zeros in the original). */
  logAttentionWeights?: ArrayLike<number>;
}

/** ItersrModel forward of one sequence (layout[1] tokens): the final-layernorm output [layout[1], hidden]. */
export function itersrForwardCpu(w: CpuWeights, cfg: SrModelConfig, inp: ItersrForwardInput): Float32Array {
  const g = itersrGeometry(cfg);
  const H = cfg.hidden_size, nh = cfg.num_attention_heads, d = H / nh, T = g.textLen;
  if (inp.tokens.length !== g.seqLen) {
    throw new Error(`iterative SR takes ${g.seqLen} tokens, got ${inp.tokens.length}`);
  }
  const own = ownWindow(cfg);
  const ownCells: Int32Array[] = [];
  for (let i = 0; i < g.highSide; i++) {
    for (let j = 0; j < g.highSide; j++) ownCells.push(windowCells(i, j, g.highSide, g.highSide, own));
  }
  const textMask2d = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) textMask2d[i * T + j] = inp.mask[j];
  const attention: AttentionFn = (x, l) => {
    const p = `transformer.layers.${l}.attention.`;
    const qkv = linear(x, g.seqLen, H, w(p + "query_key_value.weight"), w(p + "query_key_value.bias"));
    const ctx = new Float32Array(g.seqLen * H);
    const scale = 1 / Math.sqrt(d);
    const no = own.kH * own.kW;
    const sc = new Float64Array(T + no);
    for (let h = 0; h < nh; h++) {
      // Text rows: plain masked attention over the text (no log weights in sparse_attention_2d_text).
      fullAttention(
        qkv,
        qkv,
        qkv,
        3 * H,
        h * d,
        H + h * d,
        2 * H + h * d,
        T,
        d,
        textMask2d,
        undefined,
        ctx,
        H,
        h * d,
      );
      for (let r = 0; r < g.s1; r++) {
        const qo = (T + r) * 3 * H + h * d;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv[qo + c] * scale * qkv[j * 3 * H + H + h * d + c];
          if (inp.logAttentionWeights) dot += inp.logAttentionWeights[j];
          sc[j] = dot * inp.mask[j] + MASKED_SCORE * (1 - inp.mask[j]);
        }
        const oc = ownCells[r];
        for (let p2 = 0; p2 < no; p2++) {
          if (oc[p2] < 0) {
            sc[T + p2] = MASKED_SCORE;
            continue;
          }
          const ko = (T + oc[p2]) * 3 * H + H + h * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qkv[qo + c] * scale * qkv[ko + c];
          sc[T + p2] = dot;
        }
        softmaxInPlace(sc);
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += sc[j] * qkv[j * 3 * H + 2 * H + h * d + c];
          for (let p2 = 0; p2 < no; p2++) {
            if (oc[p2] >= 0) acc += sc[T + p2] * qkv[(T + oc[p2]) * 3 * H + 2 * H + h * d + c];
          }
          ctx[(T + r) * H + h * d + c] = acc;
        }
      }
    }
    return linear(ctx, g.seqLen, H, w(p + "dense.weight"), w(p + "dense.bias"));
  };
  return transformerStack(w, cfg, inp.tokens, inp.positionIds, T, attention);
}

// ------------------------------------------------------------------ logits

/** Image logits of chosen rows: hidden[row]·word_embeddings[:imageTokens]ᵀ, [rows.length, imageTokens]. */
export function imageLogitsCpu(
  w: CpuWeights,
  hidden: Float32Array,
  H: number,
  rows: ArrayLike<number>,
  imageTokens: number,
): Float32Array {
  const we = w("transformer.word_embeddings.weight").data;
  const out = new Float32Array(rows.length * imageTokens);
  for (let r = 0; r < rows.length; r++) {
    const ho = rows[r] * H;
    for (let t = 0; t < imageTokens; t++) {
      let s = 0;
      for (let c = 0; c < H; c++) s += hidden[ho + c] * we[t * H + c];
      out[r * imageTokens + t] = s;
    }
  }
  return out;
}

/** Per-row argmax, top-2 gap and logsumexp of [rows, n] logits. */
export function logitStats(
  logits: Float32Array,
  n: number,
): { argmax: Int32Array; gap: Float32Array; lse: Float32Array } {
  const rows = logits.length / n;
  const argmax = new Int32Array(rows), gap = new Float32Array(rows), lse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let b1 = -Infinity, b2 = -Infinity, i1 = 0;
    const o = r * n;
    for (let t = 0; t < n; t++) {
      const v = logits[o + t];
      if (v > b1) {
        b2 = b1;
        b1 = v;
        i1 = t;
      } else if (v > b2) b2 = v;
    }
    let s = 0;
    for (let t = 0; t < n; t++) s += Math.exp(logits[o + t] - b1);
    argmax[r] = i1;
    gap[r] = b1 - b2;
    lse[r] = b1 + Math.log(s);
  }
  return { argmax, gap, lse };
}

/** An in-memory weight source (tests, benchmarks with synthetic weights): float values stored as f16 or f32. */
export function memoryWeightSource(
  origin: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  dtype: "f16" | "f32",
): WeightSource {
  const bytes = new Map<string, Uint8Array>();
  for (const [name, t] of tensors) {
    bytes.set(
      name,
      dtype === "f16" ? new Uint8Array(f32ToF16Bits(t.data).buffer) : new Uint8Array(t.data.slice().buffer),
    );
  }
  const info = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${origin}: no tensor ${name}`);
    return { name, dtype, shape: t.shape, byteLength: bytes.get(name)!.byteLength };
  };
  return {
    origin,
    names: () => [...tensors.keys()],
    info,
    has: (name) => tensors.has(name),
    read: (name) => Promise.resolve(bytes.get(info(name).name)!),
    readRange: (name, off, n) => Promise.resolve(bytes.get(info(name).name)!.subarray(off, off + n)),
    close: () => {},
  };
}
