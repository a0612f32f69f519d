// `auto` by measurement: which backend this machine runs faster END TO END, measured once and cached in a small JSON
// file. Each backend is measured in its own child process (`tools/probe_gpu.ts --measure --gpu B`: two lavapipe builds
// in one process would share symbols), which prints one JSON line: a bounded slice of each pipeline stage on the
// built-in demo model (CogLM steps at batch 1 and 4, a preview decode, one DSR forward, LoPAR's first round, one
// 480x480 VQ-VAE decode), timed after a warm-up pass that compiles every pipeline (the warm-up is
// reported, not weighed). predictJobs scales the slices to the four jobs of the end-to-end bench (first stage alone
// and whole pipeline, batch 1 and 4) and auto picks the lowest mean of their seconds per image. The file
// keeps one entry per (backend, adapter, driver) and the decision with the fingerprint of what it was made on (Deno,
// the Dawn addon, the system and private Mesa versions): a change there, or an adapter/driver that no longer matches
// its entry, measures again; `--retune` (or COGVIEW2_RETUNE=1) always does. Not a kernel tuner:
// src/kernels/choices.ts holds the per-backend kernel table.

import { dirname, join } from "node:path";
import { homedir } from "node:os";
import { fileURLToPath } from "node:url";
import { type BackendName, BACKENDS, DAWN_NPM_VERSION, dawnDriverFiles } from "./backends.ts";
import { readEnv } from "./env.ts";

/** The timed stage slices (ms), each after a warm-up run of the same kernels. */
export interface StageSlices {
  /** CogLM generation, ms per token (prompt pass, sampling and the host syncs every 20 steps included). */
  coglmStepB1: number;
  coglmStepB4: number;
  /** One 20x20-code -> 160x160 VQ-VAE decode (the first stage's preview, one per image). */
  preview: number;
  /** One DSR call on one image (400 -> 3600 codes). */
  dsrB1: number;
  /** LoPAR's first round (of six; 2300 of 3600 cells re-predicted) on one image. */
  loparB1: number;
  /** The first round on one image with only the last round's 200 cells re-predicted (an input mask). */
  loparB1Last: number;
  /** One 60x60-code -> 480x480 VQ-VAE decode (one per image). */
  decode: number;
}

/** The four jobs of `bench --only e2e`, predicted: seconds per job. */
export interface PredictedJobs {
  first_b1: number;
  first_b4: number;
  whole_b1: number;
  whole_b4: number;
}

/** What one backend measured (tools/probe_gpu.ts --measure prints it as one JSON line). */
export interface BackendMeasurement {
  backend: BackendName;
  adapter: string;
  driver: string;
  /** Median submit -> onSubmittedWorkDone of one tiny dispatch (shown, not weighed). */
  roundTripMs: number;
  /** Per dispatch, 200 tiny dispatches in one submit (shown, not weighed). */
  dispatchUs: number;
  stages: StageSlices;
  /** Wall seconds of the warm-up pass (every pipeline created and compiled, each slice run once, shorter). */
  warmupS: number;
  /** The warm-up pass less its work at the timed speed: about the one-off shader compile cost. */
  compileS: number;
  /** Pipelines the warm-up created; and any the timed pass still created (0 expected). */
  pipelines: number;
  latePipelines: number;
  /** The timed slices that still created pipelines ("decode 4"): their time includes those compiles. */
  lateIn?: string[];
  /** The whole measurement, wall seconds (model load included). */
  totalS: number;
  measuredAt: string;
}

/** CogLM tokens per image, LoPAR rounds (the pipeline's fixed sizes). */
const TOKENS = 400, LOPAR_ROUNDS = 6;
/** Cells LoPAR re-predicts in its first round, in its last, and in all six (src/geometry/sr.ts loparRoundMask). */
const LOPAR_FIRST_CELLS = 2300, LOPAR_LAST_CELLS = 200, LOPAR_ALL_CELLS = 7500;

/**
 * LoPAR's six rounds in units of its first round: a round costs a forward F plus p per re-predicted cell; the first
 * round measured in full (F + 2300 p) and limited to 200 cells (F + 200 p) give F and p, the six rounds 6 F + 7500 p.
 */
export function loparRoundsFactor(s: StageSlices): number {
  const p = Math.max(0, (s.loparB1 - s.loparB1Last) / (LOPAR_FIRST_CELLS - LOPAR_LAST_CELLS));
  const f = Math.max(0, s.loparB1Last - LOPAR_LAST_CELLS * p);
  return (LOPAR_ROUNDS * f + LOPAR_ALL_CELLS * p) / (f + LOPAR_FIRST_CELLS * p);
}
/** What the log line promises per backend (2-core lavapipe, quiet, shaders in Mesa's cache). */
const MEASURE_SECONDS = 25;

/**
 * The e2e bench's four jobs from the slices. First stage: 400 CogLM tokens for the batch + one preview decode per
 * image. Whole pipeline: + per image one DSR call, six LoPAR rounds (loparRoundsFactor times the first) and one
 * 480x480 decode. The SR stages at batch 4 are taken as 4x batch 1 (not timed: it would add a third to the
 * measurement): on lavapipe they cost the same per image at both batches (bench e2e, session 6: DSR 4.32 vs 4.44 s
 * per image on wgpu, 4.33 vs 4.97 on Dawn; LoPAR 14.1 vs 12.8, 7.9 vs 8.8), and on a GPU batching helps both
 * backends' identical kernels alike.
 */
export function predictJobs(s: StageSlices): PredictedJobs {
  const first = (b: 1 | 4) => (TOKENS * (b === 1 ? s.coglmStepB1 : s.coglmStepB4) + b * s.preview) / 1000;
  const sr = (s.dsrB1 + loparRoundsFactor(s) * s.loparB1 + s.decode) / 1000;
  return { first_b1: first(1), first_b4: first(4), whole_b1: first(1) + sr, whole_b4: first(4) + 4 * sr };
}

/**
 * What auto compares (lower is faster): the mean of the four predicted jobs' seconds per image, i.e. the wall time a
 * user waits for one image made each of the four ways. The whole pipeline weighs more because it takes longer; a
 * geometric mean would count a first-stage job (a few s) the same as a whole-pipeline job (tens of s), and on
 * lavapipe the two disagree (wgpu runs CogLM faster, Dawn the SR stages and the decode: bench/results/
 * 2026-12-04-lavapipe/auto_vs_e2e.md).
 */
export function e2eScore(m: BackendMeasurement): number {
  const p = predictJobs(m.stages);
  return (p.first_b1 + p.first_b4 / 4 + p.whole_b1 + p.whole_b4 / 4) / 4;
}

export interface AutoDecision {
  choice: BackendName;
  /** The fingerprint of the software the decision was made on (envFingerprint). */
  env: string;
  /** The entries compared (keys into `entries`). */
  keys: string[];
  /** Backends that could not be measured, with the reason. */
  failed: Record<string, string>;
  decidedAt: string;
}

export interface TuningCache {
  format: "cogview2-gpu-tuning";
  /** 2: end-to-end stage slices (session 6); 1 (a matmul workload) is measured again. */
  version: 2;
  entries: Record<string, BackendMeasurement>;
  auto?: AutoDecision;
}

const FORMAT = "cogview2-gpu-tuning";
const VERSION = 2;

/**
 * The cache file: COGVIEW2_TUNING_FILE, else gpu-tuning.json in $COGVIEW2_CACHE, $XDG_CACHE_HOME/cogview2-webgpu or
 * ~/.cache/cogview2-webgpu (the directory the demo model uses).
 */
export function tuningFile(): string {
  const explicit = readEnv("COGVIEW2_TUNING_FILE");
  if (explicit) return explicit;
  const cache = readEnv("COGVIEW2_CACHE");
  if (cache) return join(cache, "gpu-tuning.json");
  const xdg = readEnv("XDG_CACHE_HOME");
  return join(xdg && xdg.trim() ? xdg : join(homedir(), ".cache"), "cogview2-webgpu", "gpu-tuning.json");
}

/** The key of a measurement: backend, adapter and driver. */
export function entryKey(m: { backend: string; adapter: string; driver: string }): string {
  return `${m.backend} · ${m.adapter} · ${m.driver}`;
}

function empty(): TuningCache {
  return { format: FORMAT, version: VERSION, entries: {} };
}

/**
 * Reads the cache; a missing, unreadable or foreign file, or one of another version (its figures are not comparable),
 * is an empty cache (it is only a cache): auto measures again and rewrites it.
 */
export function readTuning(path = tuningFile()): TuningCache {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    if (j && j.format === FORMAT && j.version === VERSION && typeof j.entries === "object") {
      return j as TuningCache;
    }
  } catch {
    // absent or damaged: measure again
  }
  return empty();
}

/** Writes the cache through a temp file and a rename (concurrent readers never see half a file). */
export function writeTuning(c: TuningCache, path = tuningFile()): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(c, null, 2) + "\n");
  Deno.renameSync(tmp, path);
}

async function commandOut(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

/**
 * What a decision depends on besides the adapters themselves: Deno (wgpu), the Dawn addon version, the private
 * Mesa Dawn uses and the system Mesa. A driver upgrade changes it.
 */
export async function envFingerprint(): Promise<string> {
  const files = dawnDriverFiles();
  let dawnMesa = "";
  if (files) {
    try {
      dawnMesa = Deno.readTextFileSync(join(dirname(files), "VERSION")).trim();
    } catch {
      dawnMesa = files;
    }
  }
  const systemMesa = await commandOut("dpkg-query", ["-W", "-f", "${Version}", "mesa-vulkan-drivers"]);
  return JSON.stringify({ deno: Deno.version.deno, dawn: DAWN_NPM_VERSION, dawnMesa, systemMesa });
}

/** The faster backend: the lowest e2eScore among the measurements (null when none). */
export function fastest(ms: readonly BackendMeasurement[]): BackendMeasurement | null {
  let best: BackendMeasurement | null = null;
  for (const m of ms) if (!best || e2eScore(m) < e2eScore(best)) best = m;
  return best;
}

/** tools/probe_gpu.ts beside this module (absent in a `deno compile` binary: auto then keeps its fixed order). */
function probeScript(): string | null {
  try {
    const p = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "tools", "probe_gpu.ts");
    Deno.statSync(p);
    return p;
  } catch {
    return null;
  }
}

/** Measures one backend in a child process (at most `timeoutMs`); throws a one-line reason on failure. */
export async function measureInChild(name: BackendName, timeoutMs = 900_000): Promise<BackendMeasurement> {
  const script = probeScript();
  if (!script) throw new Error("tools/probe_gpu.ts is not here (a compiled binary): not measured");
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--unstable-webgpu", script, "--measure", "--gpu", name],
      env: { COGVIEW2_GPU: name, COGVIEW2_RETUNE: "" },
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) => !/^Warning:/.test(l));
      throw new Error(err.at(-1) || `the measurement exited with ${out.code}`);
    }
    const m = JSON.parse(text) as BackendMeasurement;
    if (m.backend !== name || !(e2eScore(m) > 0)) {
      throw new Error(`unexpected measurement: ${text.slice(0, 200)}`);
    }
    return m;
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`the measurement took over ${timeoutMs / 1000} s`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export type Measure = (name: BackendName) => Promise<BackendMeasurement>;

export interface AutoPick {
  choice: BackendName;
  /** The entry the choice was measured as (its adapter and driver must match the device that opens). */
  entry: BackendMeasurement | null;
  /** For the gpu line: "measured ..." / "cached ..." / why there was no measurement. */
  note: string;
}

/** One line comparing the measured backends, fastest first. */
function summary(c: TuningCache, d: AutoDecision): string {
  const parts = d.keys.map((k) => c.entries[k]).filter(Boolean).sort((a, b) => e2eScore(a) - e2eScore(b))
    .map((m) => `${m.backend} ${e2eScore(m).toFixed(2)} s/image`);
  for (const [b, why] of Object.entries(d.failed)) parts.push(`${b} failed: ${why}`);
  return parts.join(" vs ");
}

/**
 * The backend auto should open: the cached decision when it was made on this fingerprint, else a new measurement of
 * every backend (written to the cache). `measure` is injectable for tests.
 */
export async function autoPick(o: {
  measure?: Measure;
  retune?: boolean;
  path?: string;
  log?: (line: string) => void;
  fingerprint?: string;
} = {}): Promise<AutoPick> {
  const path = o.path ?? tuningFile();
  const fp = o.fingerprint ?? await envFingerprint();
  const retune = o.retune ?? readEnv("COGVIEW2_RETUNE") === "1";
  const cache = readTuning(path);
  const d = cache.auto;
  if (!retune && d && d.env === fp) {
    const entry = d.keys.map((k) => cache.entries[k]).find((m) => m?.backend === d.choice) ?? null;
    return { choice: d.choice, entry, note: `cached: ${summary(cache, d)}` };
  }
  const measure = o.measure ?? ((n: BackendName) => measureInChild(n));
  const log = o.log ?? console.error;
  log(
    `gpu: auto measures ${
      BACKENDS.join(" and ")
    } once on this machine (a slice of each pipeline stage on the demo ` +
      `model, ~${MEASURE_SECONDS} s each once shaders are compiled; the first compile can take minutes on a CPU ` +
      `adapter); cached in ${path} (${retune ? "--retune" : "no valid entry"})`,
  );
  const got: BackendMeasurement[] = [];
  const failed: Record<string, string> = {};
  for (const name of BACKENDS) {
    const t0 = performance.now();
    try {
      const m = await measure(name);
      got.push(m);
      log(
        `gpu: auto: ${name} measured in ${((performance.now() - t0) / 1000).toFixed(0)} s: ` +
          `${e2eScore(m).toFixed(2)} s per image end to end (estimate), warm-up ${m.warmupS.toFixed(1)} s`,
      );
    } catch (e) {
      failed[name] = (e as Error).message.split("\n")[0];
      log(`gpu: auto: ${name} not measured: ${failed[name]}`);
    }
  }
  const best = fastest(got);
  if (!best) {
    return { choice: BACKENDS[0], entry: null, note: `not measured: ${Object.values(failed).join("; ")}` };
  }
  try {
    if (readEnv("COGVIEW2_RETUNE")) Deno.env.delete("COGVIEW2_RETUNE"); // --retune: once per process
  } catch {
    // no --allow-env
  }
  for (const m of got) cache.entries[entryKey(m)] = m;
  cache.auto = {
    choice: best.backend,
    env: fp,
    keys: got.map(entryKey),
    failed,
    decidedAt: new Date().toISOString(),
  };
  try {
    writeTuning(cache, path);
  } catch (e) {
    (o.log ?? console.error)(`gpu: could not write ${path}: ${(e as Error).message}`);
  }
  return { choice: best.backend, entry: best, note: `measured: ${summary(cache, cache.auto)}` };
}

/** Drops the decision (its adapter or driver no longer matches the device that opened): the next pick measures. */
export function forgetDecision(path = tuningFile()): void {
  const c = readTuning(path);
  if (!c.auto) return;
  delete c.auto;
  writeTuning(c, path);
}

function table(head: string[], body: string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), ...body.map(line)];
}

/** What auto measures, for gpu-info and the README. */
export const AUTO_EXPLAINED =
  "auto times a slice of each pipeline stage on the demo model (tiny CogView2, random " +
  "weights) after a warm-up pass that compiles every shader: CogLM tokens at batch 1 and 4, a 160x160 preview " +
  "decode, one DSR call, LoPAR's first round (in full and on 200 cells), one 480x480 decode; it scales them to the e2e bench's " +
  "jobs (first stage / whole pipeline, batch 1 and 4) and picks the lowest mean of their seconds per image. " +
  "The warm-up (shader compile, paid once per process and cached on disk by the driver) is shown, not weighed.";

/** The cache as tables for `gpu-info`: the measured slices, then the predicted jobs and the decision. */
export function tuningTable(c: TuningCache): string {
  const rows = Object.values(c.entries).sort((a, b) => e2eScore(a) - e2eScore(b));
  if (!rows.length) return "no measurements yet (`deno task gpu-info --retune` measures)";
  const ms = (x: number) => x.toFixed(x < 100 ? 2 : 0);
  const out = table(
    [
      "backend",
      "adapter · driver",
      "round trip ms",
      "dispatch µs",
      "coglm b1 ms/token",
      "coglm b4 ms/token",
      "preview ms",
      "dsr b1 ms",
      "lopar b1 ms",
      "lopar b1 200 cells ms",
      "decode ms",
      "warm-up s",
      "compile s",
      "late pipelines",
      "measured",
    ],
    rows.map((r) => [
      r.backend,
      `${r.adapter} · ${r.driver}`,
      r.roundTripMs.toFixed(3),
      r.dispatchUs.toFixed(1),
      ms(r.stages.coglmStepB1),
      ms(r.stages.coglmStepB4),
      ms(r.stages.preview),
      ms(r.stages.dsrB1),
      ms(r.stages.loparB1),
      ms(r.stages.loparB1Last),
      ms(r.stages.decode),
      r.warmupS.toFixed(1),
      r.compileS.toFixed(1),
      r.latePipelines ? `${r.latePipelines} (${(r.lateIn ?? []).join(", ")})` : "0",
      r.measuredAt.slice(0, 16).replace("T", " "),
    ]),
  );
  out.push("", "predicted e2e jobs (s per job):");
  out.push(
    ...table(
      ["backend", "first stage b1", "first stage b4", "whole b1", "whole b4", "mean s/image"],
      rows.map((r) => {
        const p = predictJobs(r.stages);
        return [
          r.backend,
          p.first_b1.toFixed(2),
          p.first_b4.toFixed(2),
          p.whole_b1.toFixed(2),
          p.whole_b4.toFixed(2),
          e2eScore(r).toFixed(2),
        ];
      }),
    ),
  );
  if (c.auto) {
    out.push(
      `auto → ${c.auto.choice} (decided ${c.auto.decidedAt.slice(0, 16).replace("T", " ")}; ${
        summary(c, c.auto)
      })`,
    );
  }
  return out.join("\n");
}
