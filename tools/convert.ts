// `deno task convert --sat DIR --icetk DIR --clusters FILE --out DIR [--weights source|f16|f32|int8] [--num-clusters N]`
// converts the official CogView2 downloads into a model directory; `deno task convert --verify DIR` checks one.
// Exit code 0 on success, 1 on bad input (one line naming the file and key), 2 on bad usage.
import {
  convert,
  defaultPaths,
  verifyModelDir,
  WEIGHTS_CHOICES,
  type WeightsChoice,
} from "../src/convert/convert.ts";

const USAGE = `Usage:
  deno task convert --clusters FILE --out DIR [--sat DIR] [--icetk DIR] [--weights source|f16|f32|int8]
                    [--group 64|128] [--allow-f16-overflow] [--num-clusters N] [--overwrite]
  deno task convert --verify DIR

  --sat DIR         folder with coglm, cogview2-dsr, cogview2-itersr (folders or .zip archives); default $SAT_HOME or ~/.sat_models
  --icetk DIR       folder with ice_text.model and ice_image.pt; default ~/.icetk_models
  --clusters FILE   cluster_label.npy from the CogView2 repository (required)
  --out DIR         output model directory (written atomically)
  --weights source|f16|f32|int8
                    storage of floating-point weights: "source" (default) keeps each tensor's checkpoint dtype
                    (bfloat16 widened to f32, exact); f16 / f32 store every tensor so; narrowing to f16 prints, per
                    model, how many values changed and the largest absolute change; int8 stores the linear layers
                    of CogLM, DSR and iterative SR as int8 with one f32 scale per group of K (printed: relative RMS
                    and largest error per model), everything else (embeddings, norms, VQ-VAE) as f16
  --group N         int8 scale group along K: 64 (default) or 128 (16/32/256 accepted)
  --dtype ...       alias of --weights
  --allow-f16-overflow
                    with --weights f16: store values beyond float16's range (±65504) as ±inf instead of refusing
  --num-clusters N  number of clusters the labels index (default 500)
  --overwrite       replace an existing converted model directory (only one with a manifest.json; the old one
                    is renamed aside, the new one renamed in, then the old deleted)
  --verify DIR      re-read a converted directory and check it against its manifest`;

function usage(msg?: string): never {
  if (msg) console.error(`convert: ${msg}`);
  console.error(USAGE);
  Deno.exit(2);
}

const flags: Record<string, string | true> = {};
const args = [...Deno.args];
while (args.length) {
  const a = args.shift()!;
  if (a === "--help" || a === "-h") {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (!a.startsWith("--")) usage(`unexpected argument "${a}"`);
  const eq = a.indexOf("=");
  const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
  if (name === "overwrite" || name === "allow-f16-overflow") {
    flags[name] = true;
    continue;
  }
  const v = eq > 0 ? a.slice(eq + 1) : args.shift();
  if (v === undefined) usage(`${a} needs a value`);
  flags[name] = v;
}
const known = new Set([
  "sat",
  "icetk",
  "clusters",
  "out",
  "weights",
  "dtype",
  "group",
  "allow-f16-overflow",
  "num-clusters",
  "overwrite",
  "verify",
]);
for (const k of Object.keys(flags)) if (!known.has(k)) usage(`unknown option --${k}`);

try {
  if (typeof flags.verify === "string") {
    const r = await verifyModelDir(flags.verify);
    console.log(
      `${flags.verify}: OK (${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB match the manifest)`,
    );
    Deno.exit(0);
  }
  if (typeof flags.clusters !== "string") usage("--clusters FILE is required");
  if (typeof flags.out !== "string") usage("--out DIR is required");
  if (flags.weights !== undefined && flags.dtype !== undefined && flags.weights !== flags.dtype) {
    usage(
      `--weights ${flags.weights} and --dtype ${flags.dtype} disagree (--dtype is an alias of --weights)`,
    );
  }
  const weights = (flags.weights ?? flags.dtype ?? "source") as string;
  if (!(WEIGHTS_CHOICES as readonly string[]).includes(weights)) {
    usage(`--weights must be one of ${WEIGHTS_CHOICES.join(", ")}, got "${weights}"`);
  }
  if (flags["allow-f16-overflow"] && weights !== "f16") {
    usage("--allow-f16-overflow only applies to --weights f16");
  }
  let group: number | undefined;
  if (flags.group !== undefined) {
    if (weights !== "int8") usage("--group only applies to --weights int8");
    group = Number(flags.group);
    if (![16, 32, 64, 128, 256].includes(group)) {
      usage(`--group must be 64 or 128 (or 16, 32, 256), got "${flags.group}"`);
    }
  }
  let numClusters: number | undefined;
  if (flags["num-clusters"] !== undefined) {
    numClusters = Number(flags["num-clusters"]);
    if (!Number.isInteger(numClusters) || numClusters <= 0) {
      usage("--num-clusters must be a positive integer");
    }
  }
  const def = defaultPaths();
  const t0 = performance.now();
  const r = await convert({
    sat: typeof flags.sat === "string" ? flags.sat : def.sat,
    icetk: typeof flags.icetk === "string" ? flags.icetk : def.icetk,
    clusters: flags.clusters,
    out: flags.out,
    weights: weights as WeightsChoice,
    group,
    allowF16Overflow: flags["allow-f16-overflow"] === true,
    numClusters,
    overwrite: flags.overwrite === true,
    exitOnInterrupt: true,
    log: (m) => console.error(m),
  });
  const total = Object.values(r.files).reduce((a, f) => a + f.bytes, 0);
  console.log(
    `${r.out}: ${Object.keys(r.files).length} files, ${(total / 2 ** 20).toFixed(1)} MiB in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
} catch (e) {
  console.error(`convert: ${(e as Error).message}`);
  Deno.exit(1);
}
