// Local attention benchmarks: ms per fused SR attention call (src/kernels/local_attention.ts srLocalAttention) on the
// 60×60 grid, DSR (9×5 window + 5×5 low-res window) and iterative SR (window + 16 text keys), vs the plain
// TypeScript composed reference (src/reference/local_attention.ts) in the same run. Not a model benchmark.

import type { GpuContext } from "../../src/gpu/context.ts";
import { qkvRows, srLocalAttention } from "../../src/kernels/local_attention.ts";
import { srAttentionRef } from "../../src/reference/local_attention.ts";
import { fillUniform } from "../../src/kernels/fill.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";
import { timeBurst } from "./_timing.ts";

const CPU = "cpu_ts_sr_attention_ref";

function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 2654435761 + seed) % 1000) / 1000 - 0.5;
  return out;
}

interface Config {
  label: string;
  batch: number;
  heads: number;
  headDim: number;
  mode: "dsr" | "itersr";
  cpu: boolean;
  /** The GPU schedule forced (srLocalAttention tiles: "query" false, "tiles" true); absent: the adapter's default. */
  path?: "query" | "tiles";
}

async function benchOne(
  ctx: GpuContext,
  c: Config,
  report: (r: BenchResult) => void,
  iters: number,
): Promise<void> {
  const { batch, heads, headDim } = c;
  const hidden = heads * headDim, side = 60, low = 20, S = side * side;
  // DSR: level-1 QKV [b·3600, 3h] and level-0 QKV [b·496, 3h] (96 text + 400 low-res tokens);
  // iterative SR: one QKV [b·3616, 3h] (16 text tokens first).
  const pre = c.mode === "itersr" ? 16 : 0, seq1 = pre + S, seq0 = 96 + low * low;
  // Operands made on the host for the CPU reference, else on the GPU (published batch 8: ~0.9 GB of QKV).
  const h1 = c.cpu ? filler(batch * seq1 * 3 * hidden, 1) : new Float32Array(0);
  const h0 = c.cpu ? filler(batch * seq0 * 3 * hidden, 2) : new Float32Array(0);
  const make = (h: Float32Array, rows: number, seed: number) => {
    if (c.cpu) return ctx.upload(h, [rows, 3 * hidden]);
    const t = ctx.empty([rows, 3 * hidden]);
    // In blocks under the storage binding (each block's values are those of its elements: one seeded tensor).
    const per = Math.floor(ctx.maxBinding / 8);
    for (let e = 0; e < t.size; e += per) {
      const v = ctx.alignedView(t, e, Math.min(t.size, e + per));
      fillUniform(ctx, v.t, { seed, scale: 1, offset: 0 }, e - v.off);
    }
    return t;
  };
  const t1 = make(h1, batch * seq1, 1);
  const t0 = c.mode === "dsr" ? make(h0, batch * seq0, 2) : null;
  const out = ctx.empty([batch * S, hidden]);
  const r1 = (p: "q" | "k" | "v") => qkvRows(t1, p, { hidden, seqLen: seq1, firstToken: pre });
  const call = () =>
    srLocalAttention(ctx, {
      batch,
      heads,
      headDim,
      side,
      kernelSize: 5,
      q: r1("q"),
      k: r1("k"),
      v: r1("v"),
      lowres: t0
        ? {
          side: low,
          kernelSize: 5,
          k: qkvRows(t0, "k", { hidden, seqLen: seq0, firstToken: 96 }),
          v: qkvRows(t0, "v", { hidden, seqLen: seq0, firstToken: 96 }),
        }
        : undefined,
      text: t0 ? undefined : {
        length: 16,
        k: qkvRows(t1, "k", { hidden, seqLen: seq1 }),
        v: qkvRows(t1, "v", { hidden, seqLen: seq1 }),
      },
      out,
      tiles: c.path === undefined ? undefined : c.path === "tiles",
    });
  const ms = await timeBurst(ctx, call, { reps: 1, iters });
  const params = {
    mode: c.mode,
    config: c.label,
    batch,
    heads,
    head_dim: headDim,
    grid: `${side}x${side}`,
    ...(c.path ? { path: c.path } : {}),
  };
  report({ name: "sr_local_attention_ms", params, value: ms, unit: "ms/call" });
  // Useful work: window (45) + low-res window (25) or text (16) keys, a q·k and a p·v of headDim each.
  const keys = 45 + (c.mode === "dsr" ? 25 : 16);
  report({
    name: "sr_local_attention_gflops",
    params,
    value: (batch * heads * S * keys * 4 * headDim) / ms / 1e6,
    unit: "GFLOP/s",
  });
  if (c.cpu) {
    const host = (data: Float32Array, part: number, seqLen: number, first: number) => ({
      data,
      offset: first * 3 * hidden + part * hidden,
      rowStride: 3 * hidden,
      batchStride: seqLen * 3 * hidden,
    });
    const t = performance.now();
    srAttentionRef({
      batch,
      heads,
      headDim,
      side,
      kernelSize: 5,
      q: host(h1, 0, seq1, pre),
      k: host(h1, 1, seq1, pre),
      v: host(h1, 2, seq1, pre),
      lowres: c.mode === "dsr"
        ? { side: low, kernelSize: 5, k: host(h0, 1, seq0, 96), v: host(h0, 2, seq0, 96) }
        : undefined,
      text: c.mode === "itersr"
        ? { length: 16, k: host(h1, 1, seq1, 0), v: host(h1, 2, seq1, 0) }
        : undefined,
    });
    const cpuMs = performance.now() - t;
    report({ name: "sr_local_attention_cpu_ref_ms", params, value: cpuMs, unit: "ms/call" });
    report({ name: "sr_local_attention_speedup", params, value: cpuMs / ms, unit: "x", baseline: CPU });
  }
  [t1, t0, out].forEach((x) => x?.release());
}

export const localAttentionSuite: BenchSuite = {
  name: "local_attention",
  description:
    "Fused SR local attention (60x60 grid, DSR and iterative SR) ms per call vs the CPU TS reference",
  async run(ctx, report, { quick }) {
    const iters = quick ? 2 : 7;
    const configs: Config[] = [
      // The tiny fixture's width (hidden 64 = 4 heads x 16), batch 1 and 4.
      { label: "tiny", batch: 1, heads: 4, headDim: 16, mode: "dsr", cpu: true },
      { label: "tiny", batch: 4, heads: 4, headDim: 16, mode: "dsr", cpu: !quick },
      { label: "tiny", batch: 1, heads: 4, headDim: 16, mode: "itersr", cpu: !quick },
      // Medium: 4 heads x 64 (CogView2's head width).
      { label: "medium", batch: 1, heads: 4, headDim: 64, mode: "dsr", cpu: !quick },
    ];
    if (!quick) configs.push({ label: "medium", batch: 4, heads: 4, headDim: 64, mode: "dsr", cpu: false });
    // The released model's width (hidden 2560 = 40 heads x 64), one sample: slow on CPU adapters.
    if (!quick) {
      configs.push({ label: "cogview2", batch: 1, heads: 40, headDim: 64, mode: "dsr", cpu: false });
    }
    // GPUs: the published SR stages' calls (batch 8, 40 heads × 64) on both schedules, side by side (choices.ts
    // srAttention picks the default): one invocation per query vs 16×4-query workgroup tiles reading K/V once.
    if (!ctx.gpu.isFallback) {
      for (const mode of ["dsr", "itersr"] as const) {
        for (const path of ["query", "tiles"] as const) {
          configs.push({ label: "published_b8", batch: 8, heads: 40, headDim: 64, mode, cpu: false, path });
        }
      }
    }
    for (const c of configs) await benchOne(ctx, c, report, iters);
  },
};
