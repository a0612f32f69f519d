// `deno task bench --compare-backends [--quick] [--only a,b] [--model DIR]`: the same suites (default matmul, coglm,
// sr, e2e) once per WebGPU backend, each in its own process (`--gpu wgpu`, then `--gpu dawn`), printed side by side
// with the dawn/wgpu ratio; out/bench_compare.json keeps both runs. A backend that cannot start is reported, not fatal.
import { type BackendName, BACKENDS } from "../../src/gpu/backends.ts";
import type { BenchResult } from "./_types.ts";

export const COMPARE_SUITES = ["matmul", "coglm", "sr", "e2e"];

interface Run {
  backend: BackendName;
  gpu: string;
  results: BenchResult[];
  error?: string;
}

const key = (r: BenchResult) =>
  `${r.name} ${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(" ")}`;

export async function compareBackends(passArgs: string[], only: string[] | null): Promise<number> {
  const suites = only ?? COMPARE_SUITES;
  const script = new URL("../bench.ts", import.meta.url).pathname;
  const runs: Run[] = [];
  for (const backend of BACKENDS) {
    console.log(`# running ${suites.join(",")} on ${backend} ...`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--unstable-webgpu",
        script,
        "--gpu",
        backend,
        "--json",
        "--only",
        suites.join(","),
        ...passArgs,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    const gpu = err.split("\n").find((l) => l.startsWith("gpu: ")) ?? `gpu: ${backend} (did not start)`;
    let results: BenchResult[] = [];
    try {
      results = out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : [];
    } catch {
      results = [];
    }
    const why = err.split("\n").filter((l) => l && !l.startsWith("Warning:")).slice(-3).join(" / ");
    runs.push({ backend, gpu, results, error: out.success ? undefined : `exit ${out.code}: ${why}` });
    console.log(gpu + (out.success ? "" : `  (failed: exit ${out.code}: ${why})`));
  }
  const rows = new Map<string, { r: BenchResult; v: Map<BackendName, number> }>();
  for (const run of runs) {
    for (const r of run.results) {
      const k = key(r);
      if (!rows.has(k)) rows.set(k, { r, v: new Map() });
      rows.get(k)!.v.set(run.backend, r.value);
    }
  }
  const fmt = (v: number | undefined) =>
    v === undefined
      ? "-"
      : Math.abs(v) >= 100
      ? v.toFixed(1)
      : Math.abs(v) >= 1
      ? v.toFixed(2)
      : v.toPrecision(3);
  console.log(
    `\n${"name".padEnd(34)} ${"params".padEnd(52)} ${"wgpu".padStart(10)} ${"dawn".padStart(10)} ${
      "dawn/wgpu".padStart(9)
    } unit`,
  );
  for (const [k, { r, v }] of rows) {
    const w = v.get("wgpu"), d = v.get("dawn");
    const p = k.slice(r.name.length + 1);
    console.log(
      `${r.name.padEnd(34)} ${p.padEnd(52)} ${fmt(w).padStart(10)} ${fmt(d).padStart(10)} ${
        (w && d ? (d / w).toFixed(2) : "-").padStart(9)
      } ${r.unit}`,
    );
  }
  await Deno.mkdir("out", { recursive: true });
  await Deno.writeTextFile(
    "out/bench_compare.json",
    JSON.stringify({ date: new Date().toISOString(), suites, runs }, null, 2),
  );
  console.log("\nwrote out/bench_compare.json");
  return runs.every((r) => !r.error) ? 0 : 1;
}
