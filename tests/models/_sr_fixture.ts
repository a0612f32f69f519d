// Shared by the SR model tests: the tiny fixture converted once per test file, and its golden arrays.
import { compareArrays } from "../../src/reference/compare.ts";
import { join } from "node:path";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { readNpy } from "../../src/formats/npy.ts";
import { openModelDir } from "../../src/models/config.ts";
import { dsrInput } from "../../src/geometry/sr.ts";

export const FIXTURE = new URL("../testdata/cogview2-tiny", import.meta.url).pathname;

let dir: Promise<string> | null = null;

/** The fixture converted into a temporary model directory (removed at process exit). */
export function fixtureModelDir(): Promise<string> {
  dir ??= (async () => {
    const tmp = await Deno.makeTempDir({ prefix: "sr-test-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
    const out = join(tmp, "model");
    await convertFixtureSet(FIXTURE, out);
    return out;
  })();
  return dir;
}

export async function fixtureModel() {
  return await openModelDir(await fixtureModelDir());
}

/** A golden array as numbers. */
export async function golden(name: string): Promise<Float32Array | Int32Array> {
  const a = await readNpy(join(FIXTURE, "golden", name + ".npy"));
  return a.data instanceof Float64Array ? Float32Array.from(a.data) : a.data as Float32Array | Int32Array;
}

/** Largest |a − b| (NaN when either has a NaN, Infinity for different lengths): compareArrays' maxAbs. */
export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  compareArrays(a, b, { atol: 0 }).maxAbs;

/** The DSR model input of the golden case dsr_forward (its text ids and low-res tokens). */
export async function goldenDsrInput(md: Awaited<ReturnType<typeof fixtureModel>>) {
  const boi = md.config.image_tokens + md.config.tokenizer.pieces;
  return dsrInput(
    md.config.dsr,
    await golden("dsr_forward.text_ids"),
    await golden("dsr_forward.lowres_tokens"),
    boi,
  );
}
