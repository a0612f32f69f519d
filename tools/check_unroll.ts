// Register arrays indexed by loop counters (shaders/README.md, `#unroll`): naga (wgpu) emits every WGSL `for` as a
// loop that NVIDIA's compiler does not unroll, so a function-scope or `var<private>` array indexed by a `for` loop's
// counter lives in local memory there (conv2d ran 6659 ms on wgpu vs 117 on Dawn on the H200 before `#unroll`). This
// check scans the shaders' source text (every `#if` branch at once; `#unroll` blocks have no `for`, so they pass) and
// fails on any `NAME[..]` inside a `for (var X ..)` body whose index mentions X, where NAME is such an array and the
// pair is not in ALLOWED (each entry with its reason). A heuristic over tokens, not a WGSL parser: an index through
// a derived `let` is not seen. Run by `deno task check`; `findLoopIndexed` is exported for its test
// (tests/tools/check_unroll_test.ts).

/**
 * "file.wgsl array loopvar" (or a whole "file.wgsl") -> why it may stay rolled: CPU-adapter-only code, Dawn-only code,
 * arrays in memory by nature (runtime positions), copies touched once per invocation.
 */
export const ALLOWED: Record<string, string> = {
  "conv2d.wgsl acc i": "DIRECT, the CPU adapters' register-tiled schedule (GPUs run the unrolled tiles)",
  "conv2d.wgsl acc j": "DIRECT, the CPU adapters' register-tiled schedule (GPUs run the unrolled tiles)",
  "conv2d.wgsl xr t": "DIRECT, the CPU adapters' register-tiled schedule (GPUs run the unrolled tiles)",
  "conv2d.wgsl xr kx": "DIRECT, the CPU adapters' register-tiled schedule (GPUs run the unrolled tiles)",
  "flash_attention.wgsl qt c":
    "the copy q is loaded through once per invocation (q4's guarded loads compiled once)",
  "flash_attention.wgsl s jj": "a tile's scores, written and read once per tile (q and acc are #unroll'd)",
  "gemm_sgmat.wgsl":
    "Dawn only (chromium-experimental-subgroup-matrix; Tint's loops unroll on NVIDIA); EMU: tests",
  "local_attention.wgsl sc n": "the window's scores, one slot per key (up to 1024): memory by nature",
  "local_attention.wgsl sc p": "the window's scores, one slot per key (up to 1024): memory by nature",
  "local_attention.wgsl sc dx": "the window's scores, one slot per key (up to 1024): memory by nature",
  "matmul.wgsl acc r":
    "UBO_A, the CPU adapters' ubo schedule (GPUs take gemm_tiles / the unrolled tiled schedule)",
  "sampling.wgsl ids i": "cluster_rank_serial, CPU adapters only (insertion sort at runtime positions)",
  "sampling.wgsl vals i": "cluster_rank_serial, CPU adapters only (insertion sort at runtime positions)",
};

export interface LoopIndexed {
  line: number;
  array: string;
  loopVar: string;
  text: string;
}

/** Comments blanked (same length, newlines kept) so that offsets still give line numbers. */
function stripComments(src: string): string {
  return src.replace(/\/\/[^\n]*/g, (m) => " ".repeat(m.length));
}

/** The offset just past the bracket matching the one at `open` (`(`/`)`, `[`/`]`, `{`/`}`), or -1. */
function matching(s: string, open: number): number {
  const o = s[open], c = o === "(" ? ")" : o === "[" ? "]" : "}";
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === o) depth++;
    else if (s[i] === c && --depth === 0) return i + 1;
  }
  return -1;
}

/** Whether the declaration of `name` nearest before `at` (`var`/`let`/`const` or a parameter) makes it an array. */
function declaredArray(s: string, name: string, at: number): boolean {
  const re = new RegExp(
    `(?:\\b(?:var(?:<[^>]*>)?|let|const)\\s+${name}\\b|[(,]\\s*${name}\\s*:)([^;,)=]*)`,
    "g",
  );
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(s); m && m.index < at; m = re.exec(s)) last = m;
  return last === null || /^\s*:?\s*array\s*</.test(last[1]);
}

/**
 * The register arrays of a shader (names declared `var NAME: array<..>`, `var<private>` / `var<function>` or
 * function parameters `NAME: array<..>`; never workgroup, storage or uniform variables), and every `for (var X ..)`
 * body's `NAME[expr]` with X a whole word of expr.
 */
export function findLoopIndexed(source: string): LoopIndexed[] {
  const s = stripComments(source);
  const arrays = new Set<string>();
  for (const m of s.matchAll(/(var(?:<\s*(\w+)[^>]*>)?\s+)?\b(\w+)\s*:\s*array\s*</g)) {
    const space = m[2];
    if (m[1] && space && space !== "private" && space !== "function") continue;
    if (!m[1] && /var<[^>]*>\s*$/.test(s.slice(Math.max(0, m.index! - 40), m.index!))) continue;
    arrays.add(m[3]);
  }
  const out: LoopIndexed[] = [];
  const lineOf = (i: number) => s.slice(0, i).split("\n").length;
  const seen = new Set<string>();
  for (const m of s.matchAll(/\bfor\s*\(\s*var\s+(\w+)/g)) {
    const paren = s.indexOf("(", m.index!);
    const headEnd = matching(s, paren);
    if (headEnd < 0) continue;
    const brace = s.indexOf("{", headEnd);
    const end = brace < 0 ? -1 : matching(s, brace);
    if (end < 0) continue;
    const body = s.slice(brace, end), word = new RegExp(`\\b${m[1]}\\b`);
    for (const a of body.matchAll(/\b(\w+)\s*\[/g)) {
      if (!arrays.has(a[1])) continue;
      const at = brace + a.index! + a[0].length - 1;
      if (!declaredArray(s, a[1], at)) continue;
      const close = matching(s, at);
      if (close < 0 || !word.test(s.slice(at + 1, close - 1))) continue;
      const line = lineOf(at), key = `${line} ${a[1]} ${m[1]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ line, array: a[1], loopVar: m[1], text: source.split("\n")[line - 1].trim() });
    }
  }
  return out.sort((x, y) => x.line - y.line);
}

/** The problems of the shaders in `dir` (one line each; empty: none) and how many allow-list entries were used. */
export function checkShaders(dir: string): { problems: string[]; files: number; allowed: number } {
  const problems: string[] = [];
  const used = new Set<string>();
  const files = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".wgsl")).map((e) =>
    e.name
  )
    .sort();
  for (const f of files) {
    for (const v of findLoopIndexed(Deno.readTextFileSync(`${dir}/${f}`))) {
      const key = `${f} ${v.array} ${v.loopVar}`;
      if (key in ALLOWED) used.add(key);
      else if (f in ALLOWED) used.add(f);
      else problems.push(`shaders/${f}:${v.line}: ${v.array}[..${v.loopVar}..] in a rolled loop: ${v.text}`);
    }
  }
  for (const k of Object.keys(ALLOWED)) {
    if (!used.has(k)) {
      problems.push(`tools/check_unroll.ts: ALLOWED["${k}"] matches nothing any more: remove it`);
    }
  }
  return { problems, files: files.length, allowed: used.size };
}

if (import.meta.main) {
  const { problems, files, allowed } = checkShaders(new URL("../shaders", import.meta.url).pathname);
  if (problems.length) {
    console.error(
      `${problems.length} register array(s) indexed by a rolled loop's counter (local memory on NVIDIA with wgpu; ` +
        "use `#unroll VAR FROM TO [if UNROLL]` as shaders/README.md says, or allow-list it with its reason in " +
        "tools/check_unroll.ts ALLOWED):\n" + problems.join("\n"),
    );
    Deno.exit(1);
  }
  console.log(`check_unroll: ${files} shaders, ${allowed} allowed loop-indexed register arrays`);
}
