// deno task bench --shape published: flag errors (before any GPU work) and the analytic work counts it reports.
import assert from "node:assert/strict";
import {
  coglmWork,
  decodeStepKernels,
  hostStepMs,
  srWork,
  stageKernels,
} from "../../tools/bench/published.ts";

const TOOL = new URL("../../tools/bench.ts", import.meta.url).pathname;

async function bench(...args: string[]) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-webgpu", TOOL, ...args],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await p.output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

Deno.test("bench --shape: unknown shapes and bad --batch/--layers/--tokens are named errors (exit 2)", async () => {
  let r = await bench("--shape", "huge");
  assert.equal(r.code, 2);
  assert.match(r.err, /--shape huge: the only shape is "published"/);
  r = await bench("--shape", "published", "--batch", "3");
  assert.equal(r.code, 2);
  assert.match(r.err, /--batch 3: expected 1, 4 or 8/);
  r = await bench("--shape", "published", "--layers", "0");
  assert.match(r.err, /--layers 0: expected a depth from 1 to 48/);
  r = await bench("--shape", "published", "--tokens", "x");
  assert.match(r.err, /--tokens x: expected 2 to 400 CogLM tokens/);
  r = await bench("--shape", "published", "--vq-side", "7");
  assert.match(r.err, /--vq-side 7: expected a divisor of 60 from 4 to 60/);
  r = await bench("--shape", "published", "--lopar-rounds", "9");
  assert.match(r.err, /--lopar-rounds 9: expected 1 to 6 LoPAR rounds/);
});

Deno.test("bench --shape published --stages vqvae: the VQ-VAE decode alone, no transformer built or run", async () => {
  // 4×4 codes (32×32 pixels) at icetk's widths: a few seconds on lavapipe.
  const r = await bench(
    "--shape",
    "published",
    "--stages",
    "vqvae",
    "--vq-side",
    "4",
    "--json",
    ...["--layers", "1", "--sr-layers", "1", "--tokens", "2", "--lopar-rounds", "1"], // cheap if the stages were run
  );
  assert.equal(r.code, 0, r.err);
  const results: { name: string; params: Record<string, unknown>; value: number }[] = JSON.parse(
    r.out.trim().split("\n").at(-1)!,
  );
  const stages = new Set(
    results.filter((x) => x.name === "published_stage_seconds").map((x) => x.params.stage),
  );
  assert.deepEqual([...stages], ["vqvae"]);
  assert.ok(!results.some((x) => x.name === "published_coglm_tokens_per_s"));
  const syncs = results.find((x) => x.name === "published_stage_host_syncs" && x.params.stage === "vqvae");
  assert.equal(syncs?.value, 1); // one image, one read-back
  const peak = results.find((x) => x.name === "published_full_depth_peak_gpu_bytes");
  assert.equal(peak?.params.stages, "vqvae");
});

Deno.test("published work counts: CogLM decode FLOPs/bytes by hand; SR scales with layers and batch", () => {
  const d = {
    numLayers: 2,
    hidden: 8,
    heads: 2,
    headDim: 4,
    inner: 32,
    vocab: 30000,
    maxSeq: 64,
    eps: 1e-5,
    order: "sandwich" as const,
  };
  const params = 4 * 64 + 2 * 8 * 32; // QKV + dense + MLP weights per layer
  // Prompt of 3 tokens, then one decode step (t = 4 keys) for a batch of 2.
  const w = coglmWork(d, 3, 2, 2);
  const prompt = 3 * 2 * 2 * params + 2 * 4 * 8 * 9 + 2 * 8 * 20000;
  const step = 2 * (2 * (2 * params + 4 * 8 * 4) + 2 * 8 * 20000);
  assert.equal(w.flops, prompt + step);
  const weights = 2 * 2 * params, logits = 2 * 20000 * 8;
  assert.equal(w.bytes, 2 * (weights + logits) + 2 * 2 * 2 * 4 * 8 * 4 + 2 * 20000 * 4 * 3);
  const a = srWork(1, 100, 1, 10, 50, false),
    b = srWork(2, 100, 1, 10, 50, false),
    c = srWork(1, 100, 2, 10, 50, false);
  assert.ok(b.flops > a.flops && c.flops === 2 * a.flops);
  assert.ok(srWork(1, 100, 1, 10, 50, true).bytes > a.bytes, "attention_plus adds weights");
});

Deno.test("--profile aggregation: kernels summed over grids, ranked by GPU ms, shares of the stage sum to 1", () => {
  const ks = stageKernels([
    { name: "gemm_tiles", grid: "20×29×1", dispatches: 3, ms: 6 },
    { name: "softmax", grid: "4×1×1", dispatches: 5, ms: 2 },
    { name: "gemm_tiles", grid: "80×29×1", dispatches: 1, ms: 9 },
    { name: "local_attention", dispatches: 2, ms: 3 },
  ]);
  assert.deepEqual(ks.map((k) => k.kernel), ["gemm_tiles", "local_attention", "softmax"]);
  assert.equal(ks[0].ms, 15);
  assert.equal(ks[0].dispatches, 4);
  assert.deepEqual(ks[0].grids.map((g) => g.grid), ["80×29×1", "20×29×1"], "grids largest first");
  assert.deepEqual(ks[1].grids, [], "no grid recorded: none listed");
  assert.equal(ks[0].share, 15 / 20);
  assert.ok(Math.abs(ks.reduce((s, k) => s + k.share, 0) - 1) < 1e-12);
  assert.deepEqual(stageKernels([]), []);
});

Deno.test("--profile decode step: only phase 'decode', per step and per layer, per-layer kernels first", () => {
  const ks = decodeStepKernels(
    [
      { name: "gemv_rows", grid: "384×1×1", phase: "decode", dispatches: 3 * 2 * 4, ms: 0.24 },
      { name: "gemv_rows", grid: "384×1×1", dispatches: 2 * 4, ms: 5 }, // the prompt pass: not counted
      { name: "gemm_tiles", grid: "24×1×1", dispatches: 8, ms: 9 },
      { name: "layernorm", grid: "1×1×1", phase: "decode", dispatches: 3, ms: 0.03 },
      { name: "attention", grid: "1×48×1", phase: "decode", dispatches: 3 * 4, ms: 0.06 },
    ],
    3,
    4,
  );
  assert.deepEqual(ks.map((k) => `${k.kernel}@${k.grid}`), [
    "gemv_rows@384×1×1",
    "attention@1×48×1",
    "layernorm@1×1×1",
  ]);
  assert.deepEqual(ks.map((k) => [k.perStep, k.perLayer]), [[8, 2], [4, 1], [1, null]]);
  assert.ok(Math.abs(ks[0].usPerStep - 80) < 1e-9 && Math.abs(ks[0].usPerDispatch - 10) < 1e-9);
  assert.deepEqual(
    decodeStepKernels([{ name: "x", dispatches: 1, ms: 1 }], 1, 1),
    [],
    "no decode phase: empty",
  );
});

Deno.test("host time per decode step: median gap between step starts, sync steps and the final read left out", () => {
  // Steps 1..9, then onStep(10) after the final read (900); interval 2: steps 2, 4, 6, 8 begin with a host sync.
  const at = [0, 0, 100, 102, 200, 203, 300, 302, 400, 402, 900];
  assert.equal(hostStepMs(at, 2), 2); // gaps into steps 3, 5, 7, 9: 2, 3, 2, 2 (with the syncs' the median is 50)
  assert.equal(hostStepMs([0, 0, 5], 4), null, "fewer than two gaps");
});
