// `deno task gpu-info [--gpu dawn|wgpu|auto] [--retune]`: the backend and adapter WebGPU gives this machine (first
// line `gpu: <backend> · <adapter> · <driver>`), its limits and features, and the tuning cache that `auto` chooses by
// (src/gpu/tuning.ts: one row per backend, adapter and driver). Exits 1 when no backend can start (the reason on
// stderr). tools/run.sh uses it to decide whether Mesa's lavapipe must be installed.
// `--measure --gpu B` (what auto runs in a child process per backend) prints one JSON line: the measurement.
import { takeGpuFlag } from "../src/gpu/backends.ts";
import { acquireGpu, closeGpu, describeGpu, gpuLine } from "../src/gpu/device.ts";
import { GpuContext } from "../src/gpu/context.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { type BackendMeasurement, readTuning, tuningFile, tuningTable } from "../src/gpu/tuning.ts";
import { add } from "../src/kernels/elementwise.ts";
import { matmul } from "../src/kernels/matmul.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 2654435761 + seed) % 1000) / 1000 - 0.5;
  return out;
}

/**
 * The measurement auto compares, short (a few seconds once the shaders are compiled): queue round trip, dispatch
 * cost, model matmul shapes, and `workloadMs`: 40 decode-like steps of the tiny models' layer matmuls at batch 4
 * (2 layers of qkv 192x64, dense 64x64, MLP 256x64 and 64x256, f16 weights, a residual add each; one sync every 20
 * steps, as CogLM does) plus 4 SR-shaped matmuls (3600x192x64).
 */
async function measure(ctx: GpuContext): Promise<BackendMeasurement> {
  const x = ctx.upload(filler(64, 1), [64]), y = ctx.upload(filler(64, 2), [64]), z = ctx.empty([64]);
  add(ctx, x, y, z);
  await ctx.sync();
  const rt: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    add(ctx, x, y, z);
    await ctx.sync();
    rt.push(performance.now() - t0);
  }
  let t0 = performance.now();
  for (let i = 0; i < 200; i++) add(ctx, x, y, z);
  await ctx.sync();
  const dispatchUs = (performance.now() - t0) * 1000 / 200;
  const weights = new Map<string, Tensor>();
  const mm = (M: number, N: number, K: number, a: Tensor, out: Tensor) => {
    const key = `${N}x${K}`;
    let w = weights.get(key);
    if (!w) weights.set(key, w = ctx.upload(filler(N * K, N + K), [N, K], "f16"));
    matmul(ctx, a, w, { M, N, K, out, constantW: true });
  };
  const act = (M: number, K: number) => ctx.upload(filler(M * K, M + K), [M, K]);
  const shapes: Record<string, number> = {};
  const shape = async (M: number, N: number, K: number) => {
    const a = act(M, K), c = ctx.empty([M, N]);
    mm(M, N, K, a, c);
    await ctx.sync(); // compile and repack outside the timing
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      for (let r = 0; r < 4; r++) mm(M, N, K, a, c);
      await ctx.sync();
      times.push((performance.now() - t) / 4);
    }
    shapes[`${M}x${N}x${K} f16`] = median(times);
    return { a, c };
  };
  await shape(4, 192, 64);
  await shape(4, 1024, 1024);
  const sr = await shape(3600, 192, 64);
  // The workload (its kernels are compiled above; the remaining layer shapes once here).
  const h = act(4, 64), q = ctx.empty([4, 192]), d = ctx.empty([4, 64]), u = ctx.empty([4, 256]);
  const r = ctx.empty([4, 64]);
  const step = () => {
    for (let l = 0; l < 2; l++) {
      mm(4, 192, 64, h, q);
      mm(4, 64, 64, h, d);
      add(ctx, h, d, r);
      mm(4, 256, 64, r, u);
      mm(4, 64, 256, u, d);
      add(ctx, r, d, h);
    }
  };
  step();
  await ctx.sync();
  t0 = performance.now();
  for (let s = 0; s < 40; s++) {
    step();
    if (s % 20 === 19) await ctx.sync();
  }
  for (let r = 0; r < 4; r++) mm(3600, 192, 64, sr.a, sr.c);
  await ctx.sync();
  const workloadMs = performance.now() - t0;
  return {
    backend: ctx.gpu.backend,
    adapter: ctx.gpu.name,
    driver: ctx.gpu.driver,
    roundTripMs: median(rt),
    dispatchUs,
    shapes,
    workloadMs,
    measuredAt: new Date().toISOString(),
  };
}

try {
  let rest = takeGpuFlag(Deno.args);
  const measureOnly = rest.includes("--measure");
  rest = rest.filter((a) => a !== "--measure");
  if (rest.length) {
    throw new Error(`gpu-info takes only --gpu, --retune and --measure (got ${rest.join(" ")})`);
  }
  const gpu = await acquireGpu({ log: (l) => console.error(l) });
  if (measureOnly) {
    const ctx = new GpuContext(gpu);
    console.log(JSON.stringify(await measure(ctx)));
    closeGpu(gpu);
    Deno.exit(0);
  }
  console.log(gpuLine(gpu));
  console.log(describeGpu(gpu));
  console.log(
    `subgroups ${gpu.hasSubgroups ? "yes" : "no"}; timestamps ${gpu.hasTimestamps ? "yes" : "no"}; ` +
      `uniform buffers per stage ${gpu.limits.maxUniformBuffersPerShaderStage}`,
  );
  console.log(`adapter features: ${gpu.adapterFeatures.join(", ") || "none"}`);
  closeGpu(gpu);
  console.log(`\nauto's measurements (${tuningFile()}):`);
  console.log(tuningTable(readTuning()));
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(1);
}
