// Decode GEMV variants side by side (src/kernels/gemv.ts, shaders/gemv_rows.wgsl) at CogLM's published decode shapes:
// weight GB/s per variant and shape (what predicts tokens/s), and a "coglm step" — a layer's four matmuls x 48 layers
// plus the logits — as ms per step per variant. Weights are filled on the GPU (src/kernels/fill.ts; nothing large
// uploaded) and rotated over enough distinct buffers that every timed burst reads >= 512 MiB of distinct weights, so
// the GPU's L2 (60 MB on an H200) does not serve them. GPU times come from timestamp queries (one pass per dispatch
// for the per-shape figures, so host recording — ~9 µs per dispatch on Dawn — is not counted; the whole step as
// recorded for the step figure); adapters without timestamps fall back to wall time. On CPU adapters (lavapipe,
// where matmul() never routes decode rows here) the run is a smoke test: shapes / 8, three variants, 2 layers.
import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { fillUniform } from "../../src/kernels/fill.ts";
import { GEMV_VARIANTS, gemvReduceUsed, gemvRows, parseGemvVariant } from "../../src/kernels/gemv.ts";
import { gemvChoice } from "../../src/kernels/choices.ts";
import { matmul } from "../../src/kernels/matmul.ts";
import type { BenchSuite } from "./_types.ts";
import { median } from "./_timing.ts";

type WType = "f16" | "int8";
const GROUP = 64;
const MIN_SET = 512 * 2 ** 20;
const BUDGET_S = 60;
const LIMIT_S = 75;

/** CogLM's per-layer decode matmuls (N x K, W [N, K]) and the logits, at the published widths (hidden 3072). */
function shapes(h: number, vocab: number) {
  return [
    { name: "qkv", N: 3 * h, K: h },
    { name: "dense", N: h, K: h },
    { name: "h_4h", N: 4 * h, K: h },
    { name: "4h_h", N: h, K: 4 * h },
    { name: "logits", N: vocab, K: h },
  ];
}

function weightBytes(N: number, K: number, w: WType): number {
  return N * K * (w === "f16" ? 2 : 1 + 4 / GROUP);
}

/** A W [N, K] filled on the GPU: f16, or int8 codes with f32 group scales (values ~0.02 either way). */
function makeWeight(ctx: GpuContext, N: number, K: number, w: WType, seed: number): Tensor {
  if (w === "f16") {
    const t = ctx.empty([N, K], "f16");
    fillUniform(ctx, t, { seed, scale: 0.02, offset: 0 });
    return t;
  }
  const t = ctx.empty([N, K], "i8");
  fillUniform(ctx, t, { seed, scale: 127, offset: 0 });
  const scales = ctx.empty([(N * K) / GROUP]);
  fillUniform(ctx, scales, { seed: seed + 7, scale: 0.5e-4, offset: 1.5e-4 });
  t.quant = { scales, group: GROUP };
  return t;
}

/** GPU ms of the work `body` records (timestamps: per dispatch, or the passes as recorded), else wall ms. */
async function gpuMs(ctx: GpuContext, body: () => void, perDispatch: boolean): Promise<number> {
  if (ctx.startProfile({ perDispatch })) {
    body();
    const t = await ctx.stopProfile();
    return t.reduce((s, k) => s + k.ms, 0);
  }
  const t0 = performance.now();
  body();
  await ctx.sync();
  return performance.now() - t0;
}

export const gemvSuite: BenchSuite = {
  name: "gemv",
  description:
    "decode GEMV variants at CogLM's shapes (weight GB/s, L2 defeated) and a CogLM step (ms) per variant",
  async run(ctx, report, { quick }) {
    const start = performance.now();
    const cpu = ctx.gpu.isFallback;
    const small = cpu; // CPU adapters: a smoke-sized run
    // "splitk": matmul.wgsl's split-K GEMV schedule (what int8 decode rows ran on GPUs before gemv_rows took them:
    // 306-318 GB/s at M = 4, 3072x3072 on the H200), the baseline.
    const variants = cpu ? ["rows8", "u4", "c2u2", "splitk"] : [...Object.keys(GEMV_VARIANTS), "splitk"];
    const Ms = cpu || quick ? [1, 8] : [1, 8, 4];
    const wtypes: WType[] = ["f16", "int8"];
    const h = small ? 384 : 3072, vocab = small ? 2000 : 150010;
    const layers = small ? 2 : 48;
    const iters = cpu ? 1 : 3;
    const label = (v: string, M: number) => {
      if (v === "splitk") return { variant: v, spec: "matmul.wgsl gemv", reduce: "tree" };
      const r = gemvReduceUsed(ctx, parseGemvVariant(v));
      return {
        variant: v,
        spec: GEMV_VARIANTS[v],
        reduce: r,
        ...(v === gemvChoice(ctx, M) ? { chosen: true } : {}),
      };
    };
    // One decode matmul C = A·Wᵀ by variant.
    const call = (v: string, w: Tensor, M: number, N: number, K: number) =>
      v === "splitk"
        ? matmul(ctx, a, w, { M, N, K, out: c, variant: "gemv" })
        : gemvRows(ctx, a, w, { M, N, K, out: c, gemv: v });
    const maxA = 8 * 4 * h;
    const a = ctx.empty([maxA]), c = ctx.empty([8 * Math.max(vocab, 4 * h)]);
    fillUniform(ctx, a, { seed: 1, scale: 1, offset: 0 });

    // 1. The CogLM step: qkv, dense, h->4h, 4h->h per layer x `layers`, then the logits, recorded as one pass
    // (each layer's output feeds nothing: the GEMVs are what is timed). Distinct layer weights rotate over enough
    // copies to exceed 512 MiB (f16: 3 of the 226 MB layer sets).
    const stepUnit = async (w: WType) => {
      const sh = shapes(h, vocab);
      const layerBytes = sh.slice(0, 4).reduce((t, s) => t + weightBytes(s.N, s.K, w), 0);
      const sets = small ? 1 : Math.min(layers, Math.max(2, Math.ceil(MIN_SET / layerBytes)));
      const layerW = Array.from(
        { length: sets },
        (_, l) => sh.slice(0, 4).map((s, i) => makeWeight(ctx, s.N, s.K, w, 1000 + 10 * l + i)),
      );
      const logits = makeWeight(ctx, vocab, h, w, 7);
      const stepBytes = layers * layerBytes + weightBytes(vocab, h, w);
      await ctx.sync();
      const best: Record<number, { v: string; ms: number }> = {};
      for (const M of Ms) {
        for (const v of variants) {
          const step = () => {
            for (let l = 0; l < layers; l++) {
              const ws = layerW[l % sets];
              for (let i = 0; i < 4; i++) call(v, ws[i], M, sh[i].N, sh[i].K);
            }
            call(v, logits, M, vocab, h);
          };
          step();
          await ctx.sync();
          const times: number[] = [];
          for (let it = 0; it < iters; it++) times.push(await gpuMs(ctx, step, false));
          const ms = median(times);
          // Wall ms per step with steps submitted one after another (host recording overlaps the GPU).
          const t0 = performance.now();
          const reps = cpu ? 1 : 4;
          for (let r = 0; r < reps; r++) {
            step();
            ctx.flush();
          }
          await ctx.sync();
          const wall = (performance.now() - t0) / reps;
          const params = { ...label(v, M), M, w, layers, timing: ctx.gpu.hasTimestamps ? "gpu" : "wall" };
          report({ name: "gemv_step_ms", params, value: ms, unit: "ms" });
          report({ name: "gemv_step_gbps", params, value: stepBytes / ms / 1e6, unit: "GB/s" });
          report({ name: "gemv_step_wall_ms", params, value: wall, unit: "ms" });
          if (v !== "splitk" && (!best[M] || ms < best[M].ms)) best[M] = { v, ms };
        }
      }
      for (const M of Ms) {
        report({
          name: "gemv_step_best_ms",
          params: { M, w, layers, variant: best[M].v },
          value: best[M].ms,
          unit: "ms",
        });
      }
      layerW.flat().concat([logits]).forEach((t) => {
        t.quant?.scales.release();
        t.release();
      });
      ctx.trim();
    };

    // 2. Per shape: weight GB/s of each variant over a rotation of distinct buffers (>= 512 MiB in all on GPUs).
    const shapeUnit = async (w: WType, s: { name: string; N: number; K: number }) => {
      const bytes = weightBytes(s.N, s.K, w);
      const nbuf = small ? 2 : Math.max(1, Math.ceil(MIN_SET / bytes));
      const bufs = Array.from({ length: nbuf }, (_, i) => makeWeight(ctx, s.N, s.K, w, 100 + i));
      const calls = small ? 2 : Math.max(2 * nbuf, 8);
      await ctx.sync();
      for (const M of Ms) {
        for (const v of variants) {
          const run = () => {
            for (let i = 0; i < calls; i++) {
              call(v, bufs[i % nbuf], M, s.N, s.K);
            }
          };
          run(); // compile + warm
          await ctx.sync();
          const times: number[] = [];
          for (let it = 0; it < iters; it++) times.push((await gpuMs(ctx, run, true)) / calls);
          const ms = median(times);
          // Wall time too (submits every 16 calls, so recording overlaps the GPU): a cross-check of the
          // timestamps, and host-bound where a call takes less GPU time than recording one (~9 µs on Dawn).
          const t0 = performance.now();
          for (let i = 0; i < calls; i++) {
            call(v, bufs[i % nbuf], M, s.N, s.K);
            if (i % 16 === 15) ctx.flush();
          }
          await ctx.sync();
          const wall = (performance.now() - t0) / calls;
          const params = { ...label(v, M), M, N: s.N, K: s.K, w, matrix: s.name };
          const timing = ctx.gpu.hasTimestamps ? "gpu" : "wall";
          report({
            name: "gemv_variant_gbps",
            params: { ...params, timing },
            value: bytes / ms / 1e6,
            unit: "GB/s",
          });
          report({ name: "gemv_variant_us", params: { ...params, timing }, value: ms * 1000, unit: "µs" });
          report({ name: "gemv_variant_wall_gbps", params, value: bytes / wall / 1e6, unit: "GB/s" });
        }
      }
      bufs.forEach((t) => {
        t.quant?.scales.release();
        t.release();
      });
      ctx.trim();
    };

    // In order of use (the f16 step picks the variant; tools/pick_variants.ts reads gemv_step_best_ms), each unit
    // started only within BUDGET_S seconds of the suite's start (tools/device_bench.sh caps the suite at 90 s and the
    // bench writes its JSON at the end), a skipped one named in a gemv_skipped row.
    const units: [string, () => Promise<void>][] = [];
    for (const w of wtypes) {
      units.push([`step ${w}`, () => stepUnit(w)]);
      for (const s of shapes(h, vocab).filter((s) => !cpu || s.name !== "4h_h")) {
        units.push([`${s.name} ${w}`, () => shapeUnit(w, s)]);
      }
    }
    // A unit is also skipped when the last unit of its kind (step / shape) would end it past LIMIT_S.
    const took: Record<string, number> = {};
    for (const [what, unit] of units) {
      const kind = what.startsWith("step") ? "step" : "shape";
      const elapsed = (performance.now() - start) / 1000;
      if (!cpu && (elapsed > BUDGET_S || elapsed + (took[kind] ?? 0) > LIMIT_S)) {
        report({ name: "gemv_skipped", params: { what, after_s: Math.round(elapsed) }, value: 1, unit: "" });
        continue;
      }
      const t0 = performance.now();
      await unit();
      took[kind] = (performance.now() - t0) / 1000;
    }
    [a, c].forEach((t) => t.release());
  },
};
