// 2-D local attention (shaders/local_attention.wgsl): the f_similar / f_weighting primitives of
// Sleepychord/Image-Local-Attention on NCHW grids, and the fused level-1 attention of CogView2's SR models.
// Not the level-0 attention of the SR models (text / low-res tokens among themselves: ordinary masked attention).
//
// ## Fused SR attention — API for src/models/dsr.ts and src/models/itersr.ts
//
// `srLocalAttention(ctx, o)` computes, for every batch item b, head h and high-res token t = i·side + j of the
// side×side grid (side = 60), one output row of the original's level-1 attention:
//   q  = q[b, t, h] / √headDim            (o.scale overrides the factor)
//   s₁ = q·k[b, cell, h] for the (2·kernelSize−1) rows × kernelSize columns window centred on (i, j)
//        (raster order; cells outside the grid score −10000 and add no value)
//   s₀ = DSR (o.lowres): q·k₀[b, cell, h] + addScalar over the kernelSize2² window of the low-res L×L grid centred on
//        cell (i·L/side, j·L/side), out-of-grid −10000 (sparse_attention_2d_light: k0T[..., -l0²:]);
//        iterative SR (o.text): every text key u: (q·k₀[b, u, h] + logWeights[u])·mask[u] − 10000·(1 − mask[u])
//        (sparse_attention_2d_text); neither: no s₀ (sparse_attention_2d_notext).
//   out[b, t, h] = softmax([s₀, s₁]) · [v₀ rows, v rows]   (ONE softmax over the union, exactly the original's cat)
// One dispatch; each query's scores (≤ 70 for DSR) live in a private array (max, exp-sum, weighted values): no
// [tokens, window] score buffer in memory. An invocation handles G vertically adjacent queries of one (b, h): G = 1
// on GPUs; G = 3 on CPU adapters (lavapipe pays per loaded element; the 3 queries share the low-res window / text
// keys and 8 of 9 window rows: ~2.2x faster on lavapipe). `queriesPerInvocation` overrides it.
//
// Every tensor is read through a `Rows` view, so the kernel reads Q/K/V straight out of a QKV matmul output
// [batch·tokens, 3·hidden] (q = columns [0, hidden), k = [hidden, 2·hidden), v = [2·hidden, 3·hidden), head h at
// columns h·headDim.. as split_tensor_along_last_dim + view(b, s, n_head, d)), and writes into any row layout:
//   element (batch b, token t, channel c) = tensor[offset + b·batchStride + t·rowStride + c]   (f32)
// `qkvRows(qkv, part, {hidden, seqLen, firstToken})` builds those views: `seqLen` tokens per batch item in the
// tensor, the grid starting at token `firstToken`. Examples (hidden = heads·headDim):
//   DSR layer (level-0 QKV qkv0 [b·496, 3h] over text+low-res tokens, level-1 QKV qkv1 [b·3600, 3h]):
//     srLocalAttention(ctx, { batch, heads, headDim, side: 60, kernelSize: cfg.kernel_size,
//       q: qkvRows(qkv1, "q", { hidden, seqLen: 3600 }), k: qkvRows(qkv1, "k", ...), v: qkvRows(qkv1, "v", ...),
//       lowres: { side: 20, kernelSize: cfg.kernel_size2,
//                 k: qkvRows(qkv0, "k", { hidden, seqLen: 496, firstToken: 96 }), v: qkvRows(qkv0, "v", ...) },
//       out: ctx.empty([batch * 3600, hidden]) })   // or a Rows view into a larger buffer
//   Iterative SR layer (one QKV over all 16 + 3600 tokens qkv [b·3616, 3h]):
//     srLocalAttention(ctx, { ..., q: qkvRows(qkv, "q", { hidden, seqLen: 3616, firstToken: 16 }), k, v likewise,
//       text: { length: 16, k: qkvRows(qkv, "k", { hidden, seqLen: 3616 }), v: ..., mask: maskTensor /* [1|b, 16] */ },
//       out: { tensor: ctxOut /* [b·3616, hidden] */, offset: 16 * hidden, rowStride: hidden, batchStride: 3616 * hidden } })
// The output buffer must not be any input's buffer (WebGPU forbids read + read_write bindings of one buffer).
// Returns the output tensor. Dispatch only (recorded into the context's batch, no sync).

import type { GpuContext } from "../gpu/context.ts";
import { f32 } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";
import { patchSize } from "../geometry/sr.ts";

// ------------------------------------------------------------------ primitives

export interface LocalWindow {
  /** Window rows (CogView2: 2·kernel_size − 1 on the same grid, kernel_size2 cross-resolution). */
  kH: number;
  /** Window columns. */
  kW: number;
  /** Keep only the first half of the window in raster order, centre included (needs odd kH, kW). */
  causal?: boolean;
}

function checkWindow(
  name: string,
  B: number,
  H: number,
  W: number,
  Bk: number,
  h: number,
  w: number,
  o: LocalWindow,
) {
  check(B % Bk === 0, name, `batch ${B} is not a multiple of the key batch ${Bk}`);
  check(H % h === 0 && W % w === 0, name, `grid ${H}x${W} is not a multiple of the key grid ${h}x${w}`);
  check(
    !o.causal || (o.kH & 1 && o.kW & 1),
    name,
    `a causal window must have odd sides, got ${o.kH}x${o.kW}`,
  );
}

/**
 * f_similar: q [B,C,H,W], k [Bk,C,h,w] (f32, NCHW) → scores [B,H,W,P] (P = patchSize(kH, kW, causal)).
 * Query batch b reads key batch ⌊b·Bk/B⌋; H/h, W/w is the cross-resolution factor; out-of-grid entries are −10000.
 */
export function localSimilar(
  ctx: GpuContext,
  q: Tensor,
  k: Tensor,
  o: LocalWindow & { out?: Tensor },
): Tensor {
  check(
    q.shape.length === 4 && k.shape.length === 4,
    "localSimilar",
    `q [${q.shape}] and k [${k.shape}] must be 4-D`,
  );
  check(q.dtype === "f32" && k.dtype === "f32", "localSimilar", "q and k must be f32");
  const [B, C, H, W] = q.shape, [Bk, Ck, h, w] = k.shape;
  check(C === Ck, "localSimilar", `channels differ: q [${q.shape}], k [${k.shape}]`);
  checkWindow("localSimilar", B, H, W, Bk, h, w, o);
  const P = patchSize(o.kH, o.kW, !!o.causal);
  const n = B * H * W * P;
  const out = o.out ?? ctx.empty([B, H, W, P]);
  check(
    out.size === n && out.dtype === "f32",
    "localSimilar",
    `out [${out.shape}] must be f32 [${[B, H, W, P]}]`,
  );
  const kern = ctx.kernel({
    name: "local_similar",
    shader: "local_attention.wgsl",
    defines: { SIMILAR: 1 },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(kern, [B, C, H, W, Bk, h, w, o.kH, o.kW, P, n], [q, k, out], grid1d(n, 256));
  return out;
}

/**
 * f_weighting: v [Bv,C,h,w], probs [B,H,W,P] → out [B,C,H,W]: Σ over in-grid window entries of v·probs.
 */
export function localWeighting(
  ctx: GpuContext,
  v: Tensor,
  probs: Tensor,
  o: LocalWindow & { out?: Tensor },
): Tensor {
  check(
    v.shape.length === 4 && probs.shape.length === 4,
    "localWeighting",
    `v [${v.shape}] and probs [${probs.shape}] must be 4-D`,
  );
  check(v.dtype === "f32" && probs.dtype === "f32", "localWeighting", "v and probs must be f32");
  const [Bv, C, h, w] = v.shape, [B, H, W, P] = probs.shape;
  checkWindow("localWeighting", B, H, W, Bv, h, w, o);
  check(
    P === patchSize(o.kH, o.kW, !!o.causal),
    "localWeighting",
    `probs have ${P} entries per query, the window ${patchSize(o.kH, o.kW, !!o.causal)}`,
  );
  const n = B * C * H * W;
  const out = o.out ?? ctx.empty([B, C, H, W]);
  check(
    out.size === n && out.dtype === "f32",
    "localWeighting",
    `out [${out.shape}] must be f32 [${[B, C, H, W]}]`,
  );
  const kern = ctx.kernel({
    name: "local_weighting",
    shader: "local_attention.wgsl",
    defines: { WEIGHTING: 1 },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(kern, [B, C, H, W, Bv, h, w, o.kH, o.kW, P, n], [v, probs, out], grid1d(n, 256));
  return out;
}

// ------------------------------------------------------------------ fused SR attention

/** A strided f32 view: element (batch b, token t, channel c) = tensor[offset + b·batchStride + t·rowStride + c]. */
export interface Rows {
  tensor: Tensor;
  offset: number;
  rowStride: number;
  batchStride: number;
}

/**
 * The q, k or v part of a QKV matmul output [batch·seqLen, 3·hidden] (f32) from token `firstToken` of each batch item.
 */
export function qkvRows(
  qkv: Tensor,
  part: "q" | "k" | "v",
  o: { hidden: number; seqLen: number; firstToken?: number },
): Rows {
  const row = 3 * o.hidden;
  const col = part === "q" ? 0 : part === "k" ? o.hidden : 2 * o.hidden;
  return {
    tensor: qkv,
    offset: (o.firstToken ?? 0) * row + col,
    rowStride: row,
    batchStride: o.seqLen * row,
  };
}

/** A plain [batch·tokens, width] row tensor as a view (width defaults to its last dimension). */
export function plainRows(t: Tensor, o: { tokens: number; width?: number; firstToken?: number }): Rows {
  const width = o.width ?? t.shape[t.shape.length - 1];
  return { tensor: t, offset: (o.firstToken ?? 0) * width, rowStride: width, batchStride: o.tokens * width };
}

/** Rows of sequence `b` alone (`tokens` rows of `width` values) as an aligned view bound by itself (batch 1). */
export function sequenceRows(ctx: GpuContext, r: Rows, b: number, tokens: number, width: number): Rows {
  const start = r.offset + b * r.batchStride;
  const v = ctx.alignedView(r.tensor, start, start + (tokens - 1) * r.rowStride + width);
  return { tensor: v.t, offset: v.off, rowStride: r.rowStride, batchStride: tokens * r.rowStride };
}

export interface SrLocalAttentionOptions {
  batch: number;
  heads: number;
  headDim: number;
  /** Side of the square high-res grid (60); queries/keys/values are its side² tokens in raster order. */
  side: number;
  /** Window (2·kernelSize − 1) rows × kernelSize columns (args.kernel_size). */
  kernelSize: number;
  /** Factor applied to q (default 1/√headDim, the original's q1 / math.sqrt(h)). */
  scale?: number;
  q: Rows;
  k: Rows;
  v: Rows;
  /** DSR: low-res keys/values (the last side2² tokens of level 0) and kernel_size2. */
  lowres?: { side: number; kernelSize: number; k: Rows; v: Rows; addScalar?: number };
  /** Iterative SR: all `length` text keys/values; mask / logWeights f32 [1 or batch, length]. */
  text?: { length: number; k: Rows; v: Rows; mask?: Tensor; logWeights?: Tensor };
  /** Output rows ([batch·side², heads·headDim] tensor or a view); allocated [batch·side², hidden] when absent. */
  out?: Tensor | Rows;
  /** Vertically adjacent queries per invocation (default 3 on CPU adapters when it divides side and side / lowres.side, else 1). */
  queriesPerInvocation?: number;
}

function checkRows(name: string, r: Rows, batch: number, tokens: number, width: number): void {
  check(r.tensor.dtype === "f32", "srLocalAttention", `${name} must be f32, got ${r.tensor.dtype}`);
  const last = r.offset + (batch - 1) * r.batchStride + (tokens - 1) * r.rowStride + width;
  check(
    r.offset >= 0 && r.rowStride >= width && last <= r.tensor.size,
    "srLocalAttention",
    `${name} view (offset ${r.offset}, row ${r.rowStride}, batch ${r.batchStride}) reaches element ${last} of a ` +
      `${r.tensor.size}-element tensor [${r.tensor.shape}]`,
  );
}

/** The fused level-1 SR attention; see the top of this file. Returns the output tensor. */
export function srLocalAttention(ctx: GpuContext, o: SrLocalAttentionOptions): Tensor {
  const { batch, heads, headDim: D, side } = o;
  const hidden = heads * D, S = side * side;
  check(
    batch >= 1 && heads >= 1 && D >= 1 && side >= 1,
    "srLocalAttention",
    "batch, heads, headDim, side must be positive",
  );
  check(o.kernelSize >= 1, "srLocalAttention", `kernelSize ${o.kernelSize}`);
  check(!(o.lowres && o.text), "srLocalAttention", "give lowres (DSR) or text (iterative SR), not both");
  checkRows("q", o.q, batch, S, hidden);
  checkRows("k", o.k, batch, S, hidden);
  checkRows("v", o.v, batch, S, hidden);
  const out: Rows = o.out === undefined
    ? plainRows(ctx.empty([batch * S, hidden]), { tokens: S })
    : "tensor" in o.out
    ? o.out
    : plainRows(o.out, {
      tokens: S,
      width: o.out.shape.length > 1 ? o.out.shape[o.out.shape.length - 1] : hidden,
    });
  checkRows("out", out, batch, S, hidden);
  // Several sequences above one binding (batch >= 2 at published widths): one launch per sequence, each binding only
  // its own rows (aligned views; a per-sequence text mask row copied out).
  const all = [o.q, o.k, o.v, out, o.lowres?.k, o.lowres?.v, o.text?.k, o.text?.v];
  if (batch > 1 && all.some((r) => r && r.tensor.byteLength > ctx.maxBinding)) {
    const temps: Tensor[] = [];
    const row = (t: Tensor | undefined, b: number, n: number) => {
      if (!t || t.size === n) return t;
      const r = ctx.empty([n]);
      ctx.copy({ buffer: t.buffer, offset: t.byteOffset + b * n * 4, size: n * 4 }, r, n * 4);
      temps.push(r);
      return r;
    };
    for (let b = 0; b < batch; b++) {
      const seq = (r: Rows, tokens: number) => sequenceRows(ctx, r, b, tokens, hidden);
      const L2 = o.lowres ? o.lowres.side ** 2 : 0;
      srLocalAttention(ctx, {
        ...o,
        batch: 1,
        q: seq(o.q, S),
        k: seq(o.k, S),
        v: seq(o.v, S),
        lowres: o.lowres && { ...o.lowres, k: seq(o.lowres.k, L2), v: seq(o.lowres.v, L2) },
        text: o.text && {
          ...o.text,
          k: seq(o.text.k, o.text.length),
          v: seq(o.text.v, o.text.length),
          mask: row(o.text.mask, b, o.text.length),
          logWeights: row(o.text.logWeights, b, o.text.length),
        },
        out: seq(out, S),
      });
    }
    temps.forEach((t) => t.release());
    return out.tensor;
  }
  const inputs = [o.q.tensor, o.k.tensor, o.v.tensor];
  let k2: Rows = o.k, v2: Rows = o.v, side2 = 0, ksz2 = 0, mBat = 0, addScalar = 0;
  const extra: Tensor[] = [];
  const defines: Record<string, number> = { FUSED: 1, B_MASK: 0, B_LOGW: 0, B_OUT: 0 };
  if (o.lowres) {
    const L = o.lowres.side;
    check(L >= 1 && side % L === 0, "srLocalAttention", `low-res side ${L} does not divide ${side}`);
    checkRows("lowres.k", o.lowres.k, batch, L * L, hidden);
    checkRows("lowres.v", o.lowres.v, batch, L * L, hidden);
    k2 = o.lowres.k,
      v2 = o.lowres.v,
      side2 = L,
      ksz2 = o.lowres.kernelSize,
      addScalar = o.lowres.addScalar ?? 0;
    defines.LOWRES = 1;
  } else if (o.text) {
    const T = o.text.length;
    check(T >= 1, "srLocalAttention", `text length ${T}`);
    checkRows("text.k", o.text.k, batch, T, hidden);
    checkRows("text.v", o.text.v, batch, T, hidden);
    k2 = o.text.k, v2 = o.text.v, side2 = T;
    defines.TEXT = 1;
    let mb: number | null = null;
    for (const [name, t] of [["mask", o.text.mask], ["logWeights", o.text.logWeights]] as const) {
      if (!t) continue;
      check(
        t.dtype === "f32" && (t.size === T || t.size === batch * T),
        "srLocalAttention",
        `text.${name} [${t.shape}] must be f32 [1|${batch}, ${T}]`,
      );
      const b = t.size === T ? 0 : T;
      check(
        mb === null || mb === b,
        "srLocalAttention",
        "text.mask and text.logWeights must have the same batch size",
      );
      mb = b;
    }
    mBat = mb ?? 0;
    if (o.text.mask) {
      defines.HAS_MASK = 1;
      defines.B_MASK = 6 + extra.length;
      extra.push(o.text.mask);
    }
    if (o.text.logWeights) {
      defines.HAS_LOGW = 1;
      defines.B_LOGW = 6 + extra.length;
      extra.push(o.text.logWeights);
    }
  }
  const buffers = defines.LOWRES || defines.TEXT ? [...inputs, k2.tensor, v2.tensor, ...extra] : inputs;
  for (const t of buffers) {
    check(
      t.buffer !== out.tensor.buffer,
      "srLocalAttention",
      "the output must not share a buffer with an input",
    );
  }
  defines.B_OUT = buffers.length + 1;
  // vec4 loads when every view (and the head width) is 4-aligned; the shader then counts in vec4 units.
  const views = [o.q, o.k, o.v, k2, v2, out];
  const w =
    D % 4 === 0 && views.every((r) => r.offset % 4 === 0 && r.rowStride % 4 === 0 && r.batchStride % 4 === 0)
      ? 4
      : 1;
  if (w === 4) defines.VEC4 = 1;
  defines.DV = D / w;
  // Windows are compile-time constants; the row's scores live in a private array of MAXP slots.
  defines.KH = 2 * o.kernelSize - 1;
  defines.KW = o.kernelSize;
  defines.KSZ2 = ksz2;
  defines.MAXP = defines.KH * defines.KW + (o.lowres ? ksz2 * ksz2 : o.text ? side2 : 0);
  check(
    defines.MAXP <= 1024,
    "srLocalAttention",
    `${defines.MAXP} scores per row exceed the kernel's 1024 slots`,
  );
  // Queries per invocation (vertically adjacent, sharing loaded cells): 3 on CPU adapters where the grid allows.
  const ratio = o.lowres ? side / side2 : 3;
  const G = o.queriesPerInvocation ?? (ctx.gpu.isFallback && side % 3 === 0 && ratio % 3 === 0 ? 3 : 1);
  check(
    G >= 1 && side % G === 0 && (!o.lowres || ratio % G === 0),
    "srLocalAttention",
    `queriesPerInvocation ${G} must divide ${side}${o.lowres ? ` and ${ratio}` : ""}`,
  );
  defines.G = G;
  const kern = ctx.kernel({
    name: `sr_local_attention${defines.LOWRES ? "_lowres" : defines.TEXT ? "_text" : ""}`,
    shader: "local_attention.wgsl",
    defines,
    bindings: [...buffers.map(() => "read" as const), "write"],
  });
  const u = (x: number) => x / w;
  // deno-fmt-ignore
  const params = [
    batch, heads, side, o.kernelSize,
    u(o.q.offset), u(o.q.rowStride), u(o.q.batchStride),
    u(o.k.offset), u(o.k.rowStride), u(o.k.batchStride),
    u(o.v.offset), u(o.v.rowStride), u(o.v.batchStride),
    u(out.offset), u(out.rowStride), u(out.batchStride),
    u(k2.offset), u(k2.rowStride), u(k2.batchStride),
    u(v2.offset), u(v2.rowStride), u(v2.batchStride),
    side2, ksz2, mBat,
    f32(o.scale ?? 1 / Math.sqrt(D)), f32(addScalar),
  ];
  ctx.dispatch(kern, params, [...buffers, out.tensor], grid1d((batch * heads * S) / G, 64));
  return out.tensor;
}
