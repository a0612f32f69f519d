// `deno task bench --only gemm`: every GPU GEMM variant (src/kernels/gemm.ts GEMM_VARIANTS) side by side, each under
// its own name (gemm_variant_gflops {kernel, shape, M, N, K, w}), at 4096³ and at the published SR stages' shapes
// with f16 weights: iterative SR at batch 8 (M = 8·3616 = 28928 rows for QKV and dense; the MLP in row blocks of
// 6528, src/models/transformer.ts mlpBlockRows at 256 MiB), DSR (M = 8·4096 = 32768). Per shape it also reports the
// fastest variant (gemm_variant_best_gflops), to fill src/kernels/choices.ts gpuGemm per shape class (smallM: M <= 256,
// narrowN: N <= 4096, wide: the rest). CPU adapters (where matmul() never takes these kernels) run one small odd shape.
// A variant this device cannot run (the gemm_sg_* subgroup ones without `subgroups`, the gemm_sgmat* tensor-core ones
// without Dawn's chromium-experimental-subgroup-matrix and an f16->f32 configuration, tilings above its workgroup
// limits) is reported as gemm_variant_skipped with the reason, never replaced by another; one that compiles wrong or
// not at all is skipped with the check's or the compiler's message.

import { GEMM_VARIANT_NAMES, GEMM_VARIANTS } from "../../src/kernels/gemm.ts";
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
  async run(ctx, report, { quick, variants: only }) {
    // --variants REGEX: those whose name matches, and gemm_tiles (the baseline of every speedup below).
    const pick = (name: string) => !only || only.test(name) || name === "gemm_tiles";
    const variants = GEMM_VARIANT_NAMES.filter(pick).map((v) => ({
      kernel: v as string,
      tiling: v,
      f16Math: false,
    }));
    if (ctx.gpu.hasF16 && pick("gemm_tiles_f16math")) {
      variants.push({ kernel: "gemm_tiles_f16math", tiling: "gemm_tiles", f16Math: true });
    }
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
    // Per shape class, the variant with the least total time over the class's model shapes: the value for
    // src/kernels/choices.ts gpuGemm (value: its speedup over gemm_tiles on those shapes).
    for (const c of classChoices(shapes, res)) {
      report({
        name: "gemm_class_choice",
        params: { class: c.cls, kernel: c.kernel, shapes: c.shapes.join(" "), ms: Number(c.ms.toFixed(3)) },
        value: c.speedup,
        unit: "x",
        baseline: "gemm_tiles",
      });
    }
  },
};

/**
 * For each gpuGemm class with model shapes among `shapes` (4096³ is a benchmark shape, left out), the tiling (a
 * GEMM_VARIANTS name: f16 arithmetic is a separate opt-in) with the least summed milliseconds over the class's
 * shapes, measured at all of them; its ms and speedup over gemm_tiles.
 */
export function classChoices(
  shapes: GemmShape[],
  res: Map<string, Map<string, number>>,
): { cls: string; kernel: string; shapes: string[]; ms: number; speedup: number }[] {
  const out = [];
  const model = shapes.filter((s) => s.shape !== "4096^3" && res.get(s.shape)?.size);
  for (const cls of [...new Set(model.map((s) => gpuGemmClass(s.M, s.N)))]) {
    const of = model.filter((s) => gpuGemmClass(s.M, s.N) === cls);
    const total = (kernel: string) =>
      of.reduce((sum, s) => {
        const g = res.get(s.shape)!.get(kernel);
        return g === undefined ? Infinity : sum + 2 * s.M * s.N * s.K / g / 1e6;
      }, 0);
    const kernels = [...res.get(of[0].shape)!.keys()].filter((k) => k in GEMM_VARIANTS);
    const best = kernels.reduce((a, b) => (total(b) < total(a) ? b : a));
    out.push({
      cls,
      kernel: best,
      shapes: of.map((s) => s.shape),
      ms: total(best),
      speedup: total("gemm_tiles") / total(best),
    });
  }
  return out;
}
