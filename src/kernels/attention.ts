// Launchers for shaders/attention.wgsl: SAT standard_attention (q scaled first, additive log-weights, CogLM-style
// prefix masks) fused per (row, head, batch), and kvStore, which writes K/V rows of a QKV buffer into a cache.
// Not local (2-D window) attention: that is src/kernels/local_attention.ts of the SR models.

import { f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check, grid1d } from "./_grid.ts";

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
  /** Keys per online-softmax chunk held in workgroup memory (default ATTENTION_CHUNK). */
  chunk?: number;
  /** Invocations per workgroup, 32 or 64 (default: 32 on CPU adapters, where it measured 10-25% faster, else 64). */
  wg?: 32 | 64;
}

function viewOk(name: string, v: HeadsView, o: AttentionOptions): void {
  const bs = v.bs ?? 0, rows = name === "q" || name === "out" ? o.rows : o.keys;
  const last = (v.off ?? 0) + (o.batch - 1) * bs + (rows - 1) * v.ld + o.heads * o.headDim;
  check(v.t.dtype === "f32", "attention", `${name} must be f32, got ${v.t.dtype}`);
  check(
    last <= v.t.size,
    "attention",
    `${name} [${v.t.shape}] too small for batch ${o.batch} × ${rows} rows`,
  );
}

/** Writes softmax((q/√d)·kᵀ + logw, masked)·v for every (batch, row, head) into `out`. */
export function attention(ctx: GpuContext, o: AttentionOptions): void {
  const d = o.headDim;
  check(d > 0 && d <= 256, "attention", `head size ${d} is outside 1..256`);
  check(o.rows > 0 && o.keys > 0 && o.rows <= 65535 && o.heads <= 65535, "attention", "bad rows/keys/heads");
  viewOk("q", o.q, o), viewOk("k", o.k, o), viewOk("v", o.v, o), viewOk("out", o.out, o);
  check(
    o.out.t.buffer !== o.q.t.buffer && o.out.t.buffer !== o.k.t.buffer && o.out.t.buffer !== o.v.t.buffer,
    "attention",
    "out must not share a buffer with q/k/v",
  );
  const mask = o.mask ?? { ctxCols: o.keys, causalOffset: 0 };
  check(mask.causalOffset >= 0, "attention", "causalOffset must be >= 0");
  const wg = o.wg ?? (ctx.gpu.isFallback ? 32 : 64);
  const m4 = (x: number) => x % 4 === 0;
  const vec4 = o.vec4 !== false && m4(d) && m4(o.k.off ?? 0) && m4(o.k.ld) && m4(o.k.bs ?? 0);
  if (o.visible) {
    check(
      o.visible.dtype === "i32" && o.visible.size >= o.rows,
      "attention",
      `visible must be i32 [${o.rows}]`,
    );
  }
  const k = ctx.kernel({
    name: "attention",
    shader: "attention.wgsl",
    defines: { VIS: !!o.visible, VEC4: vec4, CHUNK: o.chunk ?? ATTENTION_CHUNK, WG: wg },
    bindings: o.visible ? ["read", "read", "read", "read", "write"] : ["read", "read", "read", "write"],
  });
  const params = [
    d,
    o.rows,
    o.keys,
    mask.ctxCols,
    mask.causalOffset,
    f32(o.scale ?? 1 / Math.sqrt(d)),
    o.logWeights?.cols ?? 0,
    f32(o.logWeights?.value ?? 0),
    o.q.off ?? 0,
    o.q.ld,
    o.q.bs ?? 0,
    o.k.off ?? 0,
    o.k.ld,
    o.k.bs ?? 0,
    o.v.off ?? 0,
    o.v.ld,
    o.v.bs ?? 0,
    o.out.off ?? 0,
    o.out.ld,
    o.out.bs ?? 0,
  ];
  const bufs = o.visible ? [o.q.t, o.k.t, o.v.t, o.visible, o.out.t] : [o.q.t, o.k.t, o.v.t, o.out.t];
  ctx.dispatch(k, params, bufs, [o.rows, o.heads, o.batch]);
}

/**
 * Copies `rows` K and V rows (width elements each) of a QKV buffer into caches [batch, maxLen, width] at
 * positions t0.. of every batch entry: kCache[b, t0 + r] = src[kOff + b·srcBs + r·ld]. srcBs = 0 broadcasts one
 * prompt to the whole batch.
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
    `caches [${kCache.shape}] are not [${o.batch}, T, ${o.width}]`,
  );
  check(
    o.t0 + o.rows <= maxLen,
    "kvStore",
    `positions ${o.t0}..${o.t0 + o.rows} exceed the cache length ${maxLen}`,
  );
  const k = ctx.kernel({
    name: "kv_store",
    shader: "attention.wgsl",
    entry: "kv_store",
    defines: { KV_STORE: 1 },
    bindings: ["read", "write", "write"],
  });
  const params = [
    o.rows,
    o.width,
    o.batch,
    o.t0,
    o.ld,
    o.srcBs ?? 0,
    o.kOff,
    o.vOff,
    maxLen * o.width,
    o.width,
  ];
  ctx.dispatch(k, params, [src, kCache, vCache], grid1d(o.batch * o.rows * o.width, 256));
}
