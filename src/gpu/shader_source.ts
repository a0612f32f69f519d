// Loads WGSL from shaders/ and applies the tiny preprocessor: #include, #if/#elif/#else/#endif, {{NAME}}, #define,
// #unroll/#endunroll.
// Not a WGSL parser: variants come from defines, never from copied shader files.

const SHADER_DIR = new URL("../../shaders/", import.meta.url);
const cache = new Map<string, string>();

/** Raw text of `shaders/<file>` (read once; `deno compile --include shaders` embeds the folder). */
export function shaderText(file: string): string {
  let text = cache.get(file);
  if (text === undefined) {
    if (!/^[a-z0-9_]+\.wgsl$/.test(file)) throw new Error(`Invalid shader file name "${file}"`);
    try {
      text = Deno.readTextFileSync(new URL(file, SHADER_DIR));
    } catch (e) {
      throw new Error(`Cannot read shader shaders/${file}: ${(e as Error).message}`);
    }
    cache.set(file, text);
  }
  return text;
}

export type Defines = Record<string, string | number | boolean>;

/** Most lines all `#unroll` blocks of one shader may expand to (a guard against runaway shader sizes). */
export const MAX_UNROLL_LINES = 16384;
/** Most iterations of one `#unroll`. */
export const MAX_UNROLL_TRIPS = 64;

/**
 * Expands `#include "x.wgsl"` (once each), keeps the lines of true `#if NAME` / `#if !NAME` branches
 * (a define is true unless absent, false or 0), substitutes `{{NAME}}` with define values, and expands
 * `#define NAME expr` (an integer define for the rest of the shader) and `#unroll VAR FROM TO` ... `#endunroll`
 * (the body once per VAR = FROM .. TO-1, each copy its own `{ }` block with VAR written as the literal `0u`, `1u`, ..;
 * statement position only). `#unroll VAR FROM TO if NAME` (or `if !NAME`) unrolls only where NAME is true, as `#if`
 * reads it; otherwise the block is the rolled loop `for (var VAR = FROMu; VAR < TOu; VAR++) { .. }`. expr, FROM and TO are integer expressions: literals, define names, {{NAME}},
 * + - * / % and parentheses, / and % truncating as WGSL's u32.
 */
export function preprocess(file: string, defines: Defines = {}): string {
  return preprocessSource(file, shaderText(file), defines);
}

/** preprocess() of `text` as if it were shaders/<file> (tests feed it inline sources). */
export function preprocessSource(file: string, text: string, defines: Defines = {}): string {
  // #define writes to a layer over the caller's defines, never to them.
  return expand(file, text, Object.create(defines), new Set(), { lines: MAX_UNROLL_LINES });
}

function expand(
  file: string,
  text: string,
  defines: Defines,
  included: Set<string>,
  budget: { lines: number },
) {
  included.add(file);
  const out: string[] = [];
  // Stack of [thisBranchActive, anyBranchTaken, parentActive]
  const stack: [boolean, boolean, boolean][] = [];
  const active = () => stack.length === 0 || (stack[stack.length - 1][0] && stack[stack.length - 1][2]);
  const truthy = (expr: string) => {
    const neg = expr.startsWith("!");
    const name = neg ? expr.slice(1).trim() : expr.trim();
    const v = defines[name];
    const t = v !== undefined && v !== false && v !== 0 && v !== "0";
    return neg ? !t : t;
  };
  const lines = text.split("\n").map((t, i) => ({ t, ln: i + 1 }));
  const where = (ln: number) => `shaders/${file}:${ln}`;
  const values = (line: string, ln: number) =>
    line.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      if (!(name in defines)) throw new Error(`${where(ln)}: no value for {{${name}}}`);
      return String(defines[name]);
    });
  for (let i = 0; i < lines.length; i++) {
    const { t: line, ln } = lines[i];
    const trimmed = line.trim();
    let m: RegExpMatchArray | null;
    if ((m = trimmed.match(/^#include\s+"([^"]+)"/))) {
      if (active() && !included.has(m[1])) {
        out.push(expand(m[1], shaderText(m[1]), defines, included, budget));
      }
    } else if ((m = trimmed.match(/^#if\s+(.+)$/))) {
      const parent = active();
      const t = truthy(m[1]);
      stack.push([t, t, parent]);
    } else if ((m = trimmed.match(/^#elif\s+(.+)$/))) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`${where(ln)}: #elif without #if`);
      const t = !top[1] && truthy(m[1]);
      top[0] = t;
      top[1] ||= t;
    } else if (trimmed === "#else") {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`${where(ln)}: #else without #if`);
      top[0] = !top[1];
      top[1] = true;
    } else if (trimmed === "#endif") {
      if (!stack.pop()) throw new Error(`${where(ln)}: #endif without #if`);
    } else if (trimmed.startsWith("#define")) {
      if (!active()) continue;
      const d = trimmed.match(/^#define\s+([A-Za-z_]\w*)\s+(.+)$/);
      if (!d) throw new Error(`${where(ln)}: expected #define NAME expr`);
      defines[d[1]] = intExpr(values(d[2], ln), defines, `${where(ln)}: #define ${d[1]}`);
    } else if (trimmed.startsWith("#unroll")) {
      if (!active()) continue;
      const u = trimmed.match(/^#unroll\s+([A-Za-z_]\w*)\s+(\S+)\s+(\S+)(?:\s+if\s+(!?\s*[A-Za-z_]\w*))?$/);
      if (!u) {
        throw new Error(`${where(ln)}: expected #unroll VAR FROM TO [if NAME] (bounds without spaces)`);
      }
      const from = intExpr(values(u[2], ln), defines, `${where(ln)}: #unroll FROM`);
      const to = intExpr(values(u[3], ln), defines, `${where(ln)}: #unroll TO`);
      if (from < 0 || to < 0) {
        throw new Error(`${where(ln)}: #unroll bounds ${from}..${to} below 0 (u32 loops)`);
      }
      // The matching #endunroll (nested #unroll blocks counted).
      let end = i + 1;
      for (let depth = 0; end < lines.length; end++) {
        const e = lines[end].t.trim();
        if (e.startsWith("#unroll")) depth++;
        else if (e === "#endunroll" && depth-- === 0) break;
      }
      if (end === lines.length) throw new Error(`${where(ln)}: #unroll without #endunroll`);
      const body = lines.slice(i + 1, end);
      if (u[4] !== undefined && !truthy(u[4])) {
        // `if NAME` false: the same block as a rolled loop (VAR a u32 variable), nested #unroll processed as usual.
        const loop = `for (var ${u[1]} = ${from}u; ${u[1]} < ${to}u; ${u[1]}++) {`;
        lines.splice(i, end - i + 1, { t: loop, ln }, ...body, { t: "}", ln });
        i--;
        continue;
      }
      if (to - from > MAX_UNROLL_TRIPS) {
        throw new Error(
          `${where(ln)}: #unroll ${u[1]} of ${to - from} iterations (at most ${MAX_UNROLL_TRIPS})`,
        );
      }
      const copies: { t: string; ln: number }[] = [];
      const name = new RegExp(`\\b${u[1]}\\b`, "g");
      for (let k = from; k < to; k++) {
        copies.push({ t: "{", ln });
        for (const b of body) copies.push({ t: b.t.replace(name, `${k}u`), ln: b.ln });
        copies.push({ t: "}", ln });
      }
      budget.lines -= copies.length;
      if (budget.lines < 0) {
        throw new Error(`${where(ln)}: #unroll expands the shader past ${MAX_UNROLL_LINES} lines`);
      }
      // The copies replace the block and are processed like any lines (nested #unroll included).
      lines.splice(i, end - i + 1, ...copies);
      i--;
    } else if (trimmed === "#endunroll") {
      if (active()) throw new Error(`${where(ln)}: #endunroll without #unroll`);
    } else if (active()) {
      out.push(values(line, ln));
    }
  }
  if (stack.length) throw new Error(`shaders/${file}: unterminated #if`);
  return out.join("\n");
}

/** Integer value of `expr`: literals (`3`, `3u`), define names, + - * / % and parentheses; / and % truncate. */
function intExpr(expr: string, defines: Defines, what: string): number {
  const toks = expr.match(/\d+u?|[A-Za-z_]\w*|[-+*\/%()]|\S/g) ?? [];
  let p = 0;
  const fail = (why: string): never => {
    throw new Error(`${what}: ${why} in "${expr}"`);
  };
  const factor = (): number => {
    const t = toks[p++];
    if (t === undefined) return fail("unexpected end");
    if (t === "(") {
      const v = sum();
      if (toks[p++] !== ")") fail("missing )");
      return v;
    }
    if (t === "-") return -factor();
    if (/^\d+u?$/.test(t)) return parseInt(t, 10);
    if (/^[A-Za-z_]\w*$/.test(t)) {
      const v = Number(defines[t]);
      if (!(t in defines) || typeof defines[t] === "boolean" || !Number.isInteger(v)) {
        fail(`no integer value for ${t}`);
      }
      return v;
    }
    return fail(`unexpected "${t}"`);
  };
  const product = (): number => {
    let v = factor();
    while (toks[p] === "*" || toks[p] === "/" || toks[p] === "%") {
      const op = toks[p++], r = factor();
      if (op !== "*" && r === 0) fail("division by zero");
      v = op === "*" ? v * r : op === "/" ? Math.trunc(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (toks[p] === "+" || toks[p] === "-") v = toks[p++] === "+" ? v + product() : v - product();
    return v;
  };
  const v = sum();
  if (p !== toks.length) fail(`unexpected "${toks[p]}"`);
  return v;
}
