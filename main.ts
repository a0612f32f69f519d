// Command line: `serve` (default) runs the HTTP server and web page; `generate` makes images once and exits.
// Not the pipeline or the server: those live in src/pipeline and src/server; this parses flags and wires them.

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { parseGpuChoice, setGpuChoice } from "./src/gpu/backends.ts";
import { ensureDemoModel } from "./src/demo/model.ts";
import { TerminalBar } from "./src/cli/terminal_bar.ts";
import { WorkerPipeline } from "./src/pipeline/worker.ts";
import type { GenerateRequest, Pipeline, PipelineEvent } from "./src/pipeline/types.ts";
import { createApp, startServer } from "./src/server/app.ts";
import { exitOnSignals } from "./src/server/signals.ts";
import { allowedHosts, isLoopback, MIN_TOKEN_CHARS } from "./src/server/access.ts";
import { parseGpuMemory, parseResidency, type ResidencySetting } from "./src/pipeline/residency.ts";

const USAGE = `CogView2 on WebGPU

Usage:
  deno task serve [flags]                       serve the API and the web page (the default command)
  deno run main.ts [serve] [flags]
  deno run main.ts generate "prompt" [flags]    make images once, write them to --out, exit

Model:
  --model DIR          converted model directory (or COGVIEW2_MODEL=DIR); without it, a tiny random-weight
                       demo model is created in the cache (its images are noise)
Serve flags:
  --port N             port (default 8080; 0 picks a free one)
  --host ADDR          address to listen on (default 127.0.0.1: this machine only); any other address needs
                       --token or --insecure-no-auth
  --token T            shared secret (or COGVIEW2_TOKEN=T; at least 16 characters, e.g. \`openssl rand -hex 16\`):
                       every route but /healthz needs "Authorization: Bearer T"; browsers open /?token=T once
  --insecure-no-auth   serve a non-loopback address without a token (anyone who reaches the port can use it)
  --allow-host NAMES   comma-separated host names the server also answers to (besides the bound address,
                       localhost and, for 0.0.0.0/::, this machine's addresses); other Host headers get 421
  --out DIR            keep result images as files under DIR instead of memory
  --max-queue N        jobs that may wait behind the running one (default 16)
  --grace S            seconds to exit on SIGINT/SIGTERM: a running job may finish until S-5 (at least S/2), then is
                       cancelled (default 10)
Generate flags:
  --style NAME         none, mainbody (default), photo, flat, comics, oil, sketch, isometric, chinese, watercolor
  -n N                 number of images (default 1)
  --seed N             seed (default random)
  --out DIR            output directory (default out/)
  --format png|jpeg    image format (default png)
  --only-first-stage   stop after CogLM (160×160 upscaled to 480×480)
  --inverse-prompt     order the images by post-selection score
Common:
  --batch N            CogLM inference batch (default 8)
  --residency MODE     which models stay on the GPU (or COGVIEW2_RESIDENCY): stage (only the running stage's:
                       CogLM, then DSR, then iterative SR, then the VQ-VAE, each loaded from disk when its stage
                       starts), all (every model resident), auto (default: all when the budget allows or no
                       budget is set, else stage); the choice and why are printed at start and in /v1/model
  --gpu-memory GiB     GPU memory budget (or COGVIEW2_GPU_MEMORY; WebGPU cannot query it): a job whose estimated
                       peak exceeds it is refused with 503 before it runs, and auto chooses by it
  --gpu dawn|wgpu|auto WebGPU backend (or COGVIEW2_GPU; default auto: the measured-faster one that starts; the
                       measurement is cached per backend, adapter and driver: \`deno task gpu-info\` shows it)
  --retune             auto measures the backends again (or COGVIEW2_RETUNE=1)
  -h, --help           this text
`;

function log(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

function intFlag(v: string | undefined, name: string, dflt: number, min = 0, max = 2 ** 32 - 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`Flag --${name} must be an integer between ${min} and ${max} (got '${v}')`);
  }
  return n;
}

/** Memory settings of the pipeline: residency and the GPU memory budget (flags, else environment). */
export interface MemoryOptions {
  residency?: ResidencySetting;
  gpuMemoryBytes?: number | null;
  gpuMemorySource?: string;
}

/** How main() gets its pipeline: the real one by default; tests pass a scriptable one. */
export type OpenPipeline = (
  options: { model?: string; maxInferenceBatch: number } & MemoryOptions,
) => Promise<Pipeline>;

/** --residency / COGVIEW2_RESIDENCY and --gpu-memory / COGVIEW2_GPU_MEMORY, checked before the model loads. */
function memoryOptions(flags: Flags): MemoryOptions {
  const r = flags.residency as string | undefined;
  const envR = Deno.env.get("COGVIEW2_RESIDENCY") || undefined;
  const residency = r !== undefined
    ? parseResidency(r, "Flag --residency")
    : envR !== undefined
    ? parseResidency(envR, "COGVIEW2_RESIDENCY")
    : "auto";
  const g = flags["gpu-memory"] as string | undefined;
  const envG = Deno.env.get("COGVIEW2_GPU_MEMORY") || undefined;
  if (g !== undefined) {
    return {
      residency,
      gpuMemoryBytes: parseGpuMemory(g, "Flag --gpu-memory"),
      gpuMemorySource: "--gpu-memory",
    };
  }
  if (envG !== undefined) {
    return {
      residency,
      gpuMemoryBytes: parseGpuMemory(envG, "COGVIEW2_GPU_MEMORY"),
      gpuMemorySource: "COGVIEW2_GPU_MEMORY",
    };
  }
  return { residency, gpuMemoryBytes: null };
}

/**
 * Opens the model given by --model / COGVIEW2_MODEL, else the demo model (created on first use), on the GPU — in a
 * worker thread (src/pipeline/worker.ts), so the server's event loop never waits on the GPU.
 */
export const openRealPipeline: OpenPipeline = async (
  { model: modelFlag, maxInferenceBatch: batch, ...mem },
) => {
  const model = modelFlag ?? Deno.env.get("COGVIEW2_MODEL");
  if (model) {
    log(`model: ${resolve(model)}`);
    return await WorkerPipeline.open({ modelDir: resolve(model), maxInferenceBatch: batch, log, ...mem });
  }
  const dir = await ensureDemoModel({ log });
  log("=".repeat(100));
  log(
    "No model configured (--model DIR or COGVIEW2_MODEL): using the DEMO model, random weights at a tiny size.",
  );
  log("Its images are NOISE. For real images convert the official CogView2 weights with `deno task convert`");
  log("and start with --model DIR (see the README).");
  log("=".repeat(100));
  return await WorkerPipeline.open({ modelDir: dir, demo: true, maxInferenceBatch: batch, log, ...mem });
};

type Flags = Record<string, string | boolean | undefined>;

async function serve(flags: Flags, openPipeline: OpenPipeline): Promise<void> {
  const port = intFlag(flags.port as string | undefined, "port", 8080, 0, 65535);
  const host = (flags.host as string | undefined) ?? "127.0.0.1";
  const batch = intFlag(flags.batch as string | undefined, "batch", 8, 1, 64);
  const maxQueue = intFlag(flags["max-queue"] as string | undefined, "max-queue", 16, 0, 10_000);
  const graceMs = intFlag(flags.grace as string | undefined, "grace", 10, 0, 3600) * 1000;
  const outDir = flags.out ? resolve(flags.out as string) : undefined;
  const token = (flags.token as string | undefined) ?? (Deno.env.get("COGVIEW2_TOKEN") || undefined);
  if (token !== undefined && token.length < MIN_TOKEN_CHARS) {
    throw new Error(
      `The token (--token or COGVIEW2_TOKEN) must have at least ${MIN_TOKEN_CHARS} characters ` +
        "(e.g. `openssl rand -hex 16`)",
    );
  }
  if (!isLoopback(host) && token === undefined && !flags["insecure-no-auth"]) {
    throw new Error(
      `--host ${host} exposes the server beyond this machine: give it a token (--token T or COGVIEW2_TOKEN=T, ` +
        "e.g. `openssl rand -hex 16`), or pass --insecure-no-auth to serve without one",
    );
  }
  const extraHosts = ((flags["allow-host"] as string | undefined) ?? "").split(",").filter((h) => h.trim());
  const mem = memoryOptions(flags);
  // Flags are checked before the (slow) model load.
  const pipeline = await openPipeline({
    model: flags.model as string | undefined,
    maxInferenceBatch: batch,
    ...mem,
  });
  const app = createApp({ pipeline, maxQueue, outDir, log, token, hosts: allowedHosts(host, extraHosts) });
  const server = await startServer(app, { port, host });
  exitOnSignals(server, { graceMs, log });
  const info = pipeline.info();
  log(`model: ${info.name}${info.demo ? " — DEMO, images are noise" : ""}`);
  if (outDir) log(`images are written under ${outDir}`);
  if (token === undefined && !isLoopback(host)) {
    log("WARNING: --insecure-no-auth: anyone who reaches the port can use it");
  }
  log(
    `listening on ${server.url}  (open it in a browser${
      token === undefined ? "" : " at /?token=TOKEN"
    }; API: POST ${server.url}/v1/images)`,
  );
  await server.finished;
}

async function generate(prompt: string | undefined, flags: Flags, openPipeline: OpenPipeline) {
  if (!prompt || !prompt.trim()) {
    throw new Error('generate needs a prompt: deno run main.ts generate "a prompt"');
  }
  const batch = intFlag(flags.batch as string | undefined, "batch", 8, 1, 64);
  // Flags that need no model are checked before the (slow) model load.
  const format = (flags.format as string | undefined) ?? "png";
  if (format !== "png" && format !== "jpeg") {
    throw new Error(`Flag --format must be png or jpeg (got '${format}')`);
  }
  const seedFlag = intFlag(flags.seed as string | undefined, "seed", -1);
  const mem = memoryOptions(flags);
  const pipeline = await openPipeline({
    model: flags.model as string | undefined,
    maxInferenceBatch: batch,
    ...mem,
  });
  const info = pipeline.info();
  const request: GenerateRequest = {
    prompt: prompt.trim(),
    style: (flags.style as string | undefined) ?? info.defaultStyle,
    n: intFlag(flags.n as string | undefined, "n", 1, 1, info.maxImages),
    seed: seedFlag >= 0 ? seedFlag : Math.floor(Math.random() * 2 ** 32),
    onlyFirstStage: Boolean(flags["only-first-stage"]),
    inversePrompt: Boolean(flags["inverse-prompt"]),
    format,
  };
  if (!info.styles.includes(request.style)) {
    throw new Error(`Flag --style must be one of ${info.styles.join(", ")} (got '${request.style}')`);
  }
  await pipeline.validate(request);
  const outDir = resolve((flags.out as string | undefined) ?? "out");
  await Deno.mkdir(outDir, { recursive: true });
  const bar = new TerminalBar();
  const abort = new AbortController();
  const onInt = () => abort.abort();
  Deno.addSignalListener("SIGINT", onInt);
  log(`generating ${request.n} image(s), style ${request.style}, seed ${request.seed}`);
  const t0 = performance.now();
  const images = await pipeline.generate(request, (e: PipelineEvent) => {
    if (e.type === "stage") bar.update(e.progress, `${e.stage}`, e.stage);
    else if (e.type === "step") bar.update(e.progress, `${e.stage} ${e.step}/${e.steps}`, e.stage);
    else if (e.type === "stage_done") bar.line(`${e.stage} done in ${e.seconds.toFixed(2)} s`);
  }, abort.signal);
  Deno.removeSignalListener("SIGINT", onInt);
  const ext = format === "jpeg" ? "jpg" : "png";
  const stem = `cogview2-${request.seed}`;
  for (const [k, img] of images.entries()) {
    const file = `${outDir}/${stem}-${k}.${ext}`;
    await Deno.writeFile(file, img.data);
    console.log(file + (img.score !== undefined ? `  score ${img.score.toFixed(4)}` : ""));
  }
  log(
    `${images.length} image(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s${
      info.demo ? " (demo: noise)" : ""
    }`,
  );
}

/** Runs the command line `args`; resolves with the exit status (serve resolves when the server stops). */
export async function main(args: string[], openPipeline: OpenPipeline = openRealPipeline): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      token: { type: "string" },
      "insecure-no-auth": { type: "boolean" },
      "allow-host": { type: "string" },
      model: { type: "string" },
      gpu: { type: "string" },
      retune: { type: "boolean" },
      out: { type: "string" },
      "max-queue": { type: "string" },
      grace: { type: "string" },
      batch: { type: "string" },
      residency: { type: "string" },
      "gpu-memory": { type: "string" },
      style: { type: "string" },
      n: { type: "string", short: "n" },
      seed: { type: "string" },
      format: { type: "string" },
      "only-first-stage": { type: "boolean" },
      "inverse-prompt": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.gpu !== undefined) setGpuChoice(parseGpuChoice(values.gpu, "--gpu"));
  if (values.retune) Deno.env.set("COGVIEW2_RETUNE", "1"); // auto measures the backends again (src/gpu/tuning.ts)
  const [cmd = "serve", ...rest] = positionals;
  if (cmd === "serve") {
    if (rest.length) throw new Error(`serve takes no arguments (got ${rest.join(" ")})`);
    await serve(values, openPipeline);
    return 0;
  }
  if (cmd === "generate") {
    await generate(rest.join(" "), values, openPipeline);
    return 0;
  }
  throw new Error(`Unknown command '${cmd}': use serve or generate (see --help)`);
}

/** Runs main() as the process: exit status 0, 1 on an error (message on stderr), 130 when cancelled. */
export async function runProcess(args: string[], openPipeline?: OpenPipeline): Promise<never> {
  try {
    Deno.exit(await main(args, openPipeline));
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") {
      log("cancelled");
      Deno.exit(130);
    }
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    if (Deno.env.get("COGVIEW2_DEBUG") && e instanceof Error) console.error(e.stack);
    Deno.exit(1);
  }
}

if (import.meta.main) await runProcess(Deno.args);
