// Runs every golden case of a fixture directory through the registered kind handlers.
// Not a test framework: it returns one verdict per case; tools/conformance.ts and tests print and count them.
import { join, resolve } from "node:path";
import type { GpuContext } from "../gpu/context.ts";
import { readNpy } from "../formats/npy.ts";
import { kinds } from "./kinds.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

export interface CaseVerdict extends CaseResult {
  case: string;
  kind: string;
  /** "pass" | "fail" | "unknown-kind" | "error" */
  status: string;
  ms: number;
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
        await convertFixtureSet(root, out);
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
          };
        } catch (e) {
          v = {
            case: c.case,
            kind: c.kind,
            status: "error",
            pass: false,
            detail: (e as Error).message,
            ms: performance.now() - t0,
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
