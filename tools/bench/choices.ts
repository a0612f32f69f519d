// The variants src/kernels/choices.ts chooses between, each timed on this backend: the row reductions of softmax and
// layerNorm (workgroup / narrow / subgroup / wide / regs / regs1024; plus a decode step's layernorm_resid_post) and, on CPU adapters, the matmul schedules per shape class (windows /
// ubo / direct, decode rows: windows / gemv). `bench --compare-backends --only choices` records both backends; the
// table's entries are checked against that record (tests/kernels/choices_test.ts). Not a tuner.

import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { layerNorm, layerNormResidual } from "../../src/kernels/layernorm.ts";
import { softmax } from "../../src/kernels/softmax.ts";
import { type CpuMatmulClass, cpuMatmulClass, type RowReduce } from "../../src/kernels/choices.ts";
import { matmul, type MatmulOptions } from "../../src/kernels/matmul.ts";
import type { BenchSuite } from "./_types.ts";
import { burstMs, burstReps } from "./_timing.ts";

/** Row shapes: SR/DSR hidden rows of the tiny model and published-width rows; logits and attention rows. */
export const LN_SHAPES: [number, number][] = [[4096, 64], [4096, 1024], [8, 3072]];
export const SOFTMAX_SHAPES: [number, number][] = [[3600, 400], [8, 20000], [1024, 1024]];
/** One matmul shape per CPU class: a decode step at published width, an SR projection of the tiny model, 1024³. */
export const MATMUL_SHAPES: Record<CpuMatmulClass, [number, number, number]> = {
  decode: [4, 3072, 3072],
  narrowK: [3600, 192, 64],
  wideK: [1024, 1024, 1024],
};

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + seed) * 2 + 0.5;
  return a;
}

/**
 * The fastest of the interleaved rounds: the box may be shared, and other load only ever slows a round down, so the
 * minimum is the least disturbed figure (medians flipped between runs at load 12 on the 2-core session box).
 */
function best(xs: number[]): number {
  return Math.min(...xs);
}

/**
 * A timer of interleaved rounds: `time(key, body, reps)` is ms per call over one burst of `body`; the first round of
 * a `key` warms it up and sizes its burst from `reps` (tools/bench/_timing.ts burstReps: at least 20 empty-queue
 * waits, so Dawn's ~0.05 ms and wgpu's ~11.5 ms wait for the queue do not weigh on µs-long decode rows).
 */
function roundTimer(ctx: GpuContext): (key: string, body: () => void, reps: number) => Promise<number> {
  const sized = new Map<string, number>();
  return async (key, body, reps) => {
    let r = sized.get(key);
    if (r === undefined) {
      body();
      await ctx.sync();
      r = await burstReps(ctx, body, reps);
      sized.set(key, r);
    }
    return await burstMs(ctx, body, r) / r;
  };
}

export const choicesSuite: BenchSuite = {
  name: "choices",
  description: "per-backend kernel variants (src/kernels/choices.ts): row reductions, CPU matmul schedules",
  async run(ctx, report, { quick }) {
    const reduces: RowReduce[] = [
      "workgroup",
      "narrow",
      "wide",
      "regs",
      "regs1024",
      ...(ctx.gpu.subgroupSize ? ["subgroup" as const] : []),
    ];
    const iters = quick ? 7 : 11;
    const time = roundTimer(ctx);
    const rowsReport = (kernel: string, rows: number, n: number, reduce: RowReduce, ms: number) =>
      report({
        name: "row_reduce_ms",
        params: { op: kernel, rows, n, reduce },
        value: ms,
        unit: "ms",
      });
    for (const [rows, n] of LN_SHAPES) {
      const x = ctx.upload(fill(rows * n, 1), [rows, n]), g = ctx.upload(fill(n, 2), [n]);
      const b = ctx.upload(fill(n, 3), [n]), out = ctx.empty([rows, n]);
      const reps = Math.max(1, Math.min(20, Math.round(4e6 / (rows * n))));
      // Interleaved: each round times every variant once, so load changes hit all alike.
      const t = new Map<RowReduce, number[]>(reduces.map((r) => [r, []]));
      for (let i = 0; i < iters; i++) {
        for (const reduce of reduces) {
          t.get(reduce)!.push(
            await time(
              `layernorm ${rows}x${n} ${reduce}`,
              () => layerNorm(ctx, x, { weight: g, bias: b }, { eps: 1e-5, reduce, out }),
              reps,
            ),
          );
        }
      }
      for (const reduce of reduces) rowsReport("layernorm", rows, n, reduce, best(t.get(reduce)!));
      [x, g, b, out].forEach((u: Tensor) => u.release());
    }
    // A decode step's fused sandwich LayerNorms (layernorm_resid_post, 2 per CogLM layer) at batch 1 and 8.
    for (const rows of [1, 8]) {
      const n = 3072;
      const x = ctx.upload(fill(rows * n, 1), [rows, n]), r = ctx.upload(fill(rows * n, 4), [rows, n]);
      const g = ctx.upload(fill(n, 2), [n], "f16"), b = ctx.upload(fill(n, 3), [n], "f16");
      const ro = ctx.empty([rows, n]), out = ctx.empty([rows, n]);
      const t = new Map<RowReduce, number[]>(reduces.map((v) => [v, []]));
      const body = (reduce: RowReduce) => () =>
        layerNormResidual(ctx, x, r, { weight: g, bias: b }, {
          eps: 1e-5,
          residOut: ro,
          post: { weight: g, bias: b },
          out,
          reduce,
        });
      for (let i = 0; i < iters; i++) {
        for (const reduce of reduces) {
          t.get(reduce)!.push(await time(`layernorm_resid_post ${rows}x${n} ${reduce}`, body(reduce), 20));
        }
      }
      for (const reduce of reduces) rowsReport("layernorm_resid_post", rows, n, reduce, best(t.get(reduce)!));
      [x, r, g, b, ro, out].forEach((u: Tensor) => u.release());
    }
    for (const [rows, n] of SOFTMAX_SHAPES) {
      const x = ctx.upload(fill(rows * n, 4), [rows, n]), out = ctx.empty([rows, n]);
      const reps = Math.max(1, Math.min(20, Math.round(4e6 / (rows * n))));
      const t = new Map<RowReduce, number[]>(reduces.map((r) => [r, []]));
      for (let i = 0; i < iters; i++) {
        for (const reduce of reduces) {
          t.get(reduce)!.push(
            await time(
              `softmax ${rows}x${n} ${reduce}`,
              () => softmax(ctx, x, { n, rows, scale: 0.7, reduce, out }),
              reps,
            ),
          );
        }
      }
      for (const reduce of reduces) rowsReport("softmax", rows, n, reduce, best(t.get(reduce)!));
      [x, out].forEach((u: Tensor) => u.release());
    }
    if (!ctx.gpu.isFallback) return; // GPUs do not use the CPU schedules
    for (const [cls, [M, N, K]] of Object.entries(MATMUL_SHAPES) as [CpuMatmulClass, number[]][]) {
      if (cpuMatmulClass(M, K) !== cls) throw new Error(`choices bench: ${M}x${K} is not class ${cls}`);
      // "direct" on decode rows is the split-K "gemv" launch, what auto runs there when windows is not chosen.
      const variants = M <= 8 ? ["windows", "gemv"] as const : ["windows", "ubo", "direct"] as const;
      const a = ctx.upload(fill(M * K, 5), [M, K]),
        w = ctx.upload(fill(N * K, 6).map((v) => v / 8), [N, K], "f16");
      const c = ctx.empty([M, N]);
      const reps = Math.max(1, Math.min(16, Math.round(2e9 / (2 * M * N * K))));
      const t = new Map<string, number[]>(variants.map((v) => [v, []]));
      for (let i = 0; i < iters; i++) {
        for (const variant of variants) {
          const o: MatmulOptions = { M, N, K, out: c, constantW: true, variant };
          t.get(variant)!.push(await time(`matmul ${cls} ${variant}`, () => matmul(ctx, a, w, o), reps));
        }
      }
      for (const variant of variants) {
        const schedule = variant === "gemv" ? "direct" : variant;
        report({
          name: "cpu_matmul_ms",
          params: { class: cls, M, N, K, w: "f16", schedule },
          value: best(t.get(variant)!),
          unit: "ms",
        });
      }
      [a, w, c].forEach((u: Tensor) => u.release());
    }
  },
};
