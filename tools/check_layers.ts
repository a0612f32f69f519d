// `deno task check` step: the import rules of ARCHITECTURE.md, checked over every relative import (static
// `import`/`export ... from`, and `import("...")` with a literal path) of src/, tools/, tests/ and main.ts.
//   1. Each file belongs to the first layer in LAYERS whose prefix its path starts with.
//   2. A file may import its own layer and the layers ALLOWED lists for it; nothing else (no upward import, no
//      src/reference/ outside tests/, src/conformance/ and the benchmarks' CPU-twin columns).
//   3. No import cycle among the files of src/ (and the ALLOWED table itself has none).
// Prints each violation as `file:line: rule` and exits 1 when there is one. `--graph` prints the layer edges in use.

/** Path prefix → layer (first match wins). */
const LAYERS: [string, string][] = [
  ["src/gpu/", "gpu"],
  ["src/kernels/", "kernels"],
  ["src/models/", "models"],
  ["src/pipeline/", "pipeline"],
  ["src/server/", "server"],
  ["src/formats/", "formats"],
  ["src/tokenizer/", "tokenizer"],
  ["src/convert/", "convert"],
  ["src/geometry/", "geometry"],
  ["src/sampling/", "sampling"],
  ["src/demo/", "demo"],
  ["src/cli/", "cli"],
  ["src/reference/", "reference"],
  ["src/conformance/", "conformance"],
  ["tools/bench/", "bench"],
  ["tools/bench.ts", "bench"],
  ["tools/", "tools"],
  ["main.ts", "tools"],
  ["tests/", "tests"],
  ["assets/", "assets"],
  ["shaders/", "assets"],
];

/**
 * The one table of allowed edges: layer → the other layers it may import. The engine is the chain
 * gpu ← kernels ← models ← pipeline ← server / tools (a layer may also reach further down, except that the pipeline
 * never dispatches kernels itself); formats, tokenizer, geometry (SR layouts), sampling (host RNG, recipes), cli
 * (the tools' terminal line) and convert sit beside it; reference (the CPU twins) serves tests, conformance and the
 * benchmarks' CPU columns only.
 */
const ALLOWED: Record<string, string[]> = {
  gpu: [],
  formats: [],
  geometry: [],
  sampling: [],
  assets: [],
  cli: [],
  tokenizer: ["formats"],
  kernels: ["gpu", "geometry", "sampling", "assets"],
  models: ["kernels", "gpu", "formats", "geometry", "sampling"],
  pipeline: ["models", "gpu", "formats", "tokenizer", "geometry", "sampling"],
  server: ["pipeline", "formats"],
  convert: ["formats", "models", "cli"],
  demo: ["formats", "gpu", "models", "assets"],
  // Host-side twins: f16 conversion (gpu/f16.ts), weight files, layouts, the sampler RNG.
  reference: ["formats", "gpu", "geometry", "sampling"],
  conformance: [
    "reference",
    "pipeline",
    "models",
    "kernels",
    "gpu",
    "formats",
    "tokenizer",
    "convert",
    "geometry",
    "sampling",
  ],
  tools: [
    "server",
    "pipeline",
    "models",
    "kernels",
    "gpu",
    "formats",
    "tokenizer",
    "convert",
    "geometry",
    "sampling",
    "demo",
    "conformance",
    "assets",
    "cli",
  ],
  bench: [
    "pipeline",
    "models",
    "kernels",
    "gpu",
    "formats",
    "tokenizer",
    "convert",
    "geometry",
    "sampling",
    "demo",
    "reference",
    "assets",
  ],
  tests: [...new Set(LAYERS.map(([, l]) => l))].filter((l) => l !== "tests"),
};

export function layerOf(path: string): string | undefined {
  return LAYERS.find(([prefix]) => path === prefix || path.startsWith(prefix))?.[1];
}

export interface Import {
  from: string;
  to: string;
  line: number;
}

const IMPORT_RE =
  /(?:^|[\s;}])(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/g;

/** The relative imports of one file's text, resolved against its repository path. */
export function importsOf(from: string, text: string): Import[] {
  const out: Import[] = [];
  // Comments could hold example imports: blank them (keeping line numbers).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`])\/\/[^\n]*/g, "$1");
  for (const m of code.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue;
    const line = code.slice(0, m.index).split("\n").length + (m[0].startsWith("\n") ? 1 : 0);
    out.push({ from, to: normalize(from, spec), line });
  }
  return out;
}

function normalize(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/** Violations of the layer table and file cycles among `src/` files, one message each. */
export function checkImports(imports: Import[]): string[] {
  const bad: string[] = [];
  for (const { from, to, line } of imports) {
    const a = layerOf(from), b = layerOf(to);
    if (!a || !b) {
      bad.push(`${from}:${line}: ${!a ? from : to} is in no layer of tools/check_layers.ts`);
    } else if (a !== b && !ALLOWED[a].includes(b)) {
      bad.push(
        `${from}:${line}: ${a} may not import ${b} (${to}); allowed: ${ALLOWED[a].join(", ") || "nothing"}`,
      );
    }
  }
  const graph = new Map<string, string[]>();
  for (const { from, to } of imports) {
    if (!from.startsWith("src/") || !to.startsWith("src/")) continue;
    if (!graph.has(from)) graph.set(from, []);
    graph.get(from)!.push(to);
  }
  for (const cycle of cycles(graph)) bad.push(`${cycle[0]}: import cycle ${cycle.join(" → ")} → ${cycle[0]}`);
  for (const cycle of cycles(new Map(Object.entries(ALLOWED)))) {
    bad.push(`tools/check_layers.ts: the ALLOWED table has a cycle ${cycle.join(" → ")}`);
  }
  return bad;
}

/** One cycle per strongly connected component of more than one node (or a self-loop), by Tarjan's algorithm. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [];
  const on = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index), low.set(v, index++), stack.push(v), on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) visit(w), low.set(v, Math.min(low.get(v)!, low.get(w)!));
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do (w = stack.pop()!, on.delete(w), comp.push(w)); while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(pathBack(graph, new Set(comp), v));
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** A shortest cycle through `v` inside one strongly connected component (breadth-first). */
function pathBack(graph: Map<string, string[]>, comp: Set<string>, v: string): string[] {
  const prev = new Map<string, string>();
  const queue = [v];
  while (queue.length) {
    const u = queue.shift()!;
    for (const w of graph.get(u) ?? []) {
      if (!comp.has(w) || prev.has(w)) continue;
      prev.set(w, u);
      if (w === v) {
        const path = [v];
        for (let x = u; x !== v; x = prev.get(x)!) path.splice(1, 0, x);
        return path;
      }
      queue.push(w);
    }
  }
  return [...comp];
}

async function repoImports(root: string): Promise<Import[]> {
  const all: Import[] = [];
  const files = ["main.ts"];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${root}/${dir}`)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory && e.name !== "testdata") await walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(p);
    }
  };
  for (const dir of ["src", "tools", "tests"]) await walk(dir);
  for (const f of files.sort()) all.push(...importsOf(f, await Deno.readTextFile(`${root}/${f}`)));
  return all;
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const imports = await repoImports(root);
  if (Deno.args.includes("--graph")) {
    const edges = new Map<string, number>();
    for (const { from, to } of imports) {
      const k = `${layerOf(from)} → ${layerOf(to)}`;
      if (layerOf(from) !== layerOf(to)) edges.set(k, (edges.get(k) ?? 0) + 1);
    }
    for (const [k, n] of [...edges].sort()) console.log(`${k} (${n})`);
  }
  const bad = checkImports(imports);
  for (const b of bad) console.error(b);
  console.log(`layers: ${imports.length} relative imports checked, ${bad.length} violation(s)`);
  if (bad.length) Deno.exit(1);
}
