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

/** Records the search of each row of z [np, D] in codebook [n, D]; the result tensor is [np, 4] u32 (see vq.wgsl). */
export function vqSearchGpu(ctx: GpuContext, z: Tensor, codebook: Tensor): Tensor {
  check(codebook.shape.length === 2, "vqSearch", `codebook must be [n, D], got [${codebook.shape}]`);
  const [n, d] = codebook.shape;
  check(z.dtype === "f32", "vqSearch", `z must be f32, got ${z.dtype}`);
  check(z.size % d === 0, "vqSearch", `z [${z.shape}] is not a multiple of D=${d}`);
  check(d <= 1024, "vqSearch", `embedding dim ${d} exceeds the kernel's 1024`);
  check(n >= 2, "vqSearch", `codebook needs at least 2 entries, has ${n}`);
  const np = z.size / d;
  const out = ctx.empty([np, 4], "u32");
  const k = ctx.kernel({
    name: "vq_search",
    shader: "vq.wgsl",
    defines: { SEARCH: 1, W_F16: codebook.dtype === "f16" },
    bindings: ["read", "read", "write"],
  });
  ctx.dispatch(k, [np, n, d], [codebook, z, out], rowsGrid(np));
  return out;
}

/** Nearest codebook entry of each row of z [np, D] (reads the result back). */
export async function vqSearch(ctx: GpuContext, z: Tensor, codebook: Tensor): Promise<VqSearchResult> {
  const t = vqSearchGpu(ctx, z, codebook);
  const raw = await ctx.readBytes(t);
  t.release();
  const np = t.shape[0];
  const u = new Uint32Array(raw.buffer, 0, np * 4), f = new Float32Array(raw.buffer, 0, np * 4);
  const r: VqSearchResult = {
    best: new Int32Array(np),
    second: new Int32Array(np),
    dist: new Float32Array(np),
    gap: new Float32Array(np),
  };
  for (let p = 0; p < np; p++) {
    r.best[p] = u[4 * p];
    r.second[p] = u[4 * p + 1];
    r.dist[p] = f[4 * p + 2];
    r.gap[p] = f[4 * p + 3];
  }
  return r;
}

/** Codebook rows of `codes` as an NCHW map: [D, np]. Codes must be in [0, n). */
export function vqLookup(ctx: GpuContext, codes: Tensor, codebook: Tensor, out?: Tensor): Tensor {
  check(codebook.shape.length === 2, "vqLookup", `codebook must be [n, D], got [${codebook.shape}]`);
  check(codes.dtype === "i32" || codes.dtype === "u32", "vqLookup", `codes must be i32, got ${codes.dtype}`);
  const [n, d] = codebook.shape;
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
  ctx.dispatch(k, [np, n, d], [codebook, codes, o], [Math.ceil(groups / y), y, 1]);
  return o;
}
