// `deno task convert --sat DIR --icetk DIR --clusters FILE --out DIR [--dtype f16|f32] [--num-clusters N] [--overwrite]`
// converts the official CogView2 downloads into a model directory; `deno task convert --verify DIR` checks one.
// Exit code 0 on success, 1 on bad input (one line naming the file and key), 2 on bad usage.
import { convert, defaultPaths, verifyModelDir } from "../src/convert/convert.ts";

const USAGE = `Usage:
  deno task convert --clusters FILE --out DIR [--sat DIR] [--icetk DIR] [--dtype f16|f32] [--num-clusters N] [--overwrite]
  deno task convert --verify DIR

  --sat DIR         folder with coglm, cogview2-dsr, cogview2-itersr (folders or .zip archives); default $SAT_HOME or ~/.sat_models
  --icetk DIR       folder with ice_text.model and ice_image.pt; default ~/.icetk_models
  --clusters FILE   cluster_label.npy from the CogView2 repository (required)
  --out DIR         output model directory (written atomically)
  --dtype f16|f32   storage type of the weights (default f16)
  --num-clusters N  number of clusters the labels index (default 500)
  --overwrite       replace an existing output directory
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
  if (name === "overwrite") {
    flags[name] = true;
    continue;
  }
  const v = eq > 0 ? a.slice(eq + 1) : args.shift();
  if (v === undefined) usage(`${a} needs a value`);
  flags[name] = v;
}
const known = new Set(["sat", "icetk", "clusters", "out", "dtype", "num-clusters", "overwrite", "verify"]);
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
  const dtype = (flags.dtype ?? "f16") as string;
  if (dtype !== "f16" && dtype !== "f32") usage(`--dtype must be f16 or f32, got "${dtype}"`);
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
    dtype,
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
