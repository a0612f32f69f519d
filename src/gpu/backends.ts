// WebGPU backends: where a GPUAdapter comes from. Two implementations of the same API:
//   wgpu: Deno's built-in WebGPU (navigator.gpu, needs --unstable-webgpu);
//   dawn: Google's Dawn through the npm package `webgpu` (a Node-API addon, dawn.node, loaded with createRequire).
// Each backend either gives an adapter or throws an Error whose message is one line saying why (missing addon, no
// adapter, driver too old and what to install). Nothing outside src/gpu imports this file's objects' WebGPU handles.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readEnv, TENSOR_CORE_TOGGLES, tensorCoresRequested } from "./env.ts";

export type BackendName = "wgpu" | "dawn";
export type GpuChoice = BackendName | "auto";
export const BACKENDS: readonly BackendName[] = ["wgpu", "dawn"];

/** The npm `webgpu` version the project pins (tools/run.sh installs it into .tools/). */
export const DAWN_NPM_VERSION = "0.6.2";

export interface Backend {
  readonly name: BackendName;
  /** An adapter, or an Error with a one-line reason. */
  requestAdapter(options: GPURequestAdapterOptions): Promise<GPUAdapter>;
  /** The driver behind an adapter this backend gave (e.g. "Mesa 25.0.7"), or "driver unknown". */
  driver(adapter: GPUAdapter): Promise<string>;
  /** The adapter's name as printed and keyed (tuning cache, peak tables), e.g. "NVIDIA H200" or "nvidia-h200". */
  adapterName(adapter: GPUAdapter): string;
}

/** wgpu's form: the description (Vulkan's device name), else vendor/architecture/device. */
function describedName(a: GPUAdapter): string {
  const i = a.info;
  return i?.description || [i?.vendor, i?.architecture, i?.device].filter(Boolean).join(" ") ||
    "unknown adapter";
}

/**
 * Dawn's description is the Vulkan driver's "<driver name>: <driver info> <version>" ("NVIDIA: 580.159.04
 * 580.159.4.0", "llvmpipe: Mesa 25.0.7 ... 0.0.1") and its `device` a slug of the device name ("nvidia-h200"). On
 * lavapipe the description names the device; elsewhere the driver name alone (a vendor) does not, so the name is the
 * device slug with the description beside it.
 */
export function dawnAdapterName(info: { description?: string; device?: string; vendor?: string }): string {
  const d = info.description ?? "";
  const driverName = d.split(":")[0].trim();
  const slug = (info.device ?? "").replace(/-+$/, "");
  if (!slug || /^\d+$/.test(slug) || /llvmpipe|lavapipe|swiftshader/i.test(driverName) || !d.includes(":")) {
    return d || slug || "unknown adapter";
  }
  return `${slug} (${d})`;
}

/** "NVIDIA: 580.159.04 580.159.4.0" -> "NVIDIA 580.159.04": Dawn's driver name and first version token. */
export function dawnDriverFromDescription(description: string): string | null {
  const m = /^([^:]+):\s*(\S+)/.exec(description);
  return m && /\d/.test(m[2]) ? `${m[1].trim()} ${m[2]}` : null;
}

/** The NVIDIA kernel module's version (Linux), for adapters whose WebGPU info carries no driver version. */
function nvidiaModuleVersion(): string | null {
  for (const f of ["/sys/module/nvidia/version", "/proc/driver/nvidia/version"]) {
    try {
      const t = Deno.readTextFileSync(f);
      const m = /(\d+\.\d+(\.\d+)?)/.exec(t.includes("Kernel Module") ? t.split("Kernel Module")[1] : t);
      if (m) return `NVIDIA ${m[1]}`;
    } catch {
      // not there, or not readable without --allow-read
    }
  }
  return null;
}

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Installed Mesa version from the package database, for adapters whose description does not carry it. */
let systemMesa: Promise<string | null> | null = null;
function installedMesa(): Promise<string | null> {
  systemMesa ??= (async () => {
    try {
      const out = await new Deno.Command("dpkg-query", {
        args: ["-W", "-f", "${Version}", "mesa-vulkan-drivers"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const v = new TextDecoder().decode(out.stdout).trim();
      return out.success && v ? v : null;
    } catch {
      return null;
    }
  })();
  return systemMesa;
}

const MESA_IN_DESCRIPTION = /Mesa (\d+\.\d+(\.\d+)?)/;

function isMesa(a: GPUAdapter): boolean {
  const i = a.info;
  return i.vendor === "mesa" || i.vendor === "65541" || /llvmpipe|lavapipe|Mesa/i.test(i.description ?? "");
}

export const wgpuBackend: Backend = {
  name: "wgpu",
  async requestAdapter(options) {
    if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
      throw new Error("Deno's WebGPU is not enabled: run Deno with --unstable-webgpu");
    }
    const a = await navigator.gpu.requestAdapter(options);
    if (!a) {
      throw new Error(
        "No WebGPU adapter found. Install a Vulkan driver: on Debian/Ubuntu `apt-get install -y " +
          "mesa-vulkan-drivers` gives Mesa's lavapipe, which runs WebGPU on the CPU (`bash tools/run.sh` does it as root)",
      );
    }
    return a;
  },
  async driver(a) {
    const m = MESA_IN_DESCRIPTION.exec(a.info.description ?? "");
    if (m) return `Mesa ${m[1]}`;
    if (isMesa(a)) {
      const v = await installedMesa();
      if (v) return `Mesa ${v.replace(/^\d+:/, "").replace(/[-+~].*$/, "")}`;
    }
    const vendor = a.info.vendor ?? "";
    if (vendor === "4318" || /nvidia/i.test(vendor) || /nvidia/i.test(a.info.description ?? "")) {
      return nvidiaModuleVersion() ?? "driver unknown";
    }
    return "driver unknown";
  },
  adapterName: describedName,
};

/** Where dawn.node is: COGVIEW2_DAWN_NODE, else .tools/node_modules/webgpu (tools/run.sh installs it). */
export function dawnAddonPath(): string {
  const arch = Deno.build.os === "darwin" ? "universal" : Deno.build.arch === "x86_64" ? "x64" : "arm64";
  const os = Deno.build.os === "windows" ? "win32" : Deno.build.os;
  return readEnv("COGVIEW2_DAWN_NODE") ??
    join(REPO, ".tools", "node_modules", "webgpu", "dist", `${os}-${arch}`, "dawn.node");
}

/**
 * The private Mesa that tools/run.sh unpacks when the system's is too old for Dawn (.tools/mesa/icd.json, an ICD
 * file naming its lavapipe by absolute path), or COGVIEW2_DAWN_VK_DRIVER_FILES. Used for Dawn only: the system
 * driver stays as it is for wgpu (its best CPU matmul schedule is faster on Mesa 22.3, README).
 */
export function dawnDriverFiles(): string | null {
  const e = readEnv("COGVIEW2_DAWN_VK_DRIVER_FILES");
  if (e) return e;
  const p = join(REPO, ".tools", "mesa", "icd.json");
  try {
    Deno.statSync(p);
    return p;
  } catch {
    return null;
  }
}

/**
 * Dawn instance toggles (Dawn's `create([...])` strings); COGVIEW2_DAWN_TOGGLES adds more, comma-separated, and
 * COGVIEW2_TENSOR_CORES=1 those of TENSOR_CORE_TOGGLES. Always off:
 * `timestamp_quantization`, a browser fingerprinting guard that rounds timestamps (per-kernel times on the H200 came
 * out as multiples of 0.131 ms, many 0.00): the profiles in `bench` need the real values.
 */
export function dawnFlags(
  toggles = readEnv("COGVIEW2_DAWN_TOGGLES"),
  tensorCores = tensorCoresRequested(),
): string[] {
  const extra = [
    ...(toggles ?? "").split(",").filter((t) => t),
    ...(tensorCores ? TENSOR_CORE_TOGGLES : []),
  ].filter((t, i, all) => all.indexOf(t) === i).join(",");
  return [
    ...(extra ? [`enable-dawn-features=${extra}`] : []),
    "disable-dawn-features=timestamp_quantization",
  ];
}

interface DawnModule {
  create(flags: string[]): GPU;
}

/**
 * How dawn.node waits: while any promise of its (onSubmittedWorkDone, mapAsync, ...) is pending, it calls the global
 * `setImmediate` to run `wgpuInstanceProcessEvents` and reschedule itself, so the JS thread spins at 100% for the
 * whole wait. On a CPU adapter (lavapipe) that core is taken from the driver, which compiles and runs the shaders on
 * its own threads. Measured on this 2-core machine (load ~11): the first dispatch of one matmul pipeline
 * (matmul_direct_vec4, Mesa shader cache off) took 30.0 s wall / 10.9 s CPU spinning, 12.2 s / 4.2 s paced (wgpu on
 * the same Mesa 25: 7.5 s / 2.8 s); `bench --only matmul --quick` windows 1024³ f32 1.41 -> 7.33 GFLOP/s, decode
 * GEMV 45.1 -> 31.6 ms, queue round trip 0.30 -> 0.18 ms, whole run 148 -> 87 s. So Dawn's native callbacks go
 * through this wrapper: the first `DAWN_SPIN_MS` of each wait still spin (round trips stay ~0.1 ms), then every
 * tick first sleeps a tenth of the time waited so far (at most `DAWN_MAX_SLEEP_MS`). Only dawn.node's own callbacks
 * (native functions) are paced; every other setImmediate call goes through unchanged. COGVIEW2_DAWN_SPIN=1 turns
 * the pacing off (for comparison).
 */
export const DAWN_SPIN_MS = 0.5;
export const DAWN_MAX_SLEEP_MS = 2;

/** The pause before the next poll after `waited` ms of one wait (exported for the tests). */
export function dawnPollSleepMs(waited: number): number {
  return waited < DAWN_SPIN_MS ? 0 : Math.min(DAWN_MAX_SLEEP_MS, Math.max(0.05, waited / 10));
}

export type Immediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

/** True for functions implemented natively (dawn.node's callbacks; also bound functions), not JS source. */
function isNative(fn: unknown): boolean {
  return typeof fn === "function" &&
    /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(fn));
}

/**
 * `setImmediate` with Dawn's polling paced: a native callback scheduled from inside the previous native tick
 * continues the current wait, and its tick first sleeps `dawnPollSleepMs(time waited)`; one scheduled from
 * anywhere else begins a new wait. Other callbacks pass through unchanged. `sleep` blocks the thread; `now` is the clock in ms.
 */
export function pacedImmediate(
  original: Immediate,
  sleep: (ms: number) => void,
  now: () => number,
): Immediate {
  let waitStart = 0, inTick = false;
  return (fn, ...args) => {
    if (!isNative(fn)) return original(fn, ...args);
    const t = now();
    if (!inTick) waitStart = t; // scheduled from outside a tick: a new wait begins
    const pause = dawnPollSleepMs(t - waitStart);
    return original(() => {
      if (pause > 0) sleep(pause);
      inTick = true;
      try {
        fn(...args);
      } finally {
        inTick = false;
      }
    });
  };
}

let pacing = false;

function paceDawnPolling(): void {
  const g = globalThis as unknown as { setImmediate?: Immediate };
  if (pacing || !g.setImmediate || readEnv("COGVIEW2_DAWN_SPIN") === "1") return;
  pacing = true;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  g.setImmediate = pacedImmediate(
    g.setImmediate.bind(globalThis),
    (ms) => Atomics.wait(sleeper, 0, 0, ms),
    () => performance.now(),
  );
}

let dawnGpu: GPU | null = null; // one instance per isolate (each test worker has its own), kept alive
let dawnModule: DawnModule | null = null;

/** Attempts of one Dawn adapter request when the Vulkan drivers are ours (.tools/mesa), and the pauses between them. */
export const DAWN_ADAPTER_ATTEMPTS = 3;
export const DAWN_ADAPTER_PAUSE_MS = 100;

/**
 * Requests an adapter up to `attempts` times; before each retry it pauses (`pauseMs` × attempt) and calls `fresh`, which
 * makes a new instance (Dawn keeps the Vulkan instance of its first enumeration, so asking the same one again finds
 * the same drivers). Why: VK_DRIVER_FILES is process-wide, and Deno runs test files (`deno test --parallel`) and
 * Workers as isolates of one process. One isolate restoring the variable after its request while another's Dawn
 * enumerates makes the Vulkan loader load the system's Mesa 22.3, which Dawn rejects: 'no adapter'. Reproduced here
 * with 8 Workers each requesting a Dawn adapter after a random 0-400 ms pause: 3 of 32 requests failed in 4 runs
 * without retries (and one conformance file in session 6's cold CI); none with them.
 */
export async function requestWithRetry<A>(
  request: () => Promise<A | null>,
  fresh: () => void,
  attempts: number,
  pause: (ms: number) => Promise<void>,
  pauseMs = DAWN_ADAPTER_PAUSE_MS,
): Promise<A | null> {
  for (let i = 0;; i++) {
    const a = await request();
    if (a || i + 1 >= attempts) return a;
    await pause(pauseMs * (i + 1));
    fresh();
  }
}

export const dawnBackend: Backend = {
  name: "dawn",
  async requestAdapter(options) {
    if (!dawnModule) {
      const path = dawnAddonPath();
      try {
        Deno.statSync(path);
      } catch {
        throw new Error(
          `the Dawn addon is missing (${path}): \`bash tools/run.sh\` installs npm webgpu@${DAWN_NPM_VERSION} ` +
            `into .tools/, or \`npm install --prefix .tools webgpu@${DAWN_NPM_VERSION}\``,
        );
      }
      try {
        dawnModule = createRequire(import.meta.url)(path) as DawnModule;
      } catch (e) {
        throw new Error(`the Dawn addon ${path} does not load: ${(e as Error).message.split("\n")[0]}`);
      }
      paceDawnPolling();
    }
    const mod = dawnModule;
    dawnGpu ??= mod.create(dawnFlags());
    // The Vulkan loader reads VK_DRIVER_FILES when Dawn enumerates adapters; set it for that moment only.
    const files = dawnDriverFiles();
    const once = async () => {
      const before = readEnv("VK_DRIVER_FILES");
      if (files) Deno.env.set("VK_DRIVER_FILES", files);
      try {
        return await dawnGpu!.requestAdapter(options);
      } finally {
        if (files) {
          before === undefined ? Deno.env.delete("VK_DRIVER_FILES") : Deno.env.set("VK_DRIVER_FILES", before);
        }
      }
    };
    // Retries only where our drivers should be there (without them, no adapter is the answer every time).
    const a = await requestWithRetry(
      once,
      () => dawnGpu = mod.create(dawnFlags()),
      files ? DAWN_ADAPTER_ATTEMPTS : 1,
      (ms) => new Promise((r) => setTimeout(r, ms)),
    );
    if (!a) {
      const mesa = await installedMesa();
      const old = mesa && Number(mesa.replace(/^\d+:/, "").split(".")[0]) < 24;
      throw new Error(
        old && !files
          ? `no adapter: Dawn needs Mesa >= 24 for lavapipe, this machine has Mesa ${mesa}; \`bash tools/run.sh\` ` +
            "(as root) unpacks Mesa 25 from bookworm-backports into .tools/mesa for Dawn"
          : `no adapter${files ? ` (Vulkan drivers ${files})` : ""}: install a Vulkan driver Dawn accepts ` +
            "(Mesa >= 24 for lavapipe)",
      );
    }
    return a;
  },
  driver(a) {
    const m = MESA_IN_DESCRIPTION.exec(a.info.description ?? "");
    if (m) return Promise.resolve(`Mesa ${m[1]}`);
    const d = dawnDriverFromDescription(a.info.description ?? "");
    return d ? Promise.resolve(d) : wgpuBackend.driver(a);
  },
  adapterName: (a) => dawnAdapterName(a.info ?? {}),
};

export function backend(name: BackendName): Backend {
  return name === "dawn" ? dawnBackend : wgpuBackend;
}

/** Parses a --gpu / COGVIEW2_GPU value. */
export function parseGpuChoice(v: string, where: string): GpuChoice {
  if (v === "dawn" || v === "wgpu" || v === "auto") return v;
  throw new Error(`${where} must be dawn, wgpu or auto (got '${v}')`);
}

let chosen: GpuChoice | null = null;

/**
 * Sets the backend for this process (a command's --gpu flag); otherwise COGVIEW2_GPU, else auto. Also sets
 * COGVIEW2_GPU so that workers (the server's pipeline worker) open the same backend.
 */
export function setGpuChoice(c: GpuChoice): void {
  chosen = c;
  try {
    Deno.env.set("COGVIEW2_GPU", c);
  } catch {
    // no --allow-env: this thread only
  }
}

export function gpuChoice(): GpuChoice {
  if (chosen) return chosen;
  const e = readEnv("COGVIEW2_GPU");
  return e ? parseGpuChoice(e, "COGVIEW2_GPU") : "auto";
}

/**
 * Removes `--gpu X` / `--gpu=X` from a command's arguments and makes X this process's backend choice (else
 * COGVIEW2_GPU, else auto), and `--retune` (auto measures the backends again: COGVIEW2_RETUNE=1, read once by
 * src/gpu/tuning.ts). Every GPU command calls it before parsing its own flags.
 */
export function takeGpuFlag(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--retune") {
      Deno.env.set("COGVIEW2_RETUNE", "1");
    } else if (a === "--gpu" || a.startsWith("--gpu=")) {
      const v = a === "--gpu" ? args[++i] : a.slice(6);
      if (v === undefined) throw new Error("--gpu needs a value: dawn, wgpu or auto");
      setGpuChoice(parseGpuChoice(v, "--gpu"));
    } else out.push(a);
  }
  return out;
}
