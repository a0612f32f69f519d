// `deno task fuzz`: seeded, time-bounded mutation fuzzing of every reader that takes bytes from outside — zip,
// pickle, npy, safetensors, SentencePiece (protobuf), PNG, JPEG. Each case runs in a worker under a watchdog; a
// finding is a crash other than the reader's own named error, a case over 1 s (a hang), or process RSS over the
// bound (a slow case is run once more on a fresh worker before it counts). Not a coverage-guided fuzzer: valid
// seeds, byte-level mutations, reproducible from (reader, seed, case).
//
//   deno task fuzz [--seconds S] [--seed N] [--only zip,png,...] [--rss-mib M]
//
// Exits 1 when anything was found, printing each finding as `reader seed case: what`.

import { parseArgs } from "node:util";
import { join } from "node:path";
import { encodeNpy } from "../src/formats/npy.ts";
import { encodeJpeg, encodePng } from "../src/formats/image.ts";
import { writeSafetensors } from "../src/formats/safetensors.ts";
import { writeZip, ZipArchive } from "../src/formats/zip.ts";

export const READERS = ["zip", "pickle", "npy", "safetensors", "sentencepiece", "png", "jpeg"] as const;
export type ReaderName = typeof READERS[number];

/** The largest process RSS a case may leave (MiB): far above the readers' needs, far below the machine's. */
export const DEFAULT_RSS_MIB = 1536;
/** A case slower than this is a hang. */
export const HANG_MS = 1000;

export interface Finding {
  reader: ReaderName;
  seed: number;
  index: number;
  what: string;
  input: Uint8Array;
}

export interface FuzzReport {
  reader: ReaderName;
  cases: number;
  accepted: number;
  rejected: number;
  slowestMs: number;
  maxRssMiB: number;
  findings: Finding[];
}

const root = new URL("../", import.meta.url).pathname;
const FIX = join(root, "tests/testdata/cogview2-tiny");

/** Valid inputs of each reader (built here, except the pickle and the SentencePiece model: the fixture's). */
export async function seeds(reader: ReaderName): Promise<Uint8Array[]> {
  const tmp = await Deno.makeTempDir({ prefix: "fuzz-seed-" });
  try {
    switch (reader) {
      case "zip": {
        const p = join(tmp, "s.zip");
        const text = new TextEncoder().encode("hello zip ".repeat(40));
        await writeZip(p, [
          { name: "a/stored.bin", data: new Uint8Array(300).map((_, i) => i * 7) },
          { name: "a/deflated.txt", data: text, deflate: true },
        ]);
        return [await Deno.readFile(p)];
      }
      case "pickle": {
        const z = await ZipArchive.openFile(join(FIX, "sat/coglm/1/mp_rank_00_model_states.pt"));
        try {
          return [await z.read("mp_rank_00_model_states/data.pkl")];
        } finally {
          z.close();
        }
      }
      case "npy":
        return [
          encodeNpy(new Float32Array(12).map((_, i) => i / 3), [3, 4]),
          encodeNpy(new Int32Array([1, -2, 3]), [3], { int64: true }),
        ];
      case "safetensors": {
        const p = join(tmp, "s.safetensors");
        await writeSafetensors(p, [
          { name: "w", dtype: "f32", shape: [2, 3], data: new Uint8Array(24).map((_, i) => i) },
          { name: "b", dtype: "f16", shape: [3], data: new Uint8Array(6).map((_, i) => 60 + i) },
        ], { metadata: { format: "pt" } });
        return [await Deno.readFile(p)];
      }
      case "sentencepiece":
        return [await Deno.readFile(join(FIX, "icetk/ice_text.model"))];
      case "png": {
        const rgba = new Uint8Array(4 * 7 * 5).map((_, i) => (i * 37) & 255);
        return [encodePng(rgba, 7, 5)];
      }
      case "jpeg": {
        const rgba = new Uint8Array(4 * 16 * 16).map((_, i) => (i * 13) & 255);
        return [encodeJpeg(rgba, 16, 16, 90)];
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** mulberry32: the case generator (reproducible from its seed). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff, 0x10000, 4096, 20000];

/** One to four byte-level mutations of a seed: truncation, bit flips, random bytes, inserts, deletes, and
 * "interesting" 16/32-bit values written over (sizes, counts and offsets live there). */
export function mutate(src: Uint8Array, r: () => number): Uint8Array {
  let b = src.slice();
  const rounds = 1 + Math.floor(r() * 4);
  for (let k = 0; k < rounds && b.length > 0; k++) {
    const at = Math.floor(r() * b.length);
    switch (Math.floor(r() * 7)) {
      case 0:
        b = b.slice(0, at);
        break;
      case 1:
        b[at] ^= 1 << Math.floor(r() * 8);
        break;
      case 2:
        for (let i = 0; i < 1 + Math.floor(r() * 8); i++) {
          b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
        }
        break;
      case 3: {
        const out = new Uint8Array(b.length + 1);
        out.set(b.subarray(0, at));
        out[at] = Math.floor(r() * 256);
        out.set(b.subarray(at), at + 1);
        b = out;
        break;
      }
      case 4: {
        const n = 1 + Math.floor(r() * 16);
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + n))]);
        break;
      }
      default: {
        const v = INTERESTING[Math.floor(r() * INTERESTING.length)];
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const le = r() < 0.7;
        if (r() < 0.5 && at + 4 <= b.length) dv.setUint32(at, v >>> 0, le);
        else if (at + 2 <= b.length) dv.setUint16(at, v & 0xffff, le);
        break;
      }
    }
  }
  return b;
}

/** Runs one reader for `seconds`: cases from `seed`, each in the worker under a 1 s watchdog. */
export async function fuzzReader(
  reader: ReaderName,
  o: { seconds: number; seed: number; rssMiB?: number; maxCases?: number },
): Promise<FuzzReport> {
  const rssBound = (o.rssMiB ?? DEFAULT_RSS_MIB) * 2 ** 20;
  const corpus = await seeds(reader);
  const report: FuzzReport = {
    reader,
    cases: 0,
    accepted: 0,
    rejected: 0,
    slowestMs: 0,
    maxRssMiB: 0,
    findings: [],
  };
  const r = rng(o.seed);
  let worker = await spawn();
  const deadline = performance.now() + o.seconds * 1000;
  try {
    for (let i = 0; performance.now() < deadline && i < (o.maxCases ?? Infinity); i++) {
      const input = mutate(corpus[i % corpus.length], r);
      let t0 = performance.now();
      let out = await runCase(worker, reader, input);
      let ms = performance.now() - t0;
      if (out === "hang" || ms > HANG_MS) {
        // Once more on a fresh worker: a loaded machine can stall any case; a real hang repeats.
        worker.terminate();
        worker = await spawn();
        t0 = performance.now();
        out = await runCase(worker, reader, input);
        ms = performance.now() - t0;
      }
      report.cases++;
      report.slowestMs = Math.max(report.slowestMs, ms);
      const rss = Deno.memoryUsage().rss;
      report.maxRssMiB = Math.max(report.maxRssMiB, rss / 2 ** 20);
      const find = (what: string) => report.findings.push({ reader, seed: o.seed, index: i, what, input });
      if (out === "hang") {
        find(`no answer within ${HANG_MS} ms (hang)`);
        worker.terminate();
        worker = await spawn();
      } else if (out.kind === "crash") find(`crash: ${out.message}`);
      else if (ms > HANG_MS) find(`took ${ms.toFixed(0)} ms (over ${HANG_MS} ms)`);
      else if (out.kind === "ok") report.accepted++;
      else report.rejected++;
      if (rss > rssBound) {
        find(
          `process RSS ${(rss / 2 ** 20).toFixed(0)} MiB over the ${o.rssMiB ?? DEFAULT_RSS_MIB} MiB bound`,
        );
        break;
      }
      if (report.findings.length >= 20) break;
    }
  } finally {
    worker.terminate();
  }
  return report;
}

type Outcome = { kind: "ok" } | { kind: "named"; message: string } | { kind: "crash"; message: string };

/** A fresh worker, once it has loaded (module loading and, under `deno test`, type checking are not a case's time). */
async function spawn(): Promise<Worker> {
  const w = new Worker(new URL("./fuzz_worker.ts", import.meta.url).href, { type: "module" });
  await new Promise<void>((resolve, reject) => {
    w.onmessage = () => resolve();
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      reject(new Error(`the fuzz worker failed to start: ${e.message}`));
    };
  });
  return w;
}

function runCase(worker: Worker, reader: ReaderName, input: Uint8Array): Promise<Outcome | "hang"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("hang"), HANG_MS * 3);
    worker.onmessage = (e: MessageEvent<Outcome>) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      clearTimeout(timer);
      resolve({ kind: "crash", message: `uncaught in the worker: ${e.message}` });
    };
    worker.postMessage({ reader, input });
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      seed: { type: "string", default: "1" },
      only: { type: "string" },
      "rss-mib": { type: "string", default: String(DEFAULT_RSS_MIB) },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "deno task fuzz [--seconds S per reader, default 10] [--seed N] [--only zip,pickle,npy,safetensors," +
        "sentencepiece,png,jpeg] [--rss-mib M, default 1536]",
    );
    Deno.exit(0);
  }
  const seconds = Number(values.seconds), seed = Number(values.seed), rssMiB = Number(values["rss-mib"]);
  if (!(seconds > 0) || !Number.isInteger(seed) || !(rssMiB > 0)) {
    console.error("error: --seconds and --rss-mib must be positive numbers, --seed an integer");
    Deno.exit(2);
  }
  const only = values.only ? values.only.split(",") : [...READERS];
  const unknown = only.filter((x) => !(READERS as readonly string[]).includes(x));
  if (unknown.length) {
    console.error(`error: unknown reader(s) ${unknown.join(", ")}; readers: ${READERS.join(", ")}`);
    Deno.exit(2);
  }
  let found = 0;
  for (const name of only as ReaderName[]) {
    const rep = await fuzzReader(name, { seconds, seed, rssMiB });
    console.log(
      `${name.padEnd(13)} ${
        String(rep.cases).padStart(6)
      } cases in ${seconds} s: ${rep.accepted} accepted, ` +
        `${rep.rejected} rejected with the reader's error; slowest ${rep.slowestMs.toFixed(0)} ms, ` +
        `max RSS ${rep.maxRssMiB.toFixed(0)} MiB; ${rep.findings.length} finding(s)`,
    );
    for (const f of rep.findings) {
      found++;
      const file = `out/fuzz/${f.reader}-seed${f.seed}-case${f.index}.bin`;
      await Deno.mkdir("out/fuzz", { recursive: true });
      await Deno.writeFile(file, f.input);
      console.log(`  FINDING ${f.reader} seed ${f.seed} case ${f.index}: ${f.what} (input: ${file})`);
    }
  }
  Deno.exit(found ? 1 : 0);
}
