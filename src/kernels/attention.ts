// Launchers for shaders/attention.wgsl: SAT standard_attention (q scaled first, additive log-weights, CogLM-style
// prefix masks) fused per (row, head, batch), and kvStore, which writes K/V rows of a QKV buffer into a cache.
// Not local (2-D window) attention: that is src/kernels/local_attention.ts of the SR models.

import { type F32, f32, type GpuContext, type Kernel } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";
import { matmul } from "./matmul.ts";
import { softmax } from "./softmax.ts";
import { choices, unrollFor } from "./choices.ts";
import { readEnv } from "../gpu/env.ts";

/** `COGVIEW2_ATTENTION_WG=32|64|128|256`: the fused attention kernel's width instead of choices.ts attentionWg. */
export const ATTENTION_WG_ENV = "COGVIEW2_ATTENTION_WG";

/** The width COGVIEW2_ATTENTION_WG names (`env` in tests), or null; another value is an error naming the variable. */
export function attentionWgOverride(env = readEnv(ATTENTION_WG_ENV)): 32 | 64 | 128 | 256 | null {
  if (env === undefined || env === "") return null;
  const n = Number(env);
  if (n !== 32 && n !== 64 && n !== 128 && n !== 256) {
    throw new Error(`${ATTENTION_WG_ENV}=${env}: expected 32, 64, 128 or 256`);
  }
  return n;
}

/**
 * `COGVIEW2_ATTENTION_SPLIT=N` (1..MAX_ATTENTION_SPLIT): the fused one-row decode attention splits each (head, batch)
 * over N key ranges (flash-decoding: N workgroups, then a combine dispatch) instead of choices.ts attentionSplit;
 * 1 is the one-workgroup kernel.
 */
export const ATTENTION_SPLIT_ENV = "COGVIEW2_ATTENTION_SPLIT";

/** The most key splits (shaders/attention.wgsl SPLIT: split·keys must fit u32, keys < 2^24). */
export const MAX_ATTENTION_SPLIT = 256;

/** The split count COGVIEW2_ATTENTION_SPLIT names (`env` in tests), or null; another value is an error naming it. */
export function attentionSplitOverride(env = readEnv(ATTENTION_SPLIT_ENV)): number | null {
  if (env === undefined || env === "") return null;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1 || n > MAX_ATTENTION_SPLIT) {
    throw new Error(`${ATTENTION_SPLIT_ENV}=${env}: expected an integer from 1 to ${MAX_ATTENTION_SPLIT}`);
  }
  return n;
}

/**
 * Key splits of a one-row decode attention over `keys` keys for batch·heads (head, batch) pairs: the forced `split`,
 * else COGVIEW2_ATTENTION_SPLIT, else the table's attentionSplit. Capped at keys (a split per key at most) and so
 * that the partials fit one storage binding.
 */
export function attentionSplitFor(
  ctx: GpuContext,
  o: { batch: number; heads: number; headDim: number; keys: number; split?: number },
): number {
  const want = o.split ?? attentionSplitOverride() ?? choices(ctx).attentionSplit;
  const pairs = o.batch * o.heads;
  const fit = Math.floor(ctx.maxBinding / (pairs * (o.headDim + 2) * 4));
  return Math.max(1, Math.min(want, o.keys, fit, MAX_ATTENTION_SPLIT));
}

/**
 * Keys per chunk of the online softmax. Workgroup memory is costly on CPU adapters (lavapipe: 1024 keys made a
 * decode step 5-9x slower than 256); 256 keeps a short prompt in one chunk.
 */
export const ATTENTION_CHUNK = 256;

/** Rows of heads·d values in a tensor: element (b, row, head, i) at off + b·bs + row·ld + head·d + i. */
export interface HeadsView {
  t: Tensor;
  off?: number;
  ld: number;
  /** Batch stride in elements (0 shares one set across the batch). */
  bs?: number;
}

export interface AttentionOptions {
  batch: number;
  heads: number;
  headDim: number;
  /** Query rows per batch entry. */
  rows: number;
  /** Keys per batch entry (cache length). */
  keys: number;
  q: HeadsView;
  k: HeadsView;
  v: HeadsView;
  out: HeadsView;
  /**
   * Visible keys of query row i: j < max(ctxCols, i + causalOffset + 1) — causal with every row seeing the first
   * ctxCols keys (get_masks_and_position_ids_coglm). Absent: every key is visible (a decode step).
   */
  mask?: { ctxCols: number; causalOffset: number };
  /** Instead of `mask`: i32 [rows], row i sees keys j < visible[i] (any per-row prefix; same for every batch entry). */
  visible?: Tensor;
  /** log_attention_weights: `value` added to the scores of keys j < cols. */
  logWeights?: { cols: number; value: number };
  /** Default 1/sqrt(headDim). */
  scale?: number;
  /** false forces scalar key loads (tests); default: vec4 where the layout allows. */
  vec4?: boolean;
  /** Host copy of `visible` (lets long prefills take the matmul path). */
  visibleHost?: Int32Array;
  /**
   * "fused": one workgroup per (row, head, batch); "matmul": q·kᵀ → softmax → ·v through the batched matmul (3-9x faster
   * for prefills of 100+ rows on lavapipe). Default: matmul from MATMUL_PATH_ROWS query rows when the scores fit.
   */
  path?: "fused" | "matmul" | "flash";
  /**
   * A decode step's K/V store fused in (one query row, the fused path): the step's new K and V rows, f32 in q's tensor
   * at kOff / vOff + b·q.bs + head·d, are first written into `k` / `v` (the caches) at key position keys − 1, as
   * kvStore would (f16 rounding for f16 caches), then attention runs over all `keys` — one dispatch instead of two.
   */
  storeNew?: { kOff: number; vOff: number };
  /** Keys per online-softmax chunk held in workgroup memory (default ATTENTION_CHUNK). */
  chunk?: number;
  /**
   * Invocations per workgroup of the fused kernel, 32 to 256 (at most `chunk`); default COGVIEW2_ATTENTION_WG, else
   * the backend's choice (src/kernels/choices.ts attentionWg: 32 on CPU adapters, 256 on GPUs).
   */
  wg?: 32 | 64 | 128 | 256;
  /**
   * One query row on the fused path only (a decode step): split each (head, batch) over this many key ranges, one
   * workgroup each writing a partial softmax state, merged by a second dispatch (flash-decoding); 1: one workgroup
   * per (head, batch). Default attentionSplitFor (COGVIEW2_ATTENTION_SPLIT, else choices.ts attentionSplit).
   */
  split?: number;
}

function viewOk(name: string, v: HeadsView, o: AttentionOptions): void {
  const bs = v.bs ?? 0, rows = name === "q" || name === "out" ? o.rows : o.keys;
  const last = (v.off ?? 0) + (o.batch - 1) * bs + (rows - 1) * v.ld + o.heads * o.headDim;
  const f16ok = name === "k" || name === "v";
  check(
    v.t.dtype === "f32" || (f16ok && v.t.dtype === "f16"),
    "attention",
    () => `${name} must be f32${f16ok ? " or f16" : ""}, got ${v.t.dtype}`,
  );
  check(
    last <= v.t.size,
    "attention",
    () => `${name} [${v.t.shape}] too small for batch ${o.batch} × ${rows} rows`,
  );
}

/** The checks both attention kernels make of their views and masks; returns the mask (default: all keys visible). */
function checkAttention(name: string, o: AttentionOptions): { ctxCols: number; causalOffset: number } {
  viewOk("q", o.q, o), viewOk("k", o.k, o), viewOk("v", o.v, o), viewOk("out", o.out, o);
  check(
    o.out.t.buffer !== o.q.t.buffer && o.out.t.buffer !== o.k.t.buffer && o.out.t.buffer !== o.v.t.buffer,
    name,
    "out must not share a buffer with q/k/v",
  );
  if (o.visible) {
    check(
      o.visible.dtype === "i32" && o.visible.size >= o.rows,
      name,
      () => `visible must be i32 [${o.rows}]`,
    );
  }
  const mask = o.mask ?? { ctxCols: o.keys, causalOffset: 0 };
  check(mask.causalOffset >= 0, name, "causalOffset must be >= 0");
  return mask;
}

/** Params shared by attention.wgsl and flash_attention.wgsl: sizes, mask, scale, log weights, the four views. */
function attentionParams(
  o: AttentionOptions,
  mask: { ctxCols: number; causalOffset: number },
): (number | F32)[] {
  const d = o.headDim, q = o.q, k = o.k, v = o.v, out = o.out;
  return [
    d,
    o.rows,
    o.keys,
    mask.ctxCols,
    mask.causalOffset,
    f32(o.scale ?? 1 / Math.sqrt(d)),
    o.logWeights?.cols ?? 0,
    f32(o.logWeights?.value ?? 0),
    q.off ?? 0,
    q.ld,
    q.bs ?? 0,
    k.off ?? 0,
    k.ld,
    k.bs ?? 0,
    v.off ?? 0,
    v.ld,
    v.bs ?? 0,
    out.off ?? 0,
    out.ld,
    out.bs ?? 0,
  ];
}

/**
 * The fused kernels (attention.wgsl main) per context by their defines (a decode step launches one per layer: its
 * defines object and pipeline-cache key are not rebuilt each time).
 */
const fusedKernels = new WeakMap<GpuContext, Map<string, Kernel>>();

function fusedKernel(
  ctx: GpuContext,
  f: {
    split: boolean;
    vis: boolean;
    vec4: boolean;
    kvF16: boolean;
    store: boolean;
    chunk: number;
    wg: number;
    unroll: boolean;
  },
): Kernel {
  const key = `${+f.split}${+f.vis}${+f.vec4}${+f.kvF16}${+f.store}${+f.unroll}|${f.chunk}|${f.wg}`;
  let byKey = fusedKernels.get(ctx);
  if (!byKey) fusedKernels.set(ctx, byKey = new Map());
  let k = byKey.get(key);
  if (k) return k;
  k = ctx.kernel({
    name: (f.store ? "attention_kv_store" : "attention") + (f.split ? "_split" : ""),
    shader: "attention.wgsl",
    defines: {
      SPLIT: f.split,
      VIS: f.vis,
      VEC4: f.vec4,
      KV_F16: f.kvF16,
      CHUNK: f.chunk,
      WG: f.wg,
      KV_NEW: f.store,
      KV_ACCESS: f.store ? "read_write" : "read",
      UNROLL: f.unroll,
    },
    bindings: [
      "read",
      f.store ? "write" : "read",
      f.store ? "write" : "read",
      ...(f.vis ? ["read" as const] : []),
      "write",
    ],
  });
  byKey.set(key, k);
  return k;
}

/**
 * Additive scores for `flashAttention`: element (i, j) at off + i·ld + j is added to row i's score of key j (ld 0: one
 * row for every query row), as the SR models' base-attention mask (-1e9 on masked entries, log weights elsewhere).
 */
export interface AddView {
  t: Tensor;
  off?: number;
  ld: number;
}

/** Query rows per workgroup and keys per tile of `flashAttention`. */
export const FLASH_ROWS = 64, FLASH_KEYS = 16;

/**
 * Attention without a materialized score matrix (shaders/flash_attention.wgsl): tiles of FLASH_ROWS query rows share
 * each K/V tile through workgroup memory, online softmax in registers. What GPUs run for prefills and the SR base
 * attention (attention() picks it off CPU adapters; `path: "flash"` forces it); same options as `attention`, plus
 * `add`. Head sizes up to 128.
 */
export function flashAttention(ctx: GpuContext, o: AttentionOptions & { add?: AddView }): void {
  const d = o.headDim;
  check(d > 0 && d <= 128, "flashAttention", () => `head size ${d} is outside 1..128`);
  check(o.k.t.dtype === "f32" && o.v.t.dtype === "f32", "flashAttention", "K and V must be f32");
  check(
    o.rows > 0 && o.keys > 0 && o.heads <= 65535 && o.batch <= 65535,
    "flashAttention",
    "bad rows/keys/heads",
  );
  const mask = checkAttention("flashAttention", o);
  if (o.add) {
    const last = (o.add.off ?? 0) + (o.rows - 1) * o.add.ld + o.keys;
    check(
      o.add.t.dtype === "f32" && last <= o.add.t.size,
      "flashAttention",
      () => `add [${o.add!.t.shape}] too small`,
    );
  }
  const bindings: ("read" | "write")[] = ["read", "read", "read"];
  const bufs: Tensor[] = [o.q.t, o.k.t, o.v.t];
  if (o.add) bindings.push("read"), bufs.push(o.add.t);
  if (o.visible) bindings.push("read"), bufs.push(o.visible);
  bindings.push("write"), bufs.push(o.out.t);
  const k = ctx.kernel({
    name: "flash_attention",
    shader: "flash_attention.wgsl",
    defines: {
      ADD: !!o.add,
      VIS: !!o.visible,
      BR: FLASH_ROWS,
      BC: FLASH_KEYS,
      D4: Math.ceil(d / 4),
      UNROLL: unrollFor(ctx),
    },
    bindings,
  });
  const params = [...attentionParams(o, mask), o.add?.off ?? 0, o.add?.ld ?? 0];
  ctx.dispatch(k, params, bufs, [Math.ceil(o.rows / FLASH_ROWS), o.heads, o.batch]);
}

/** Query rows from which `attention` takes the matmul path by default. */
export const MATMUL_PATH_ROWS = 16;

/** Writes softmax((q/√d)·kᵀ + logw, masked)·v for every (batch, row, head) into `out`. */
export function attention(ctx: GpuContext, o: AttentionOptions): void {
  const scoreBytes = o.heads * o.rows * o.keys * 4;
  // f16 K/V (CogLM's f16 KV cache): the fused kernel and the matmul path read them; flash takes f32 only.
  const kvF16 = o.k.t.dtype === "f16";
  check(o.v.t.dtype === o.k.t.dtype, "attention", () => `k is ${o.k.t.dtype} but v is ${o.v.t.dtype}`);
  // GPUs: tiled online softmax for prefills (no score matrix); CPU adapters: the batched matmul (3-9x faster than
  // the fused kernel for prefills of 100+ rows on lavapipe) when the scores fit one binding.
  const path = o.path ??
    (o.rows >= MATMUL_PATH_ROWS && !ctx.gpu.isFallback && o.headDim <= 128 && !kvF16
      ? "flash"
      : o.rows >= MATMUL_PATH_ROWS && scoreBytes <= ctx.maxBinding && (!o.visible || o.visibleHost)
      ? "matmul"
      : "fused");
  check(path !== "flash" || !kvF16, "attention", "the flash path takes f32 K/V");
  check(
    o.split === undefined || o.split === 1 || (path === "fused" && o.rows === 1),
    "attention",
    "split takes one query row on the fused path",
  );
  const st = o.storeNew;
  if (st) {
    check(path === "fused" && o.rows === 1, "attention", "storeNew takes one query row on the fused path");
    check(
      o.k.t.buffer !== o.v.t.buffer && o.k.t.buffer !== o.q.t.buffer && o.v.t.buffer !== o.q.t.buffer,
      "attention",
      "storeNew writes k and v: they must be separate buffers from each other and from q",
    );
    const last = Math.max(st.kOff, st.vOff) + (o.batch - 1) * (o.q.bs ?? 0) + o.heads * o.headDim;
    check(
      st.kOff >= 0 && st.vOff >= 0 && last <= o.q.t.size,
      "attention",
      () => `storeNew rows outside q [${o.q.t.shape}]`,
    );
  }
  if (path === "flash") return flashAttention(ctx, o);
  const d = o.headDim;
  check(d > 0 && d <= 256, "attention", () => `head size ${d} is outside 1..256`);
  check(o.rows > 0 && o.keys > 0 && o.rows <= 65535 && o.heads <= 65535, "attention", "bad rows/keys/heads");
  const mask = checkAttention("attention", o);
  if (path === "matmul") return attentionMatmul(ctx, o, o.visibleHost);
  const wg = o.wg ?? attentionWgOverride() ?? choices(ctx).attentionWg;
  const chunk = o.chunk ?? ATTENTION_CHUNK;
  check(
    [32, 64, 128, 256].includes(wg) && chunk >= wg,
    "attention",
    () => `workgroup width ${wg} must be 32, 64, 128 or 256 and at most the chunk (${chunk} keys)`,
  );
  const m4 = (x: number) => x % 4 === 0;
  const vec4 = o.vec4 !== false && m4(d) && m4(o.k.off ?? 0) && m4(o.k.ld) && m4(o.k.bs ?? 0);
  if (kvF16) {
    const even = (x: number) => x % 2 === 0;
    check(
      [o.k.off ?? 0, o.k.ld, o.k.bs ?? 0, o.v.off ?? 0, o.v.ld, o.v.bs ?? 0, d].every(even),
      "attention",
      "f16 K/V need even offsets, strides and head size",
    );
  }
  check(
    o.split === undefined || (Number.isInteger(o.split) && o.split >= 1 && o.split <= MAX_ATTENTION_SPLIT),
    "attention",
    () => `split ${o.split} must be an integer from 1 to ${MAX_ATTENTION_SPLIT}`,
  );
  const splits = o.rows === 1
    ? attentionSplitFor(ctx, { batch: o.batch, heads: o.heads, headDim: d, keys: o.keys, split: o.split })
    : 1;
  check(
    splits === 1 || o.keys < 1 << 24,
    "attention",
    () => `split attention takes fewer than 2^24 keys, got ${o.keys}`,
  );
  const k = fusedKernel(ctx, {
    split: splits > 1,
    vis: !!o.visible,
    vec4,
    kvF16,
    store: !!st,
    chunk,
    wg,
    unroll: unrollFor(ctx),
  });
  const params = attentionParams(o, mask);
  params.push(o.keys - 1, st?.kOff ?? 0, st?.vOff ?? 0, splits, o.heads);
  if (splits === 1) {
    const bufs = o.visible ? [o.q.t, o.k.t, o.v.t, o.visible, o.out.t] : [o.q.t, o.k.t, o.v.t, o.out.t];
    ctx.dispatch(k, params, bufs, [o.rows, o.heads, o.batch]);
    return;
  }
  // Flash-decoding: S workgroups per (head, batch) write (acc[d], m, l) partials, one more dispatch merges them.
  const part = ctx.empty([o.batch * o.heads * splits * (d + 2)]);
  const bufs = o.visible ? [o.q.t, o.k.t, o.v.t, o.visible, part] : [o.q.t, o.k.t, o.v.t, part];
  ctx.dispatch(k, params, bufs, [splits, o.heads, o.batch]);
  const c = ctx.kernel({
    name: "attention_combine",
    shader: "attention.wgsl",
    entry: "combine",
    defines: { COMBINE: 1 },
    bindings: ["read", "write"],
  });
  ctx.dispatch(c, [d, o.heads, splits, o.out.off ?? 0, o.out.ld, o.out.bs ?? 0], [part, o.out.t], [
    o.heads,
    o.batch,
  ]);
  part.release();
}

/**
 * Copies `rows` K and V rows (width elements each) of a QKV buffer into caches [batch, maxLen, width] at
 * positions t0.. of every batch entry: kCache[b, t0 + r] = src[kOff + b·srcBs + r·ld]. srcBs = 0 broadcasts one
 * prompt to the whole batch. f16 caches (both or neither) store the values rounded to f16 (width even).
 */
export function kvStore(
  ctx: GpuContext,
  src: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  o: {
    batch: number;
    rows: number;
    width: number;
    t0: number;
    ld: number;
    srcBs?: number;
    kOff: number;
    vOff: number;
  },
): void {
  const maxLen = kCache.size / (o.batch * o.width);
  check(
    kCache.size === vCache.size && Number.isInteger(maxLen),
    "kvStore",
    () => `caches [${kCache.shape}] are not [${o.batch}, T, ${o.width}]`,
  );
  check(
    o.t0 + o.rows <= maxLen,
    "kvStore",
    () => `positions ${o.t0}..${o.t0 + o.rows} exceed the cache length ${maxLen}`,
  );
  const f16 = kCache.dtype === "f16";
  check(
    kCache.dtype === vCache.dtype && (f16 || kCache.dtype === "f32"),
    "kvStore",
    "caches must be both f32 or f16",
  );
  check(!f16 || o.width % 2 === 0, "kvStore", () => `f16 caches need an even width, got ${o.width}`);
  const k = ctx.kernel({
    name: "kv_store",
    shader: "attention.wgsl",
    entry: "kv_store",
    defines: { KV_STORE: 1, KV_F16: f16 },
    bindings: ["read", "write", "write"],
  });
  const params = [
    o.rows,
    f16 ? o.width / 2 : o.width,
    o.batch,
    o.t0,
    o.ld,
    o.srcBs ?? 0,
    o.kOff,
    o.vOff,
    maxLen * o.width,
    o.width,
  ];
  ctx.dispatch(
    k,
    params,
    [src, kCache, vCache],
    grid1d(o.batch * o.rows * (f16 ? o.width / 2 : o.width), 256),
  );
}

const maskCache = new WeakMap<GpuContext, Map<string, Tensor>>();

/** The additive [rows, keys] term of the matmul path: log-weights, and −1e30 on masked keys (exp → 0 as SAT's −10000). */
function additiveMask(ctx: GpuContext, o: AttentionOptions, vis: Int32Array | null): Tensor {
  const lw = o.logWeights;
  const key = vis
    ? ""
    : `${o.rows}:${o.keys}:${o.mask?.ctxCols}:${o.mask?.causalOffset}:${lw?.cols}:${lw?.value}`;
  let m = maskCache.get(ctx);
  if (!m) {
    const map = m = new Map();
    maskCache.set(ctx, map);
    ctx.registerCache(() => {
      for (const v of map.values()) v.release();
      map.clear();
    });
  }
  const hit = key ? m.get(key) : undefined;
  if (hit) return hit;
  const mask = o.mask ?? { ctxCols: o.keys, causalOffset: 0 };
  const a = new Float32Array(o.rows * o.keys);
  for (let i = 0; i < o.rows; i++) {
    const visible = vis ? vis[i] : Math.max(mask.ctxCols, i + mask.causalOffset + 1);
    for (let j = 0; j < o.keys; j++) {
      a[i * o.keys + j] = j >= visible ? -1e30 : lw && j < lw.cols ? lw.value : 0;
    }
  }
  const t = ctx.upload(a, [o.rows, o.keys]);
  if (key) {
    if (m.size >= 8) {
      for (const v of m.values()) v.release();
      m.clear();
    }
    m.set(key, t);
  }
  return t;
}

/**
 * The same attention as `attention` through the batched matmul: scores = (q·kᵀ)/√d per (batch, head), softmax with
 * an additive mask/log-weight term, then ·v. Faster for long prefills (many query rows) on CPU adapters, where the
 * fused kernel re-reads every key per query row. `visibleHost` gives the host copy of `o.visible` when that is used.
 */
export function attentionMatmul(ctx: GpuContext, o: AttentionOptions, visibleHost?: Int32Array): void {
  const { batch: B, heads, rows, keys } = o;
  check(!o.visible || !!visibleHost, "attentionMatmul", "pass the host copy of `visible`");
  const per = Math.floor(ctx.maxBinding / (heads * rows * keys * 4));
  check(per >= 1, "attentionMatmul", () => `scores of ${heads}×${rows}×${keys} exceed one storage binding`);
  const add = additiveMask(ctx, o, visibleHost ?? null);
  for (let b0 = 0; b0 < B; b0 += per) {
    const g = Math.min(per, B - b0);
    attentionMatmulGroup(ctx, o, add, b0, g);
  }
  if (o.visible) add.release();
}

function attentionMatmulGroup(
  ctx: GpuContext,
  o: AttentionOptions,
  add: Tensor,
  b0: number,
  g: number,
): void {
  const { heads, headDim: d, rows, keys } = o;
  const scores = ctx.empty([g * heads * rows, keys]);
  for (let b = b0; b < b0 + g; b++) {
    matmul(ctx, o.q.t, o.k.t, {
      M: rows,
      N: keys,
      K: d,
      batch: heads,
      lda: o.q.ld,
      aOff: (o.q.off ?? 0) + b * (o.q.bs ?? 0),
      aBatchStride: d,
      ldw: o.k.ld,
      wOff: (o.k.off ?? 0) + b * (o.k.bs ?? 0),
      wBatchStride: d,
      ldc: keys,
      cOff: (b - b0) * heads * rows * keys,
      cBatchStride: rows * keys,
      alpha: o.scale ?? 1 / Math.sqrt(d),
      out: scores,
    });
  }
  const probs = softmax(ctx, scores, { n: keys, rows: g * heads * rows, add });
  scores.release();
  for (let b = b0; b < b0 + g; b++) {
    matmul(ctx, probs, o.v.t, {
      M: rows,
      N: d,
      K: keys,
      transW: false,
      batch: heads,
      aOff: (b - b0) * heads * rows * keys,
      aBatchStride: rows * keys,
      ldw: o.v.ld,
      wOff: (o.v.off ?? 0) + b * (o.v.bs ?? 0),
      wBatchStride: d,
      ldc: o.out.ld,
      cOff: (o.out.off ?? 0) + b * (o.out.bs ?? 0),
      cBatchStride: d,
      out: o.out.t,
    });
  }
  probs.release();
}
