// Converts a fixture set (root/sat, root/icetk, root/cluster_label.npy: the official layout at test size) into a model
// directory, for the conformance runner and tests. Not a separate code path: it is `convert` with the fixture's paths.
import { join } from "node:path";
import { convert } from "./convert.ts";

/** Converts `root`'s official-format files into the model directory `out` (f16, as the real download is). */
export async function convertFixtureSet(
  root: string,
  out: string,
  opts: { dtype?: "f16" | "f32" } = {},
): Promise<void> {
  await convert({
    sat: join(root, "sat"),
    icetk: join(root, "icetk"),
    clusters: join(root, "cluster_label.npy"),
    out,
    dtype: opts.dtype ?? "f16",
    overwrite: true,
    progress: false,
  });
}
