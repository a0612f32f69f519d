// `auto` by measurement: which backend this machine runs faster, measured once and cached in a small JSON file.
// Each backend is measured in its own child process (`tools/probe_gpu.ts --measure --gpu B`: two lavapipe builds in
// one process would share symbols), which prints one JSON line: the queue round trip, the cost of a dispatch, a few
// matmul shapes the models use and `workloadMs`, a short decode-like loop (the tiny models' layer matmuls at batch
// 4, a sync every 20 steps) plus SR-shaped matmuls; auto picks the lowest workloadMs. The file keeps one entry per
// (backend, adapter, driver) and the decision with the fingerprint of what it was made on (Deno, the Dawn addon,
// the system and private Mesa versions): a change there, or an adapter/driver that no longer matches its entry,
// measures again; `--retune` (or COGVIEW2_RETUNE=1) always does. Not a kernel tuner: src/kernels/choices.ts holds
// the per-backend kernel table.

import { dirname, join } from "node:path";
import { homedir } from "node:os";
import { fileURLToPath } from "node:url";
import { type BackendName, BACKENDS, DAWN_NPM_VERSION, dawnDriverFiles } from "./backends.ts";

/** What one backend measured (tools/probe_gpu.ts --measure prints it as one JSON line). */
export interface BackendMeasurement {
  backend: BackendName;
  adapter: string;
  driver: string;
  /** Median submit -> onSubmittedWorkDone of one tiny dispatch. */
  roundTripMs: number;
  /** Per dispatch, 200 tiny dispatches in one submit. */
  dispatchUs: number;
  /** Median ms per call of the model matmul shapes ("MxNxK dtype" -> ms). */
  shapes: Record<string, number>;
  /** The decode-like loop + SR matmuls: what auto compares (ms, lower is faster). */
  workloadMs: number;
  measuredAt: string;
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
  version: 1;
  entries: Record<string, BackendMeasurement>;
  auto?: AutoDecision;
}

const FORMAT = "cogview2-gpu-tuning";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The cache file: COGVIEW2_TUNING_FILE, else gpu-tuning.json in $COGVIEW2_CACHE, $XDG_CACHE_HOME/cogview2-webgpu or
 * ~/.cache/cogview2-webgpu (the directory the demo model uses).
 */
export function tuningFile(): string {
  const explicit = env("COGVIEW2_TUNING_FILE");
  if (explicit) return explicit;
  const cache = env("COGVIEW2_CACHE");
  if (cache) return join(cache, "gpu-tuning.json");
  const xdg = env("XDG_CACHE_HOME");
  return join(xdg && xdg.trim() ? xdg : join(homedir(), ".cache"), "cogview2-webgpu", "gpu-tuning.json");
}

/** The key of a measurement: backend, adapter and driver. */
export function entryKey(m: { backend: string; adapter: string; driver: string }): string {
  return `${m.backend} · ${m.adapter} · ${m.driver}`;
}

function empty(): TuningCache {
  return { format: FORMAT, version: 1, entries: {} };
}

/** Reads the cache; a missing, unreadable or foreign file is an empty cache (it is only a cache). */
export function readTuning(path = tuningFile()): TuningCache {
  try {
    const j = JSON.parse(Deno.readTextFileSync(path));
    if (j && j.format === FORMAT && j.version === 1 && typeof j.entries === "object") return j as TuningCache;
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

/** The faster backend: the lowest workloadMs among the measurements (null when none). */
export function fastest(ms: readonly BackendMeasurement[]): BackendMeasurement | null {
  let best: BackendMeasurement | null = null;
  for (const m of ms) if (!best || m.workloadMs < best.workloadMs) best = m;
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
export async function measureInChild(name: BackendName, timeoutMs = 300_000): Promise<BackendMeasurement> {
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
    if (m.backend !== name || !(m.workloadMs > 0)) {
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
  const parts = d.keys.map((k) => c.entries[k]).filter(Boolean).sort((a, b) => a.workloadMs - b.workloadMs)
    .map((m) => `${m.backend} ${m.workloadMs.toFixed(0)} ms`);
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
  const retune = o.retune ?? env("COGVIEW2_RETUNE") === "1";
  const cache = readTuning(path);
  const d = cache.auto;
  if (!retune && d && d.env === fp) {
    const entry = d.keys.map((k) => cache.entries[k]).find((m) => m?.backend === d.choice) ?? null;
    return { choice: d.choice, entry, note: `cached: ${summary(cache, d)}` };
  }
  const measure = o.measure ?? ((n: BackendName) => measureInChild(n));
  (o.log ?? console.error)(
    `gpu: auto measures each backend once on this machine (${
      retune ? "--retune" : "no valid entry"
    } in ${path})`,
  );
  const got: BackendMeasurement[] = [];
  const failed: Record<string, string> = {};
  for (const name of BACKENDS) {
    try {
      got.push(await measure(name));
    } catch (e) {
      failed[name] = (e as Error).message.split("\n")[0];
    }
  }
  const best = fastest(got);
  if (!best) {
    return { choice: BACKENDS[0], entry: null, note: `not measured: ${Object.values(failed).join("; ")}` };
  }
  try {
    if (env("COGVIEW2_RETUNE")) Deno.env.delete("COGVIEW2_RETUNE"); // --retune: once per process
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

/** The cache as a table for `gpu-info`. */
export function tuningTable(c: TuningCache): string {
  const rows = Object.values(c.entries).sort((a, b) => a.workloadMs - b.workloadMs);
  if (!rows.length) return "no measurements yet (`deno task gpu-info --retune` measures)";
  const shapeNames = [...new Set(rows.flatMap((r) => Object.keys(r.shapes)))];
  const head = [
    "backend",
    "adapter · driver",
    "round trip ms",
    "dispatch µs",
    ...shapeNames.map((s) => `${s} ms`),
  ];
  head.push("workload ms", "measured");
  const body = rows.map((r) => [
    r.backend,
    `${r.adapter} · ${r.driver}`,
    r.roundTripMs.toFixed(3),
    r.dispatchUs.toFixed(1),
    ...shapeNames.map((s) => r.shapes[s] === undefined ? "-" : r.shapes[s].toFixed(2)),
    r.workloadMs.toFixed(1),
    r.measuredAt.slice(0, 16).replace("T", " "),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd();
  const out = [line(head), ...body.map(line)];
  if (c.auto) {
    out.push(
      `auto → ${c.auto.choice} (decided ${c.auto.decidedAt.slice(0, 16).replace("T", " ")}; ${
        summary(c, c.auto)
      })`,
    );
  }
  return out.join("\n");
}
