// Converts a fixture set (root/sat, root/icetk, root/cluster_label.npy: the official layout at test size) into a model
// directory, for the conformance runner and tests. Not a separate code path: it is `convert` with the fixture's paths.
import { join } from "node:path";
import { convert, type ConvertResult, type WeightsChoice } from "./convert.ts";

/** Converts `root`'s official-format files into the model directory `out` (default: each tensor's own dtype). */
export function convertFixtureSet(
  root: string,
  out: string,
  opts: { dtype?: WeightsChoice; allowF16Overflow?: boolean; group?: number } = {},
): Promise<ConvertResult> {
  return convert({
    sat: join(root, "sat"),
    icetk: join(root, "icetk"),
    clusters: join(root, "cluster_label.npy"),
    out,
    weights: opts.dtype ?? "source",
    allowF16Overflow: opts.allowF16Overflow,
    group: opts.group,
    overwrite: true,
    progress: false,
  });
}
