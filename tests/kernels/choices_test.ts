// The per-backend table (src/kernels/choices.ts) against the figures it was made from: the records
// bench/results/2026-12-04-lavapipe/compare_backends_choices_run*.json (`deno task bench --compare-backends --only
// choices --quick`, both backends on this machine's lavapipe, two runs at different moments of a shared box). Each
// entry for a backend must be the variant those runs measured fastest in sum: per CPU matmul shape class the lowest
// total ms over the runs, for the row reductions the lowest geometric mean over every shape and run.
// And the launchers must follow the table: a context that reports another backend routes differently.
import assert from "node:assert/strict";
import {
  CHOICES,
  choices,
  clusterFusedFor,
  type CpuMatmulClass,
  LN_PROLOGUE_ENV,
  lnPrologueFor,
  type RowReduce,
  SAMPLER_FUSED_ENV,
  UNROLL_ENV,
  unrollFor,
} from "../../src/kernels/choices.ts";
import { resolveMatmul } from "../../src/kernels/matmul.ts";
import { GpuContext } from "../../src/gpu/context.ts";
import type { BenchResult } from "../../tools/bench/_types.ts";
import { MATMUL_SHAPES } from "../../tools/bench/choices.ts";
import { sharedContext } from "../_util.ts";
import { pickDecodeAttention, pickRowReduce, pickSrAttention } from "../../tools/pick_variants.ts";

const DIR = new URL("../../bench/results/2026-12-04-lavapipe/", import.meta.url);

interface Record {
  runs: { backend: string; gpu: string; results: BenchResult[] }[];
}

const records: Record[] = [];
for await (const e of Deno.readDir(DIR)) {
  if (/^compare_backends_choices_run\d+\.json$/.test(e.name)) {
    records.push(JSON.parse(await Deno.readTextFile(new URL(e.name, DIR))));
  }
}

/** Every recorded result of one backend, over all runs. */
function resultsOf(backend: string): BenchResult[] {
  return records.flatMap((r) => r.runs.filter((x) => x.backend === backend).flatMap((x) => x.results));
}

Deno.test("the records hold both backends on a CPU adapter", () => {
  assert.ok(records.length >= 1, "at least one record");
  for (const rec of records) {
    assert.deepEqual(rec.runs.map((r) => r.backend).sort(), ["dawn", "wgpu"]);
    for (const run of rec.runs) {
      assert.match(run.gpu, /llvmpipe/, `${run.backend} ran on lavapipe`);
      assert.ok(run.results.length > 0, `${run.backend} has results`);
    }
  }
});

for (const backend of ["wgpu", "dawn"]) {
  // All recorded on lavapipe, a CPU adapter.
  const key = `${backend}/cpu`;
  Deno.test(`${key}: each CPU matmul class takes the schedule measured fastest`, () => {
    const table = CHOICES[key];
    for (const cls of Object.keys(MATMUL_SHAPES) as CpuMatmulClass[]) {
      const total = new Map<string, number>();
      for (const r of resultsOf(backend)) {
        if (r.name !== "cpu_matmul_ms" || r.params.class !== cls) continue;
        const s = String(r.params.schedule);
        total.set(s, (total.get(s) ?? 0) + r.value);
      }
      assert.ok(total.size >= 2, `${backend} ${cls}: at least two schedules recorded`);
      const best = [...total].reduce((a, b) => (b[1] < a[1] ? b : a))[0];
      assert.equal(
        table.cpuMatmul[cls],
        best,
        `${backend} ${cls}: table says ${table.cpuMatmul[cls]}, the records sum to ` +
          [...total].map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(", "),
      );
    }
  });

  Deno.test(`${key}: the row reduction is the one with the lowest geometric-mean time`, () => {
    const byReduce = new Map<RowReduce, number[]>();
    for (const r of resultsOf(backend)) {
      if (r.name !== "row_reduce_ms") continue;
      const k = r.params.reduce as RowReduce;
      byReduce.set(k, [...(byReduce.get(k) ?? []), Math.log(r.value)]);
    }
    assert.ok(byReduce.size >= 2, `${backend}: at least two variants recorded`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const best = [...byReduce].reduce((a, b) => (mean(b[1]) < mean(a[1]) ? b : a))[0];
    assert.equal(
      CHOICES[key].rowReduce,
      best,
      `${backend}: geometric means ${
        [...byReduce].map(([k, v]) => `${k} ${Math.exp(mean(v)).toFixed(2)} ms`).join(", ")
      }`,
    );
  });
}

Deno.test("resolveMatmul follows the table of the context's backend", async () => {
  const base = await sharedContext();
  if (!base.gpu.isFallback) return; // the CPU schedules apply to CPU adapters only
  const [M, N, K] = MATMUL_SHAPES.narrowK;
  for (const backend of ["wgpu", "dawn"] as const) {
    const ctx = new GpuContext({ ...base.gpu, backend });
    const a = ctx.empty([M, K]), w = ctx.empty([N, K], "f16");
    const launch = resolveMatmul(ctx, a, w, { M, N, K, constantW: true });
    const want = CHOICES[`${backend}/cpu`].cpuMatmul.narrowK;
    assert.equal(launch.plan.variant, want, `${backend}: ${launch.name}`);
    // A prompt pass (10 rows of a wideK weight): "ubo" needs 32 rows, so a "ubo" pick falls back to "windows" (not
    // the storage-only "direct": 928 ms against 277 ms for the windows launches of the same Dawn CogLM profile).
    const a2 = ctx.empty([10, 768]), w2 = ctx.empty([768, 768], "f16");
    const prompt = resolveMatmul(ctx, a2, w2, { M: 10, N: 768, K: 768, constantW: true });
    assert.equal(prompt.plan.variant, "windows", `${backend} prompt rows: ${prompt.name}`);
    [a, w, a2, w2].forEach((t) => t.release());
  }
});

// "dawn/gpu" against the H200 records (bench/results/2026-12-04-h200/, Dawn on NVIDIA).
const H200 = new URL("../../bench/results/2026-12-04-h200/", import.meta.url);
async function h200(file: string): Promise<BenchResult[]> {
  return JSON.parse(await Deno.readTextFile(new URL(file, H200))).results;
}

Deno.test("dawn/gpu: the decode GEMV is the variant with the fastest 48-layer f16 step at M = 1, 4 and 8 (H200)", async () => {
  const rs = (await h200("call3_gemv.json")).filter((r) =>
    r.name === "gemv_step_ms" && r.params.w === "f16" && r.params.variant !== "splitk"
  );
  for (const M of [1, 4, 8]) {
    const at = rs.filter((r) => Number(r.params.M) === M);
    assert.ok(at.length >= 2, `M=${M}: at least two variants recorded`);
    const best = at.reduce((a, b) => (b.value < a.value ? b : a));
    const g = CHOICES["dawn/gpu"].gemv;
    const chosen = typeof g === "string" ? g : g[M <= 1 ? "m1" : M <= 4 ? "m2_4" : "m5_8"];
    assert.equal(
      chosen,
      best.params.variant,
      `M=${M}: fastest ${best.params.variant} ${best.value.toFixed(2)} ms`,
    );
  }
});

Deno.test("dawn/gpu: the SR GEMM classes take the variant whose published runs had the lower DSR + LoPAR seconds (H200)", async () => {
  const spec = JSON.parse(await Deno.readTextFile(new URL("gemm_in_model.json", H200)));
  const srSeconds = async (file: string) =>
    (await h200(file)).filter((r) =>
      r.name === "published_stage_seconds" && (r.params.stage === "dsr" || r.params.stage === "itersr")
    ).reduce((s, r) => s + r.value, 0);
  for (const pair of spec.pairs as { note: string; runs: { variant: string; file: string }[] }[]) {
    const timed = await Promise.all(pair.runs.map(async (r) => ({ ...r, s: await srSeconds(r.file) })));
    assert.ok(timed.every((t) => t.s > 0), `${pair.note}: every run has DSR and LoPAR seconds`);
    const best = timed.reduce((a, b) => (b.s < a.s ? b : a));
    for (const cls of ["narrowN", "wide"] as const) {
      assert.equal(
        CHOICES["dawn/gpu"].gpuGemm[cls],
        best.variant,
        `${pair.note}: ${timed.map((t) => `${t.variant} ${t.s.toFixed(2)} s`).join(", ")}`,
      );
    }
  }
});

Deno.test("dawn/gpu: the SR local attention schedule is the one with the lower summed time at the published width (H200)", async () => {
  assert.equal(CHOICES["dawn/gpu"].srAttention, pickSrAttention(await h200("call3_sr_attention.json")));
});

Deno.test("dawn/gpu: the decode rows' reduction is the one with the lowest summed time over rows <= 8 (H200, session 8)", async () => {
  const rs = await h200("call6_rows.json");
  assert.ok(rs.filter((r) => r.name === "row_reduce_ms").length >= 6, "row variants recorded");
  assert.equal(CHOICES["dawn/gpu"].rowReduceDecode, pickRowReduce(rs));
});

Deno.test("dawn/gpu: the decode attention's width and key splits are the fastest summed over key counts at batch 1 and 8 (H200, session 8)", async () => {
  const rs = await h200("call6_decode_attention.json");
  for (const M of [1, 8]) {
    const best = pickDecodeAttention(rs, M);
    assert.ok(best, `batch ${M}: decode attention recorded`);
    assert.equal(CHOICES["dawn/gpu"].attentionWg, best.wg, `batch ${M}: width`);
    assert.equal(CHOICES["dawn/gpu"].attentionSplit, best.split, `batch ${M}: key splits`);
  }
});

Deno.test("0|1 switches (LN prologue, fused sampler, unroll): the variable over the table, a bad value names it", async () => {
  const base = await sharedContext();
  const cases = [
    [lnPrologueFor, LN_PROLOGUE_ENV, "lnPrologue"],
    [clusterFusedFor, SAMPLER_FUSED_ENV, "clusterFused"],
    [unrollFor, UNROLL_ENV, "unroll"],
  ] as const;
  // This adapter's table and the GPU one (wgpu/gpu sets all three: "0" must still turn each off).
  for (const ctx of [base, base.withGpuSchedules()]) {
    for (const [read, variable, field] of cases) {
      assert.equal(read(ctx, undefined), choices(ctx)[field], `${variable} unset: the table`);
      assert.equal(read(ctx, ""), choices(ctx)[field], `${variable} empty: the table`);
      assert.equal(read(ctx, "1"), true, variable);
      assert.equal(read(ctx, "0"), false, variable);
      assert.throws(() => read(ctx, "yes"), new RegExp(`^Error: ${variable}=yes: expected 0 or 1$`));
    }
  }
  // The tables: unroll only where naga's loops are the problem (wgpu on GPUs).
  assert.deepEqual(Object.entries(CHOICES).map(([k, c]) => [k, c.unroll]), [
    ["wgpu/cpu", false],
    ["wgpu/gpu", true],
    ["dawn/cpu", false],
    ["dawn/gpu", false],
  ]);
});
