// Runs every golden case of a fixture directory through the registered kind handlers.
// Not a test framework: it returns one verdict per case; tools/conformance.ts and tests print and count them.
import { join, resolve } from "node:path";
import type { GpuContext } from "../gpu/context.ts";
import { readNpy } from "../formats/npy.ts";
import { kinds } from "./kinds.ts";
import { type ModelName, openModelDir } from "../models/config.ts";
import type { WeightsChoice } from "../convert/convert.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

export interface CaseVerdict extends CaseResult {
  case: string;
  kind: string;
  /** "pass" | "fail" | "unknown-kind" | "error" */
  status: string;
  ms: number;
  /**
   * The stored dtype of the weights the case ran with ("f16", "f32", "f16+f32"), plus ", narrowed from f32 (N
   * tensors)" when the conversion narrowed any; absent for cases that load no converted model.
   */
  weights?: string;
}

/** Which converted model a kind runs (by its name's prefix); null for kinds without weights. */
function kindModel(kind: string): ModelName | null {
  if (kind.startsWith("coglm_")) return "coglm";
  if (kind.startsWith("dsr_")) return "dsr";
  if (kind.startsWith("itersr_")) return "itersr";
  if (kind.startsWith("icetk_") && kind !== "icetk_text") return "vqvae";
  return null;
}

/** "f32", or "f16, narrowed from f32 (329 tensors)", from the model's safetensors and the manifest. */
export async function describeWeights(dir: string, model: ModelName): Promise<string> {
  const md = await openModelDir(dir);
  const st = await md.weights(model);
  const stored = new Set<string>();
  try {
    for (const n of st.names()) {
      const d = st.info(n).dtype;
      if (d === "f16" || d === "f32" || d === "bf16" || d === "i8") stored.add(d);
    }
  } finally {
    st.close();
  }
  let text = [...stored].sort().join("+") || "none";
  try {
    const man = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    const per = man.tensors?.[md.config[model].file] as
      | Record<string, { source: string; stored: string }>
      | undefined;
    const narrowed = Object.values(per ?? {}).filter((t) => t.stored === "f16" && t.source !== "f16");
    if (narrowed.length) {
      const from = [...new Set(narrowed.map((t) => t.source))].sort().join("+");
      text += `, NARROWED from ${from} (${narrowed.length} tensors)`;
    }
  } catch { /* no manifest (demo model): stored dtypes only */ }
  return text;
}

/** Reads golden/*.json of a fixture set, sorted by name. */
export async function listCases(fixtureDir: string): Promise<GoldenCase[]> {
  const dir = join(fixtureDir, "golden");
  const cases: GoldenCase[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const file = join(dir, e.name);
      let c: GoldenCase;
      try {
        c = JSON.parse(await Deno.readTextFile(file));
      } catch (err) {
        throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
      }
      if (typeof c.kind !== "string" || typeof c.case !== "string") {
        throw new Error(`${file}: missing "case" or "kind"`);
      }
      cases.push({ ...c, file });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`No golden/ directory in ${fixtureDir}`);
    throw e;
  }
  return cases.sort((a, b) => a.case.localeCompare(b.case));
}

export interface RunOptions {
  /** Only cases whose kind is in this set. */
  kinds?: Set<string>;
  /** Only cases whose name matches. */
  filter?: RegExp;
  /** Directory of an already converted model (skips conversion). */
  modelDir?: string;
  /** How the fixture's weights are converted (default "source": as stored, nothing narrowed). */
  weights?: WeightsChoice;
  onVerdict?: (v: CaseVerdict) => void;
}

export async function runConformance(
  fixtureDir: string,
  gpu: GpuContext,
  opts: RunOptions = {},
): Promise<CaseVerdict[]> {
  const root = resolve(fixtureDir);
  let converted: Promise<string> | null = opts.modelDir ? Promise.resolve(opts.modelDir) : null;
  let tmp: string | null = null;
  const cx: CaseContext = {
    fixtureDir: root,
    gpu,
    modelDir() {
      converted ??= (async () => {
        const { convertFixtureSet } = await import("../convert/fixture.ts");
        tmp = await Deno.makeTempDir({ prefix: "cogview2-conformance-" });
        const out = join(tmp, "model");
        await convertFixtureSet(root, out, { dtype: opts.weights ?? "source" });
        return out;
      })();
      return converted;
    },
    async npy(ref) {
      const rel = typeof ref === "string" ? ref : ref.npy;
      for (const p of [join(root, "golden", rel), join(root, rel)]) {
        try {
          await Deno.stat(p);
          return await readNpy(p);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      throw new Error(`Array ${rel} not found under ${root}/golden or ${root}`);
    },
    path: (rel) => join(root, rel),
  };
  const verdicts: CaseVerdict[] = [];
  const described = new Map<ModelName, string>();
  /** The weights label of a case that ran a converted model. */
  const weightsOf = async (kind: string): Promise<string | undefined> => {
    const m = kindModel(kind);
    if (!m || !converted) return undefined;
    if (!described.has(m)) {
      described.set(
        m,
        await describeWeights(await converted, m).catch((e) => `? (${e.message})`),
      );
    }
    return described.get(m);
  };
  try {
    for (const c of await listCases(root)) {
      if (opts.kinds && !opts.kinds.has(c.kind)) continue;
      if (opts.filter && !opts.filter.test(c.case)) continue;
      const t0 = performance.now();
      let v: CaseVerdict;
      const handler = kinds[c.kind];
      if (!handler) {
        v = {
          case: c.case,
          kind: c.kind,
          status: "unknown-kind",
          pass: false,
          detail: `kind "${c.kind}" is not implemented`,
          ms: 0,
        };
      } else {
        try {
          const r = await handler(c, cx);
          v = {
            case: c.case,
            kind: c.kind,
            status: r.pass ? "pass" : "fail",
            ...r,
            ms: performance.now() - t0,
            weights: await weightsOf(c.kind),
          };
        } catch (e) {
          v = {
            case: c.case,
            kind: c.kind,
            status: "error",
            pass: false,
            detail: (e as Error).message,
            ms: performance.now() - t0,
            weights: await weightsOf(c.kind),
          };
        }
      }
      verdicts.push(v);
      opts.onVerdict?.(v);
    }
  } finally {
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return verdicts;
}
