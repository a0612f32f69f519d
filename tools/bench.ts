// `deno task bench [--json] [--quick] [--only a,b] [--variants REGEX] [--model DIR] [--gpu dawn|wgpu|auto]`: runs every suite in tools/bench/mod.ts on the
// adapter, prints a table (or, with --json, one JSON array of {name, params, value, unit}) and writes out/bench.json.
// --model: a converted model directory for the coglm and sr suites instead of converting tests/testdata.
// --shape published [--layers N] [--batch 1|4|8] [--sr-layers N] [--tokens N] [--weights f16|int8]
// [--residency all|stage] [--stages all|coglm|vqvae] [--vq-side N] [--lopar-rounds N] [--profile]: instead of the suites, the published architecture with random weights made on the GPU,
// every stage once, peak GPU bytes per stage and extrapolated to full depth (tools/bench/published.ts); --profile adds
// each stage's kernels by GPU time (timestamp queries, one pass per dispatch: a slower run; out/..._profile.json).
// --gpu-schedules: on a CPU adapter, the kernels a GPU adapter gets (choices.ts "*/gpu"): e.g. the published CogLM
// decode step's dispatches as a GPU records them (`--shape published --layers 2 --tokens 8 --stages coglm --profile
// --gpu-schedules`); its times are lavapipe's, not a GPU's.
// --compare-backends: the suites (default matmul, choices, coglm, sr, e2e) on wgpu and on Dawn, side by side
// (tools/bench/compare.ts); --compare-backends --from FILE re-prints a recorded run's tables.
import { sharedContext } from "../src/gpu/context.ts";
import { describeGpu, gpuLine } from "../src/gpu/device.ts";
import { takeGpuFlag } from "../src/gpu/backends.ts";
import type { BenchResult } from "./bench/_types.ts";
import { suites } from "./bench/mod.ts";
import { runPublished } from "./bench/published.ts";
import { compareBackends, printCompare } from "./bench/compare.ts";

let args: string[];
try {
  args = takeGpuFlag(Deno.args);
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(2);
}
const json = args.includes("--json");
const quick = args.includes("--quick");
const modelIdx = args.indexOf("--model");
const model = modelIdx >= 0 ? args[modelIdx + 1] : undefined;
if (modelIdx >= 0 && !model) {
  console.error("--model needs a converted model directory (deno task convert --out DIR)");
  Deno.exit(2);
}
const variantsIdx = args.indexOf("--variants");
let variants: RegExp | undefined;
if (variantsIdx >= 0) {
  try {
    variants = new RegExp(args[variantsIdx + 1] ?? "");
  } catch (e) {
    console.error(`--variants ${args[variantsIdx + 1]}: not a regular expression (${(e as Error).message})`);
    Deno.exit(2);
  }
  args.splice(variantsIdx, 2);
}
const onlyIdx = args.indexOf("--only");
const only = onlyIdx >= 0 ? new Set(args[onlyIdx + 1].split(",")) : null;
const unknown = only ? [...only].filter((n) => !suites.some((s) => s.name === n)) : [];
if (unknown.length) {
  console.error(
    `Unknown suite(s) for --only: ${unknown.join(", ")}. Suites: ${suites.map((s) => s.name).join(", ")}`,
  );
  Deno.exit(2);
}

function choiceFlag<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1] as T;
  if (!choices.includes(v)) {
    console.error(`${name} ${v ?? ""}: expected ${choices.join(" or ")}`);
    Deno.exit(2);
  }
  return v;
}

function intFlag(name: string, ok: (n: number) => boolean, what: string): number | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || !ok(v)) {
    console.error(`${name} ${args[i + 1] ?? ""}: expected ${what}`);
    Deno.exit(2);
  }
  return v;
}
const shapeIdx = args.indexOf("--shape");
const shape = shapeIdx >= 0 ? args[shapeIdx + 1] : undefined;
if (shapeIdx >= 0 && shape !== "published") {
  console.error(`--shape ${shape ?? ""}: the only shape is "published" (the published CogView2 sizes)`);
  Deno.exit(2);
}
const published = shape === "published"
  ? {
    layers: intFlag("--layers", (n) => n >= 1 && n <= 48, "a depth from 1 to 48"),
    batch: intFlag("--batch", (n) => [1, 4, 8].includes(n), "1, 4 or 8") ?? 1,
    srLayers: intFlag("--sr-layers", (n) => n >= 1 && n <= 96, "a depth from 1 to 96"),
    tokens: intFlag("--tokens", (n) => n >= 2 && n <= 400, "2 to 400 CogLM tokens") ?? 400,
    weights: choiceFlag("--weights", ["f16", "int8"] as const),
    residency: choiceFlag("--residency", ["all", "stage"] as const),
    stages: choiceFlag("--stages", ["all", "coglm", "vqvae"] as const),
    vqSide: intFlag("--vq-side", (n) => n >= 4 && n <= 60 && 60 % n === 0, "a divisor of 60 from 4 to 60"),
    loparRounds: intFlag("--lopar-rounds", (n) => n >= 1 && n <= 6, "1 to 6 LoPAR rounds"),
    profile: args.includes("--profile"),
  }
  : null;

if (args.includes("--compare-backends") && args.includes("--from")) {
  // Re-print the tables of a recorded compare run (out/bench_compare.json or a copy under bench/results/).
  const file = args[args.indexOf("--from") + 1];
  try {
    printCompare(JSON.parse(await Deno.readTextFile(file)).runs);
  } catch (e) {
    console.error(
      `--from ${file ?? ""}: ${(e as Error).message} (expected a bench --compare-backends JSON record)`,
    );
    Deno.exit(2);
  }
  Deno.exit(0);
}
if (args.includes("--compare-backends")) {
  const pass = args.filter((a, i) =>
    a !== "--compare-backends" && a !== "--only" && args[i - 1] !== "--only"
  );
  Deno.exit(await compareBackends(pass.filter((a) => a !== "--json"), only ? [...only] : null));
}

const gpuSchedules = args.includes("--gpu-schedules");
const shared = await sharedContext();
const ctx = gpuSchedules ? shared.withGpuSchedules() : shared;
const results: BenchResult[] = [];
const log = (s: string) => json ? console.error(s) : console.log(s);
log(
  gpuLine(ctx.gpu) +
    (gpuSchedules ? " — GPU schedules (--gpu-schedules): kernels as on a GPU, times not a GPU's" : ""),
);
log(`# adapter: ${describeGpu(ctx.gpu)}`);
if (published) {
  const t0 = performance.now();
  await runPublished(ctx, (r) => results.push(r), log, published);
  log(`# published bench: ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
}
for (const suite of published ? [] : suites) {
  if (only && !only.has(suite.name)) continue;
  log(`\n## ${suite.name}: ${suite.description}`);
  log(`${"name".padEnd(34)} ${"params".padEnd(44)} ${"value".padStart(12)} unit`);
  await suite.run(ctx, (r) => {
    results.push(r);
    const p = Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(" ");
    log(
      `${r.name.padEnd(34)} ${p.padEnd(44)} ${fmt(r.value).padStart(12)} ${r.unit}${
        r.baseline ? ` (vs ${r.baseline})` : ""
      }`,
    );
  }, { quick, model, variants });
}
await Deno.mkdir("out", { recursive: true });
const record = {
  gpu: gpuLine(ctx.gpu),
  adapter: describeGpu(ctx.gpu),
  date: new Date().toISOString(),
  results,
};
const outFile = published
  ? `out/bench_published_b${published.batch}${published.weights === "int8" ? "_int8" : ""}${
    published.residency === "all" ? "_all" : ""
  }${published.stages && published.stages !== "all" ? `_${published.stages}` : ""}${
    published.profile ? "_profile" : ""
  }${gpuSchedules ? "_gpu_schedules" : ""}.json`
  : "out/bench.json";
await Deno.writeTextFile(outFile, JSON.stringify(record, null, 2));
if (json) console.log(JSON.stringify(results));
else console.log(`\nwrote ${outFile} (${results.length} results)`);

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
