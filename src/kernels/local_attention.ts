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
// on GPUs; on CPU adapters G = 3 at headDim 16 (lavapipe pays per loaded element; the 3 queries share the low-res
// window / text keys and 8 of 9 window rows: ~2.2x faster on lavapipe), and at headDim >= 32 G = 2 where the grid
// allows (iterative SR), else 1 (DSR: 2 does not divide its ratio 3): wider heads spill.
// `queriesPerInvocation` overrides it.
// Uniform windows (CPU adapters, headDim 32-64, `windows` overrides): K and V (and the low-res / text K/V) are first
// packed per (batch, head) so that the rows a tile of query rows reads form 64 KiB uniform windows (16 channels per
// window for the high-res grid), then one dispatch per (batch, head, tile) reads them with dynamic offsets: lavapipe
// gathers uniform words far faster than storage words (shaders/README.md). Published widths on lavapipe (40 heads ×
// 64, 60×60, medians of 4 alternated calls, loaded box): iterative SR 7.92 s (storage, G = 3) -> 1.99 s (windows,
// G = 2); DSR 7.39 s -> 3.23 s (windows, G = 1).
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
import { choices, unrollFor } from "./choices.ts";
import { readEnv } from "../gpu/env.ts";

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
  check(B % Bk === 0, name, () => `batch ${B} is not a multiple of the key batch ${Bk}`);
  check(H % h === 0 && W % w === 0, name, () => `grid ${H}x${W} is not a multiple of the key grid ${h}x${w}`);
  check(
    !o.causal || (o.kH & 1 && o.kW & 1),
    name,
    () => `a causal window must have odd sides, got ${o.kH}x${o.kW}`,
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
    () => `q [${q.shape}] and k [${k.shape}] must be 4-D`,
  );
  check(q.dtype === "f32" && k.dtype === "f32", "localSimilar", "q and k must be f32");
  const [B, C, H, W] = q.shape, [Bk, Ck, h, w] = k.shape;
  check(C === Ck, "localSimilar", () => `channels differ: q [${q.shape}], k [${k.shape}]`);
  checkWindow("localSimilar", B, H, W, Bk, h, w, o);
  const P = patchSize(o.kH, o.kW, !!o.causal);
  const n = B * H * W * P;
  const out = o.out ?? ctx.empty([B, H, W, P]);
  check(
    out.size === n && out.dtype === "f32",
    "localSimilar",
    () => `out [${out.shape}] must be f32 [${[B, H, W, P]}]`,
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
    () => `v [${v.shape}] and probs [${probs.shape}] must be 4-D`,
  );
  check(v.dtype === "f32" && probs.dtype === "f32", "localWeighting", "v and probs must be f32");
  const [Bv, C, h, w] = v.shape, [B, H, W, P] = probs.shape;
  checkWindow("localWeighting", B, H, W, Bv, h, w, o);
  check(
    P === patchSize(o.kH, o.kW, !!o.causal),
    "localWeighting",
    () => `probs have ${P} entries per query, the window ${patchSize(o.kH, o.kW, !!o.causal)}`,
  );
  const n = B * C * H * W;
  const out = o.out ?? ctx.empty([B, C, H, W]);
  check(
    out.size === n && out.dtype === "f32",
    "localWeighting",
    () => `out [${out.shape}] must be f32 [${[B, C, H, W]}]`,
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
  /** Vertically adjacent queries per invocation (default: 1 on GPUs; CPU adapters: see the top of this file). */
  queriesPerInvocation?: number;
  /**
   * K/V read from 64 KiB uniform windows of a packed copy (default: on CPU adapters where it applies: vec4 views,
   * headDim a multiple of 16 up to 64, enough uniform bindings). true forces it (throws where it cannot apply).
   */
  windows?: boolean;
  /** Query rows per windows dispatch (tests: several tiles on small grids); default the most a window holds. */
  tileRows?: number;
  /**
   * Workgroup tiles (GPUs): a workgroup owns 16×4 queries of one (batch, head) and reads each K/V cell their windows
   * cover once, through workgroup memory (needs vec4 views). Default: where src/kernels/choices.ts srAttention says
   * "tiles" for this backend on a GPU adapter; true forces it (throws where it cannot apply), false the per-query path.
   */
  tiles?: boolean;
}

/** Queries per workgroup of the tiled variant (columns × rows of the grid). */
const TILE_W = 16, TILE_H = 4;

/** `COGVIEW2_SR_ATTENTION=query|tiles`: GPU adapters take that schedule instead of choices.ts srAttention. */
export const SR_ATTENTION_ENV = "COGVIEW2_SR_ATTENTION";

/** The schedule COGVIEW2_SR_ATTENTION names (`env` in tests), or null; another value is an error naming it. */
export function srAttentionOverride(env = readEnv(SR_ATTENTION_ENV)): "query" | "tiles" | null {
  if (env === undefined || env === "") return null;
  if (env !== "query" && env !== "tiles") {
    throw new Error(`${SR_ATTENTION_ENV}=${env}: expected query or tiles`);
  }
  return env;
}

function checkRows(name: string, r: Rows, batch: number, tokens: number, width: number): void {
  check(r.tensor.dtype === "f32", "srLocalAttention", () => `${name} must be f32, got ${r.tensor.dtype}`);
  const last = r.offset + (batch - 1) * r.batchStride + (tokens - 1) * r.rowStride + width;
  check(
    r.offset >= 0 && r.rowStride >= width && last <= r.tensor.size,
    "srLocalAttention",
    () =>
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
  check(o.kernelSize >= 1, "srLocalAttention", () => `kernelSize ${o.kernelSize}`);
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
    check(L >= 1 && side % L === 0, "srLocalAttention", () => `low-res side ${L} does not divide ${side}`);
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
    check(T >= 1, "srLocalAttention", () => `text length ${T}`);
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
        () => `text.${name} [${t.shape}] must be f32 [1|${batch}, ${T}]`,
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
    () => `${defines.MAXP} scores per row exceed the kernel's 1024 slots`,
  );
  // Queries per invocation (vertically adjacent, sharing loaded cells): 3 on CPU adapters where the grid allows.
  const ratio = o.lowres ? side / side2 : 6;
  const fits = (g: number) => side % g === 0 && ratio % g === 0;
  // CPU adapters: 3 queries at narrow heads (headDim 16: ~2.2x over 1); from headDim 32 on, the G·headDim private
  // floats spill (published widths, headDim 64: G = 3 took 2.3x G = 1's time), so 2 where the grid allows, else 1.
  const wide = D >= 32;
  const G = o.queriesPerInvocation ??
    (!ctx.gpu.isFallback || o.tiles ? 1 : wide ? (fits(2) ? 2 : 1) : fits(3) ? 3 : 1);
  check(
    G >= 1 && side % G === 0 && (!o.lowres || ratio % G === 0),
    "srLocalAttention",
    () => `queriesPerInvocation ${G} must divide ${side}${o.lowres ? ` and ${ratio}` : ""}`,
  );
  defines.G = G;
  // Register arrays (q, acc, kc; the tiles' qv, av) indexed by #unroll literals where the table says so (wgpu on GPUs;
  // shaders/README.md), at most 64 copies of a channel loop.
  defines.UNROLL = unrollFor(ctx) && defines.DV <= 64 ? 1 : 0;
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
  const extraKind = o.lowres ? "lowres" : o.text ? "text" : null;
  if (extraKind) defines.EXTRA = 1;
  const tiles = w === 4 && G === 1 && o.windows !== true
    ? tilesPlan(ctx, {
      DV: D / 4,
      KH: defines.KH,
      KW: defines.KW,
      ksz2,
      ratio: o.lowres ? side / side2 : 0,
      text: o.text ? side2 : 0,
    })
    : null;
  check(
    o.tiles !== true || tiles !== null,
    "srLocalAttention",
    "the tiled variant needs vec4 views (headDim, offsets and strides multiples of 4), one query per invocation " +
      "and its tiles within the adapter's workgroup memory",
  );
  const schedule = o.tiles === undefined && !ctx.gpu.isFallback
    ? srAttentionOverride() ?? choices(ctx).srAttention
    : null;
  if (tiles && (o.tiles ?? schedule === "tiles")) {
    Object.assign(defines, tiles.defines, { TILES: 1 });
    const kern = ctx.kernel({
      name: `sr_local_attention_tiles${defines.LOWRES ? "_lowres" : defines.TEXT ? "_text" : ""}`,
      shader: "local_attention.wgsl",
      defines,
      bindings: [...buffers.map(() => "read" as const), "write"],
    });
    const nt = Math.ceil(side / TILE_W) * Math.ceil(side / TILE_H);
    ctx.dispatch(kern, params, [...buffers, out.tensor], [nt, heads, batch]);
    return out.tensor;
  }
  const plan = windowsPlan(ctx, {
    vec4: w === 4,
    D,
    side,
    G,
    KH: defines.KH,
    extra: extraKind,
    side2,
    ksz2,
    tileRows: o.tileRows,
  });
  check(
    o.windows !== true || plan !== null,
    "srLocalAttention",
    "the uniform-window variant does not apply here",
  );
  // Default: CPU adapters at headDim >= 32 (measured there; the narrow heads of the tiny models keep storage reads).
  if (plan && o.windows !== false && (o.windows || (ctx.gpu.isFallback && wide))) {
    srWindows(ctx, plan, { batch, heads, side, D, G, o, out, k2, v2, defines, params });
    return out.tensor;
  }
  const kern = ctx.kernel({
    name: `sr_local_attention${defines.LOWRES ? "_lowres" : defines.TEXT ? "_text" : ""}`,
    shader: "local_attention.wgsl",
    defines,
    bindings: [...buffers.map(() => "read" as const), "write"],
  });
  ctx.dispatch(kern, params, [...buffers, out.tensor], grid1d((batch * heads * S) / G, 64));
  return out.tensor;
}

/**
 * The tiled variant's compile-time shape: CH vec4 of channels per chunk (the largest of 4..1 dividing the head's
 * DV vec4), the low-res tile (RH2 × RW2 cells: the union of a tile's low-res windows) or the text keys (NX); null
 * where the chunk's tiles exceed the adapter's workgroup memory.
 */
function tilesPlan(
  ctx: GpuContext,
  s: { DV: number; KH: number; KW: number; ksz2: number; ratio: number; text: number },
): { defines: Record<string, number> } | null {
  const CH = [4, 3, 2, 1].find((c) => s.DV % c === 0)!;
  const hi = (TILE_H + s.KH - 1) * (TILE_W + s.KW - 1);
  const RH2 = s.ratio ? Math.ceil((TILE_H - 1) / s.ratio) + s.ksz2 : 0;
  const RW2 = s.ratio ? Math.ceil((TILE_W - 1) / s.ratio) + s.ksz2 : 0;
  const extra = s.ratio ? RH2 * RW2 : s.text;
  if ((hi + extra) * CH * 16 > ctx.gpu.limits.maxComputeWorkgroupStorageSize) return null;
  return { defines: { TW: TILE_W, TH: TILE_H, CH, RH2, RW2, NX: s.text } };
}

// ------------------------------------------------------------------ uniform-window variant (CPU adapters)

const WIN_WORDS = 16384; // a 64 KiB uniform window, in f32

interface WindowsPlan {
  /** High-res: channel parts of 16 (one window each), cells per packed row, query rows per dispatch. */
  nq: number;
  rowCells: number;
  tileRows: number;
  /** Low-res grid or text keys: cells per packed row, rows of the packed grid (1 for text). */
  rowCells2: number;
  rows2: number;
}

/**
 * How the uniform-window variant tiles this call, or null where it does not apply: vec4 views, D a multiple of 16 up
 * to 64 (K and V of the high-res grid in D/16 windows of 16 channels), a window holding the union rows of at least G
 * query rows, the low-res rows of a tile (or all text keys) in one full-D window, and enough uniform bindings.
 */
function windowsPlan(
  ctx: GpuContext,
  s: {
    vec4: boolean;
    D: number;
    side: number;
    G: number;
    KH: number;
    extra: "lowres" | "text" | null;
    side2: number;
    ksz2: number;
    tileRows?: number;
  },
): WindowsPlan | null {
  const { D, side, G } = s;
  if (!s.vec4 || D % 16 !== 0 || D > 64) return null;
  const nq = D / 16;
  const lim = ctx.gpu.limits;
  const uniforms = 1 + 2 * nq + (s.extra ? 2 : 0);
  if (
    uniforms > lim.maxUniformBuffersPerShaderStage || uniforms > lim.maxDynamicUniformBuffersPerPipelineLayout
  ) {
    return null;
  }
  if (lim.maxUniformBufferBindingSize < WIN_WORDS * 4) return null;
  const rowCells = Math.ceil(side / 4) * 4; // 16 channels × 4 B × a multiple of 4 cells: rows start 256-B aligned
  const halo = s.KH >> 1;
  let tileRows = Math.floor((Math.floor(WIN_WORDS / (rowCells * 16)) - 2 * halo) / G) * G;
  tileRows = Math.min(tileRows, side, s.tileRows ?? side);
  if (tileRows < G || tileRows % G) return null;
  let rowCells2 = 0, rows2 = 0;
  if (s.extra) {
    rowCells2 = s.side2;
    while ((rowCells2 * D) % 64) rowCells2++;
    rows2 = s.extra === "text" ? 1 : s.side2;
    const cap2 = Math.floor(WIN_WORDS / (rowCells2 * D));
    if (cap2 < 1) return null;
    if (s.extra === "lowres") {
      // Shrink the tile until every tile's low-res rows fit one window.
      const a = side / s.side2, h2 = s.ksz2 >> 1;
      const fits = (tr: number) => {
        for (let t0 = 0; t0 < side; t0 += tr) {
          const last = Math.min(side, t0 + tr) - 1;
          const y0 = Math.max(0, Math.floor(t0 / a) - h2),
            y1 = Math.min(s.side2 - 1, Math.floor(last / a) + h2);
          if (y1 - y0 + 1 > cap2) return false;
        }
        return true;
      };
      while (tileRows >= G && !fits(tileRows)) tileRows -= G;
      if (tileRows < G) return null;
    }
  }
  return { nq, rowCells, tileRows, rowCells2, rows2 };
}

/**
 * Packs q/k/v's K and V (and the low-res or text K/V) into the window layout (shaders/local_attention.wgsl PACK) and
 * records one fused UWIN dispatch per (batch item, head, tile of query rows).
 */
function srWindows(
  ctx: GpuContext,
  plan: WindowsPlan,
  c: {
    batch: number;
    heads: number;
    side: number;
    D: number;
    G: number;
    o: SrLocalAttentionOptions;
    out: Rows;
    k2: Rows;
    v2: Rows;
    defines: Record<string, number>;
    params: (number | ReturnType<typeof f32>)[];
  },
): void {
  const { batch, heads, side, D, G, o, out } = c;
  const { nq, rowCells, tileRows, rowCells2, rows2 } = plan;
  const BH = batch * heads;
  // Packed blocks (f32 words): per (b, h), nq parts of side rows × rowCells cells × 16 channels; low-res / text: one
  // part of rows2 × rowCells2 cells × D channels. One window of slack at the end (the last windows overhang).
  const qBlock = side * rowCells * 16, bhBlock = nq * qBlock;
  const bhBlock2 = rows2 * rowCells2 * D;
  const packKern = ctx.kernel({
    name: "sr_local_pack",
    shader: "local_attention.wgsl",
    defines: { PACK: 1 },
    bindings: ["read", "write"],
  });
  const pack = (
    src: Rows,
    s: { rows: number; cols: number; rowCells: number; nq: number; qw4: number; qBlock: number; bh: number },
  ) => {
    const dst = ctx.empty([BH * s.bh + WIN_WORDS]);
    const per = Math.floor(ctx.maxBinding / (s.bh * 4));
    check(
      per >= 1,
      "srLocalAttention",
      () => `a packed head block (${s.bh * 4} bytes) exceeds the max storage binding`,
    );
    const qw4 = s.qw4;
    for (let bh0 = 0; bh0 < BH; bh0 += per) {
      const blocks = Math.min(per, BH - bh0);
      const view = ctx.alignedView(dst, bh0 * s.bh, (bh0 + blocks) * s.bh);
      check(view.off === 0, "srLocalAttention", "packed blocks must start aligned");
      const n = blocks * s.nq * s.rows * s.cols * qw4;
      // deno-fmt-ignore
      ctx.dispatch(packKern, [
        n, heads, s.rows, s.cols, s.rowCells, s.nq, qw4, s.qBlock / 4, s.bh / 4, bh0,
        src.offset / 4, src.rowStride / 4, src.batchStride / 4,
      ], [src.tensor, view.t], grid1d(n, 64));
    }
    return dst;
  };
  const hi = { rows: side, cols: side, rowCells, nq, qw4: 4, qBlock, bh: bhBlock };
  const kp = pack(o.k, hi), vp = pack(o.v, hi);
  const lo = {
    rows: rows2,
    cols: o.text ? o.text.length : rows2,
    rowCells: rowCells2,
    nq: 1,
    qw4: D / 4,
    qBlock: bhBlock2,
    bh: bhBlock2,
  };
  const k2p = c.defines.EXTRA ? pack(c.k2, lo) : null, v2p = c.defines.EXTRA ? pack(c.v2, lo) : null;

  // Bindings: Q, then K/V windows (part by part), the low-res/text windows, mask / log weights, out.
  const defines: Record<string, number> = { ...c.defines, UWIN: 1 };
  const buffers: (Tensor | ReturnType<GpuContext["uniformWindow"]>)[] = [o.q.tensor];
  const access: ("read" | "uniform" | "write")[] = ["read"];
  const win = WIN_WORDS * 4;
  const names = [["B_K", "B_V"], ["B_K1", "B_V1"], ["B_K2Q", "B_V2Q"], ["B_K3", "B_V3"]];
  for (let q = 0; q < nq; q++) {
    if (q > 0) defines[`NQ${q + 1}`] = 1;
    defines[names[q][0]] = buffers.length + 1;
    buffers.push(ctx.uniformWindow(kp, win)), access.push("uniform");
    defines[names[q][1]] = buffers.length + 1;
    buffers.push(ctx.uniformWindow(vp, win)), access.push("uniform");
  }
  if (k2p && v2p) {
    defines.B_K2 = buffers.length + 1;
    buffers.push(ctx.uniformWindow(k2p, win)), access.push("uniform");
    defines.B_V2 = buffers.length + 1;
    buffers.push(ctx.uniformWindow(v2p, win)), access.push("uniform");
  }
  if (defines.HAS_MASK) defines.B_MASK = buffers.length + 1, buffers.push(o.text!.mask!), access.push("read");
  if (defines.HAS_LOGW) {
    defines.B_LOGW = buffers.length + 1, buffers.push(o.text!.logWeights!), access.push("read");
  }
  defines.B_OUT = buffers.length + 1;
  buffers.push(out.tensor), access.push("write");
  const kern = ctx.kernel({
    name: `sr_local_attention_windows${defines.LOWRES ? "_lowres" : defines.TEXT ? "_text" : ""}`,
    shader: "local_attention.wgsl",
    defines,
    bindings: access,
  });
  const a = o.lowres ? side / o.lowres.side : 1, h2 = (o.lowres?.kernelSize ?? 0) >> 1;
  const halo = defines.KH >> 1;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      for (let t0 = 0; t0 < side; t0 += tileRows) {
        const rows = Math.min(tileRows, side - t0);
        const y0 = Math.max(0, t0 - halo);
        const y20 = o.lowres ? Math.max(0, Math.floor(t0 / a) - h2) : 0;
        const offs: number[] = [];
        for (let q = 0; q < nq; q++) {
          const at = (bh * bhBlock + q * qBlock + y0 * rowCells * 16) * 4;
          offs.push(kp.byteOffset + at, vp.byteOffset + at);
        }
        if (k2p && v2p) {
          const at = (bh * bhBlock2 + y20 * rowCells2 * D) * 4;
          offs.push(k2p.byteOffset + at, v2p.byteOffset + at);
        }
        ctx.dispatch(
          kern,
          [...c.params, b, h, t0, rows, y0, y20, rowCells, rowCells2],
          buffers,
          grid1d((rows / G) * side, 64),
          offs,
        );
      }
    }
  }
  for (const t of [kp, vp, k2p, v2p]) t?.release();
}
