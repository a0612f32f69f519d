// Launchers for the vector quantiser (shaders/vq.wgsl): nearest-codebook search and code → embedding lookup.
// Not a sampler: search is a deterministic argmin (first index on ties) that also reports the runner-up and the gap.

import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";

export interface VqSearchResult {
  /** Best code per row (first index on exact ties). */
  best: Int32Array;
  /** Runner-up code per row. */
  second: Int32Array;
  /** |z|² − 2 z·e + |e|² of the best code. */
  dist: Float32Array;
  /** Distance of the runner-up minus the best's (≥ 0; small = near-tie). */
  gap: Float32Array;
}

function rowsGrid(n: number): [number, number, number] {
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y, 1];
}

/**
 * Row blocks of a codebook [n, D], each bound as a view within the adapter's max storage binding (one block, the
 * whole codebook, when it fits): codes c0..c0+n of the block start at element `eoff` of `e`.
 */
function codebookBlocks(
  ctx: GpuContext,
  codebook: Tensor,
): { c0: number; n: number; e: Tensor; eoff: number }[] {
  const [n, d] = codebook.shape;
  if (codebook.byteLength <= ctx.maxBinding) return [{ c0: 0, n, e: codebook, eoff: 0 }];
  const eb = codebook.dtype === "f16" ? 2 : 4;
  const per = Math.floor((ctx.maxBinding - ctx.gpu.limits.minStorageBufferOffsetAlignment - 4) / (d * eb));
  check(
    per >= 1,
    "vq",
    () => `one codebook row (D=${d}) exceeds the max storage binding (${ctx.maxBinding} bytes)`,
  );
  const blocks = [];
  for (let c0 = 0; c0 < n; c0 += per) {
    const nb = Math.min(per, n - c0);
    const v = ctx.alignedView(codebook, c0 * d, (c0 + nb) * d);
    blocks.push({ c0, n: nb, e: v.t, eoff: v.off });
  }
  return blocks;
}

/**
 * Records the search of each row of z [np, D] in codebook rows [c0, c0 + n) (bound as `e` from element `eoff`); the
 * result tensor is [np, 4] u32 (see vq.wgsl), indices relative to c0.
 */
function searchBlock(
  ctx: GpuContext,
  z: Tensor,
  b: { c0: number; n: number; e: Tensor; eoff: number },
  d: number,
  f16: boolean,
): Tensor {
  const np = z.size / d;
  const out = ctx.empty([np, 4], "u32");
  const k = ctx.kernel({
    name: "vq_search",
    shader: "vq.wgsl",
    defines: { SEARCH: 1, W_F16: f16 },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(k, [np, b.n, d, 0, b.eoff], [b.e, z, out], rowsGrid(np));
  return out;
}

/**
 * Nearest codebook entry of each row of z [np, D] (reads the result back). A codebook above the max storage binding
 * is searched in row blocks whose best two per row are merged here (distance, then the lower index on ties).
 */
export async function vqSearch(ctx: GpuContext, z: Tensor, codebook: Tensor): Promise<VqSearchResult> {
  check(codebook.shape.length === 2, "vqSearch", () => `codebook must be [n, D], got [${codebook.shape}]`);
  const [n, d] = codebook.shape;
  check(z.dtype === "f32", "vqSearch", () => `z must be f32, got ${z.dtype}`);
  check(z.size % d === 0, "vqSearch", () => `z [${z.shape}] is not a multiple of D=${d}`);
  check(d <= 1024, "vqSearch", () => `embedding dim ${d} exceeds the kernel's 1024`);
  check(n >= 2, "vqSearch", () => `codebook needs at least 2 entries, has ${n}`);
  const np = z.size / d;
  const blocks = codebookBlocks(ctx, codebook);
  // f64: d1 + gap is exact, so one block returns the kernel's gap unchanged.
  const d1 = new Float64Array(np).fill(Infinity), d2 = new Float64Array(np).fill(Infinity);
  const i1 = new Int32Array(np).fill(-1), i2 = new Int32Array(np).fill(-1);
  const before = (d: number, i: number, e: number, j: number) => d < e || (d === e && (j < 0 || i < j));
  for (const b of blocks) {
    const t = searchBlock(ctx, z, b, d, codebook.dtype === "f16");
    const raw = await ctx.readBytes(t);
    t.release();
    const u = new Uint32Array(raw.buffer, 0, np * 4), f = new Float32Array(raw.buffer, 0, np * 4);
    for (let p = 0; p < np; p++) {
      const cands: [number, number][] = [[f[4 * p + 2], u[4 * p] + b.c0]];
      // A one-code block has no runner-up (index 0xffffffff).
      if (u[4 * p + 1] !== 0xffffffff) cands.push([f[4 * p + 2] + f[4 * p + 3], u[4 * p + 1] + b.c0]);
      for (const [dist, i] of cands) {
        if (before(dist, i, d1[p], i1[p])) {
          d2[p] = d1[p], i2[p] = i1[p], d1[p] = dist, i1[p] = i;
        } else if (before(dist, i, d2[p], i2[p])) {
          d2[p] = dist, i2[p] = i;
        }
      }
    }
  }
  const gap = new Float32Array(np);
  for (let p = 0; p < np; p++) gap[p] = d2[p] - d1[p];
  return { best: i1, second: i2, dist: Float32Array.from(d1), gap };
}

/**
 * Codebook rows of `codes` as an NCHW map: [D, np]. Codes must be in [0, n). A codebook above the max storage
 * binding is bound in row blocks, one dispatch each writing the positions whose codes it holds.
 */
export function vqLookup(ctx: GpuContext, codes: Tensor, codebook: Tensor, out?: Tensor): Tensor {
  check(codebook.shape.length === 2, "vqLookup", () => `codebook must be [n, D], got [${codebook.shape}]`);
  check(
    codes.dtype === "i32" || codes.dtype === "u32",
    "vqLookup",
    () => `codes must be i32, got ${codes.dtype}`,
  );
  const [, d] = codebook.shape;
  const np = codes.size;
  const o = out ?? ctx.empty([d, np], "f32");
  const k = ctx.kernel({
    name: "vq_lookup",
    shader: "vq.wgsl",
    defines: { W_F16: codebook.dtype === "f16" },
    bindings: ["read", "read", "write"],
  });
  const total = d * np;
  const groups = Math.ceil(total / 256);
  const y = Math.ceil(groups / 65535);
  for (const b of codebookBlocks(ctx, codebook)) {
    ctx.dispatch(k, [np, b.n, d, b.c0, b.eoff], [b.e, codes, o], [Math.ceil(groups / y), y, 1]);
  }
  return o;
}
