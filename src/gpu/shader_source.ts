// Loads WGSL from shaders/ and applies the tiny preprocessor: #include, #if/#elif/#else/#endif, {{NAME}}.
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

/**
 * Expands `#include "x.wgsl"` (once each), keeps the lines of true `#if NAME` / `#if !NAME` branches
 * (a define is true unless absent, false or 0) and substitutes `{{NAME}}` with define values.
 */
export function preprocess(file: string, defines: Defines = {}, included = new Set<string>()): string {
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
  const lines = shaderText(file).split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const trimmed = line.trim();
    let m: RegExpMatchArray | null;
    if ((m = trimmed.match(/^#include\s+"([^"]+)"/))) {
      if (active() && !included.has(m[1])) out.push(preprocess(m[1], defines, included));
    } else if ((m = trimmed.match(/^#if\s+(.+)$/))) {
      const parent = active();
      const t = truthy(m[1]);
      stack.push([t, t, parent]);
    } else if ((m = trimmed.match(/^#elif\s+(.+)$/))) {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`shaders/${file}:${i + 1}: #elif without #if`);
      const t = !top[1] && truthy(m[1]);
      top[0] = t;
      top[1] ||= t;
    } else if (trimmed === "#else") {
      const top = stack[stack.length - 1];
      if (!top) throw new Error(`shaders/${file}:${i + 1}: #else without #if`);
      top[0] = !top[1];
      top[1] = true;
    } else if (trimmed === "#endif") {
      if (!stack.pop()) throw new Error(`shaders/${file}:${i + 1}: #endif without #if`);
    } else if (active()) {
      out.push(
        line.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
          if (!(name in defines)) throw new Error(`shaders/${file}:${i + 1}: no value for {{${name}}}`);
          return String(defines[name]);
        }),
      );
    }
  }
  if (stack.length) throw new Error(`shaders/${file}: unterminated #if`);
  return out.join("\n");
}
