// `deno task bench --compare-backends [--quick] [--only a,b] [--model DIR]`: the same suites (default matmul,
// choices, coglm, sr, e2e) once per WebGPU backend, each in its own process (`--gpu wgpu`, then `--gpu dawn`),
// printed side by side with the dawn/wgpu ratio; out/bench_compare.json keeps both runs. A backend that cannot
// start is reported, not fatal.
// Without --model, the tiny test fixture set (tests/testdata/cogview2-tiny) is converted once and every suite that
// takes a model (coglm, sr, e2e) runs on that converted model on both backends; `--model demo` converts nothing (e2e
// then runs the built-in demo model: same architecture and sizes, seeded random weights). Rows are split into two tables:
// warm-up (first runs, which create the pipelines: Dawn's first compiles on Mesa 25 take tens of seconds) and steady
// state (everything timed after its warm-up).
import { join } from "node:path";
import { type BackendName, BACKENDS } from "../../src/gpu/backends.ts";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import type { BenchResult } from "./_types.ts";

export const COMPARE_SUITES = ["matmul", "choices", "coglm", "sr", "e2e"];
const MODEL_SUITES = new Set(["coglm", "sr", "e2e"]);
const FIXTURE = new URL("../../tests/testdata/cogview2-tiny", import.meta.url).pathname;

export interface Run {
  backend: BackendName;
  gpu: string;
  /** Wall seconds of the whole child process (warm-ups included). */
  seconds: number;
  results: BenchResult[];
  error?: string;
}

/** Params that name what one backend ran (its kernel, pipelines it created): shown, not matched on. */
const PER_BACKEND = new Set(["kernel", "pipelines"]);

/** Per-kernel profile rows (coglm_kernel_ms): there the kernel is what the row measures, so it is matched on. */
const perBackend = (r: BenchResult, k: string) => PER_BACKEND.has(k) && !/kernel_ms$/.test(r.name);

const shared = (r: BenchResult) =>
  Object.entries(r.params).filter(([k]) => !perBackend(r, k)).map(([k, v]) => `${k}=${v}`).join(" ");

/** Warm-up rows: first runs that include pipeline creation (their names say so). */
export const isWarmup = (r: BenchResult): boolean => /warmup/.test(r.name);

async function child(backend: BackendName, args: string[]): Promise<Run> {
  const script = new URL("../bench.ts", import.meta.url).pathname;
  const t0 = performance.now();
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-webgpu", script, "--gpu", backend, "--json", ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The child's log (its table, on stderr under --json) is shown as it runs, indented; its stdout is the JSON.
  const errLines: string[] = [];
  const pump = (async () => {
    let buf = "";
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        errLines.push(l);
        if (l && !l.startsWith("Warning:")) console.log(`  [${backend}] ${l}`);
      }
    }
    if (buf) errLines.push(buf);
  })();
  const stdout = new Response(proc.stdout).text();
  const [status, out] = await Promise.all([proc.status, stdout]);
  await pump;
  const seconds = (performance.now() - t0) / 1000;
  const gpu = errLines.find((l) => l.startsWith("gpu: ")) ?? `gpu: ${backend} (did not start)`;
  let results: BenchResult[] = [];
  try {
    results = status.success ? JSON.parse(out) : [];
  } catch {
    results = [];
  }
  const why = errLines.filter((l) => l && !l.startsWith("Warning:")).slice(-3).join(" / ");
  return {
    backend,
    gpu,
    seconds,
    results,
    error: status.success ? undefined : `exit ${status.code}: ${why}`,
  };
}

export async function compareBackends(passArgs: string[], only: string[] | null): Promise<number> {
  const suites = only ?? COMPARE_SUITES;
  // `--model demo`: no conversion; each suite runs on what it uses without --model (e2e: the built-in demo model),
  // for machines without tests/testdata (a lent GPU machine takes 64 MiB of tree).
  const mi = passArgs.indexOf("--model");
  const demo = mi >= 0 && passArgs[mi + 1] === "demo";
  if (demo) passArgs = passArgs.filter((_, i) => i !== mi && i !== mi + 1);
  const args = ["--only", suites.join(","), ...passArgs];
  let tmp: string | null = null;
  if (!demo && !passArgs.includes("--model") && suites.some((s) => MODEL_SUITES.has(s))) {
    tmp = await Deno.makeTempDir({ prefix: "cogview2-compare-" });
    const dir = join(tmp, "model");
    console.log(`# converting ${FIXTURE} -> ${dir} (both backends run this model)`);
    await convertFixtureSet(FIXTURE, dir);
    args.push("--model", dir);
  }
  const runs: Run[] = [];
  try {
    for (const backend of BACKENDS) {
      console.log(`# running ${suites.join(",")} on ${backend} ...`);
      const run = await child(backend, args);
      runs.push(run);
      console.log(
        `${run.gpu}  (${run.seconds.toFixed(0)} s)${run.error ? `  (failed: ${run.error})` : ""}`,
      );
    }
  } finally {
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  printCompare(runs);
  await Deno.mkdir("out", { recursive: true });
  await Deno.writeTextFile(
    "out/bench_compare.json",
    JSON.stringify({ date: new Date().toISOString(), suites, args: passArgs, runs }, null, 2),
  );
  console.log("\nwrote out/bench_compare.json");
  return runs.every((r) => !r.error) ? 0 : 1;
}

function fmt(v: number | undefined): string {
  return v === undefined
    ? "-"
    : Math.abs(v) >= 100
    ? v.toFixed(1)
    : Math.abs(v) >= 1
    ? v.toFixed(2)
    : v.toPrecision(3);
}

/**
 * The side-by-side tables of a compare record: rows matched by name, shared params and order of appearance (the
 * n-th "matmul_gflops M=1024 ..." of one backend beside the n-th of the other, whichever kernel each ran).
 */
export function printCompare(runs: Run[]): void {
  const rows = new Map<string, { r: BenchResult; v: Map<BackendName, BenchResult> }>();
  for (const run of runs) {
    const seen = new Map<string, number>();
    for (const r of run.results) {
      const base = `${r.name} ${shared(r)}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      const k = `${base}#${n}`;
      if (!rows.has(k)) rows.set(k, { r, v: new Map() });
      rows.get(k)!.v.set(run.backend, r);
    }
  }
  console.log("");
  for (const run of runs) console.log(`${run.gpu}: ${run.seconds.toFixed(0)} s in all`);
  for (const warm of [true, false]) {
    console.log(
      warm
        ? "\n## warm-up: first runs, pipeline creation included"
        : "\n## steady state: timed after the warm-up",
    );
    console.log(
      `${"name".padEnd(34)} ${"params".padEnd(60)} ${"wgpu".padStart(10)} ${"dawn".padStart(10)} ${
        "dawn/wgpu".padStart(9)
      } unit`,
    );
    for (const { r, v } of rows.values()) {
      if (isWarmup(r) !== warm) continue;
      const w = v.get("wgpu"), d = v.get("dawn");
      // Per-backend params side by side when they differ: kernel=matmul_windows|matmul_ubo (wgpu|dawn).
      const own = [...PER_BACKEND].filter((p) => perBackend(r, p)).flatMap((p) => {
        const a = w?.params[p], b = d?.params[p];
        if (a === undefined && b === undefined) return [];
        return [a === b ? `${p}=${a}` : `${p}=${a ?? "-"}|${b ?? "-"}`];
      });
      const p = [shared(r), ...own].filter(Boolean).join(" ");
      console.log(
        `${r.name.padEnd(34)} ${p.padEnd(60)} ${fmt(w?.value).padStart(10)} ${fmt(d?.value).padStart(10)} ${
          (w && d && w.value ? (d.value / w.value).toFixed(2) : "-").padStart(9)
        } ${r.unit}`,
      );
    }
  }
}
