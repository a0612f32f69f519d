// `deno task bench --only gemm`: every GPU GEMM variant (src/kernels/gemm.ts GEMM_VARIANTS) side by side, each under
// its own name (gemm_variant_gflops {kernel, shape, M, N, K, w}), at 4096³ and at the published SR stages' shapes
// with f16 weights: iterative SR at batch 8 (M = 8·3616 = 28928 rows for QKV and dense; the MLP in row blocks of
// 6528, src/models/transformer.ts mlpBlockRows at 256 MiB), DSR (M = 8·4096 = 32768). Per shape it also reports the
// fastest variant (gemm_variant_best_gflops), to fill src/kernels/choices.ts gpuGemm per shape class (smallM: M <= 256,
// narrowN: N <= 4096, wide: the rest). CPU adapters (where matmul() never takes these kernels) run one small odd shape.

import { GEMM_VARIANT_NAMES } from "../../src/kernels/gemm.ts";
import { gpuGemmClass } from "../../src/kernels/choices.ts";
import { benchGemmVariants, type GemmShape } from "./matmul.ts";
import type { BenchSuite } from "./_types.ts";

const H = 2560, I = 4 * H, ITERSR = 8 * 3616, DSR = 8 * 4096, MLP_BLOCK = 6528;

/** The GPU shapes: 4096³ (#13's target) and the SR projections at batch 8. */
export const GEMM_SHAPES: GemmShape[] = [
  { shape: "4096^3", M: 4096, N: 4096, K: 4096 },
  { shape: "itersr_qkv", M: ITERSR, N: 3 * H, K: H },
  { shape: "itersr_dense", M: ITERSR, N: H, K: H },
  { shape: "sr_mlp_h_4h", M: MLP_BLOCK, N: I, K: H },
  { shape: "sr_mlp_4h_h", M: MLP_BLOCK, N: H, K: I },
  { shape: "dsr_qkv", M: DSR, N: 3 * H, K: H },
  { shape: "dsr_dense", M: DSR, N: H, K: H },
];

export const gemmSuite: BenchSuite = {
  name: "gemm",
  description: "GPU GEMM variants (f16 W) side by side at 4096³ and the SR stages' shapes (batch 8)",
  async run(ctx, report, { quick }) {
    const variants = GEMM_VARIANT_NAMES.map((v) => ({ kernel: v as string, tiling: v, f16Math: false }));
    if (ctx.gpu.hasF16) variants.push({ kernel: "gemm_tiles_f16math", tiling: "gemm_tiles", f16Math: true });
    const shapes = ctx.gpu.isFallback
      ? [{ shape: "odd", M: 300, N: 264, K: 136 }]
      : quick
      ? GEMM_SHAPES.slice(0, 5)
      : GEMM_SHAPES;
    const res = await benchGemmVariants(ctx, report, shapes, variants, ctx.gpu.isFallback ? 1 : 3);
    for (const s of shapes.filter((s) => res.get(s.shape)?.size)) {
      const [kernel, gflops] = [...res.get(s.shape)!].reduce((a, b) => (b[1] > a[1] ? b : a));
      report({
        name: "gemm_variant_best_gflops",
        params: { shape: s.shape, M: s.M, N: s.N, K: s.K, class: gpuGemmClass(s.M, s.N), kernel },
        value: gflops,
        unit: "GFLOP/s",
        baseline: "gemm_tiles",
      });
    }
  },
};
