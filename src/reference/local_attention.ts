// Plain TypeScript twins of the 2-D local attention of Sleepychord/Image-Local-Attention (f_similar, f_weighting)
// and of CogView2's SR attention (sparse_attention_2d_light / _text, level 1) composed from them. Slow and obvious.
// Not the level-0 (text / low-res) standard attention of the SR models: that is ordinary masked attention.

import { MASKED_SCORE as OUT_OF_GRID, patchSize } from "../geometry/sr.ts";

function checkGrids(
  what: string,
  B: number,
  H: number,
  W: number,
  Bk: number,
  h: number,
  w: number,
  kH: number,
  kW: number,
  causal: boolean,
) {
  if (B % Bk) throw new Error(`${what}: batch ${B} is not a multiple of the key batch ${Bk}`);
  if (H % h || W % w) {
    throw new Error(`${what}: query grid ${H}x${W} is not a multiple of the key grid ${h}x${w}`);
  }
  if (causal && (!(kH & 1) || !(kW & 1))) {
    throw new Error(`${what}: a causal window must have odd sides, got ${kH}x${kW}`);
  }
}

/**
 * f_similar(q [B,C,H,W], k [Bk,C,h,w], kH, kW, causal) → scores [B,H,W,P]. Query (i,j) is centred on key cell
 * (i/ah, j/aw) with ah = H/h, aw = W/w; entry p sits at row i/ah − (kH>>1) + p/kW, column j/aw − (kW>>1) + p%kW.
 * Out-of-grid entries score −10000. Query batch b reads key batch ⌊b·Bk/B⌋.
 */
export function fSimilarRef(
  q: Float32Array,
  qShape: readonly number[],
  k: Float32Array,
  kShape: readonly number[],
  o: { kH: number; kW: number; causal?: boolean },
): Float32Array {
  const [B, C, H, W] = qShape, [Bk, Ck, h, w] = kShape;
  const causal = o.causal ?? false;
  if (C !== Ck) throw new Error(`fSimilarRef: channels differ (${C} vs ${Ck})`);
  checkGrids("fSimilarRef", B, H, W, Bk, h, w, o.kH, o.kW, causal);
  const P = patchSize(o.kH, o.kW, causal), ah = H / h, aw = W / w, rH = o.kH >> 1, rW = o.kW >> 1;
  const out = new Float32Array(B * H * W * P);
  for (let b = 0; b < B; b++) {
    const kb = Math.floor((b * Bk) / B);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const ci = Math.floor(i / ah) - rH, cj = Math.floor(j / aw) - rW;
        for (let p = 0; p < P; p++) {
          const y = ci + Math.floor(p / o.kW), x = cj + (p % o.kW);
          let s = OUT_OF_GRID;
          if (y >= 0 && y < h && x >= 0 && x < w) {
            s = 0;
            for (let c = 0; c < C; c++) {
              s += q[((b * C + c) * H + i) * W + j] * k[((kb * C + c) * h + y) * w + x];
            }
          }
          out[((b * H + i) * W + j) * P + p] = s;
        }
      }
    }
  }
  return out;
}

/**
 * f_weighting(v [Bv,C,h,w], probs [B,H,W,P], kH, kW, causal) → out [B,C,H,W]: Σ over in-grid window entries of
 * v[⌊b·Bv/B⌋, c, cell]·probs[b,i,j,p]; out-of-grid entries contribute nothing.
 */
export function fWeightingRef(
  v: Float32Array,
  vShape: readonly number[],
  probs: Float32Array,
  probsShape: readonly number[],
  o: { kH: number; kW: number; causal?: boolean },
): Float32Array {
  const [Bv, C, h, w] = vShape, [B, H, W, P] = probsShape;
  const causal = o.causal ?? false;
  checkGrids("fWeightingRef", B, H, W, Bv, h, w, o.kH, o.kW, causal);
  if (P !== patchSize(o.kH, o.kW, causal)) {
    throw new Error(
      `fWeightingRef: probs have ${P} entries, window ${o.kH}x${o.kW} has ${patchSize(o.kH, o.kW, causal)}`,
    );
  }
  const ah = H / h, aw = W / w, rH = o.kH >> 1, rW = o.kW >> 1;
  const out = new Float32Array(B * C * H * W);
  for (let b = 0; b < B; b++) {
    const vb = Math.floor((b * Bv) / B);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const ci = Math.floor(i / ah) - rH, cj = Math.floor(j / aw) - rW;
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let p = 0; p < P; p++) {
            const y = ci + Math.floor(p / o.kW), x = cj + (p % o.kW);
            if (y >= 0 && y < h && x >= 0 && x < w) {
              s += v[((vb * C + c) * h + y) * w + x] * probs[((b * H + i) * W + j) * P + p];
            }
          }
          out[((b * C + c) * H + i) * W + j] = s;
        }
      }
    }
  }
  return out;
}

/** Softmax over the last axis (rows of n), float64 accumulation. */
export function softmaxLastRef(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let m = -Infinity;
    for (let i = 0; i < n; i++) m = Math.max(m, x[r * n + i]);
    let t = 0;
    for (let i = 0; i < n; i++) t += Math.exp(x[r * n + i] - m);
    for (let i = 0; i < n; i++) out[r * n + i] = Math.exp(x[r * n + i] - m) / t;
  }
  return out;
}

// ------------------------------------------------------------------ the SR models' fused level-1 attention

/** Rows of a host array: element (batch b, token t, channel c) at offset + b·batchStride + t·rowStride + c. */
export interface HostRows {
  data: Float32Array;
  offset: number;
  rowStride: number;
  batchStride: number;
}

/** Options of the fused SR attention; same meaning as src/kernels/local_attention.ts `srLocalAttention`. */
export interface SrAttentionRefOptions {
  batch: number;
  heads: number;
  headDim: number;
  /** Side of the square high-res query grid (60). */
  side: number;
  /** Window (2·kernelSize−1) rows × kernelSize columns on the high-res grid. */
  kernelSize: number;
  /** Softmax scale applied to q before the dot products (default 1/√headDim). */
  scale?: number;
  q: HostRows;
  k: HostRows;
  v: HostRows;
  /** DSR: kernelSize2 × kernelSize2 window on the low-res grid, keys/values from the level-0 QKV. */
  lowres?: { side: number; kernelSize: number; k: HostRows; v: HostRows; addScalar?: number };
  /** Iterative SR: every text key; mask / logWeights [1 or batch, length] as the original's broadcast. */
  text?: { length: number; k: HostRows; v: HostRows; mask?: Float32Array; logWeights?: Float32Array };
}

/** Gathers a strided rows view into [batch·heads, headDim, side, side] (the layout the primitives take). */
function toGrid(
  r: HostRows,
  batch: number,
  heads: number,
  d: number,
  tokens: number,
  scale = 1,
): Float32Array {
  const out = new Float32Array(batch * heads * d * tokens);
  for (let b = 0; b < batch; b++) {
    for (let hd = 0; hd < heads; hd++) {
      for (let c = 0; c < d; c++) {
        for (let t = 0; t < tokens; t++) {
          const x = r.data[r.offset + b * r.batchStride + t * r.rowStride + hd * d + c];
          out[((b * heads + hd) * d + c) * tokens + t] = scale === 1 ? x : x * scale;
        }
      }
    }
  }
  return out;
}

/**
 * Level-1 attention of sparse_attention_2d_light (lowres) / sparse_attention_2d_text (text) / _notext (neither),
 * composed from the primitives exactly as the original: scores_1_to_0 (first) ++ scores_1_to_1, one softmax,
 * split, weighted sums added. Returns [batch, side², heads·headDim] rows.
 */
export function srAttentionRef(o: SrAttentionRefOptions): Float32Array {
  const { batch, heads, headDim: d, side } = o;
  const BH = batch * heads, S = side * side, hidden = heads * d;
  const scale = o.scale ?? 1 / Math.sqrt(d);
  const kH = 2 * o.kernelSize - 1, kW = o.kernelSize;
  const q = toGrid(o.q, batch, heads, d, S, scale);
  const k = toGrid(o.k, batch, heads, d, S), v = toGrid(o.v, batch, heads, d, S);
  const s11 = fSimilarRef(q, [BH, d, side, side], k, [BH, d, side, side], { kH, kW });
  const P1 = kH * kW;
  let P0 = 0;
  let s10: Float32Array | null = null;
  let lowK: Float32Array | null = null, lowV: Float32Array | null = null;
  if (o.lowres) {
    const L = o.lowres.side, k2 = o.lowres.kernelSize;
    lowK = toGrid(o.lowres.k, batch, heads, d, L * L);
    lowV = toGrid(o.lowres.v, batch, heads, d, L * L);
    s10 = fSimilarRef(q, [BH, d, side, side], lowK, [BH, d, L, L], { kH: k2, kW: k2 });
    P0 = k2 * k2;
    const add = o.lowres.addScalar ?? 0;
    if (add) { for (let i = 0; i < s10.length; i++) s10[i] += add; }
  } else if (o.text) {
    const T = o.text.length;
    P0 = T;
    s10 = new Float32Array(BH * S * T);
    const { mask, logWeights } = o.text;
    for (let b = 0; b < batch; b++) {
      for (let hd = 0; hd < heads; hd++) {
        for (let t = 0; t < S; t++) {
          for (let u = 0; u < T; u++) {
            let s = 0;
            for (let c = 0; c < d; c++) {
              s += q[((b * heads + hd) * d + c) * S + t] *
                o.text.k
                  .data[o.text.k.offset + b * o.text.k.batchStride + u * o.text.k.rowStride + hd * d + c];
            }
            if (logWeights) s += logWeights[(logWeights.length === T ? 0 : b * T) + u];
            if (mask) {
              const m = mask[(mask.length === T ? 0 : b * T) + u];
              s = s * m - 10000 * (1 - m);
            }
            s10[((b * heads + hd) * S + t) * T + u] = s;
          }
        }
      }
    }
  }
  // One softmax over the concatenation [scores_1_to_0, scores_1_to_1].
  const P = P0 + P1;
  const cat = new Float32Array(BH * S * P);
  for (let r = 0; r < BH * S; r++) {
    for (let p = 0; p < P0; p++) cat[r * P + p] = s10![r * P0 + p];
    for (let p = 0; p < P1; p++) cat[r * P + P0 + p] = s11[r * P1 + p];
  }
  const probs = softmaxLastRef(cat, P);
  const p11 = new Float32Array(BH * S * P1), p10 = new Float32Array(BH * S * P0);
  for (let r = 0; r < BH * S; r++) {
    for (let p = 0; p < P0; p++) p10[r * P0 + p] = probs[r * P + p];
    for (let p = 0; p < P1; p++) p11[r * P1 + p] = probs[r * P + P0 + p];
  }
  const ctx = fWeightingRef(v, [BH, d, side, side], p11, [BH, side, side, P1], { kH, kW }); // [BH, d, S]
  if (o.lowres) {
    const L = o.lowres.side, k2 = o.lowres.kernelSize;
    const c0 = fWeightingRef(lowV!, [BH, d, L, L], p10, [BH, side, side, P0], { kH: k2, kW: k2 });
    for (let i = 0; i < ctx.length; i++) ctx[i] += c0[i];
  } else if (o.text) {
    const T = o.text.length, tv = o.text.v;
    for (let b = 0; b < batch; b++) {
      for (let hd = 0; hd < heads; hd++) {
        for (let t = 0; t < S; t++) {
          for (let c = 0; c < d; c++) {
            let s = 0;
            for (let u = 0; u < T; u++) {
              s += p10[((b * heads + hd) * S + t) * T + u] *
                tv.data[tv.offset + b * tv.batchStride + u * tv.rowStride + hd * d + c];
            }
            ctx[((b * heads + hd) * d + c) * S + t] += s;
          }
        }
      }
    }
  }
  // [b, heads, d, S] → [b, S, heads·d]
  const out = new Float32Array(batch * S * hidden);
  for (let b = 0; b < batch; b++) {
    for (let hd = 0; hd < heads; hd++) {
      for (let c = 0; c < d; c++) {
        for (let t = 0; t < S; t++) {
          out[(b * S + t) * hidden + hd * d + c] = ctx[((b * heads + hd) * d + c) * S + t];
        }
      }
    }
  }
  return out;
}
