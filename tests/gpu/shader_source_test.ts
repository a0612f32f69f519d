// The shader preprocessor's #unroll / #define (no GPU: text in, text out).
import assert from "node:assert/strict";
import { MAX_UNROLL_TRIPS, preprocessSource } from "../../src/gpu/shader_source.ts";

const lines = (s: string) => s.split("\n").map((l) => l.trim()).filter((l) => l !== "");

Deno.test("#unroll repeats the body with the variable as a u32 literal, each copy its own block", () => {
  const src = "a\n#unroll j 0 3\n  s[j] += w[4u * j];\n#endunroll\nb";
  assert.deepEqual(lines(preprocessSource("t.wgsl", src)), [
    "a",
    "{",
    "s[0u] += w[4u * 0u];",
    "}",
    "{",
    "s[1u] += w[4u * 1u];",
    "}",
    "{",
    "s[2u] += w[4u * 2u];",
    "}",
    "b",
  ]);
  // Whole identifiers only: `jj`, `j2`, `x.j_` and the literal `1u` keep their letters.
  assert.deepEqual(lines(preprocessSource("t.wgsl", "#unroll j 1 2\njj + j2 + j_ + j + 1u\n#endunroll")), [
    "{",
    "jj + j2 + j_ + 1u + 1u",
    "}",
  ]);
  assert.deepEqual(
    lines(preprocessSource("t.wgsl", "#unroll j 2 2\nx\n#endunroll\ny")),
    ["y"],
    "empty range",
  );
});

Deno.test("#unroll nests; bounds from defines, {{NAME}}, #define and the outer variable", () => {
  const src = [
    "#define TN4 {{TN}} / 4",
    "#unroll r 0 R",
    "#unroll j r TN4",
    "acc[r * {{TN}} + j];",
    "#endunroll",
    "#endunroll",
    "const X = {{TN4}}u;",
  ].join("\n");
  const out = lines(preprocessSource("t.wgsl", src, { R: 2, TN: "12" })).filter((l) =>
    l !== "{" && l !== "}"
  );
  assert.deepEqual(out, [
    "acc[0u * 12 + 0u];",
    "acc[0u * 12 + 1u];",
    "acc[0u * 12 + 2u];",
    "acc[1u * 12 + 1u];",
    "acc[1u * 12 + 2u];",
    "const X = 3u;",
  ]);
  // Arithmetic: precedence, parentheses, truncating / and %.
  const e = (x: string) => lines(preprocessSource("t.wgsl", `#define V ${x}\n{{V}}`, { A: 7 }))[0];
  assert.equal(e("(A + 1) * 2 - A / 2 % 2"), "15");
  assert.equal(e("A * 3 / 4"), "5");
  // #define does not leak into the caller's defines; inactive #if branches are not expanded.
  const d: Record<string, number> = { N: 1 };
  const inactive = "#if NO\n#define N 5\n#unroll i 0 1000\nx\n#endunroll\n#endif\n{{N}}";
  assert.deepEqual(lines(preprocessSource("t.wgsl", inactive, d)), ["1"]);
  preprocessSource("t.wgsl", "#define N 5", d);
  assert.deepEqual(d, { N: 1 });
});

Deno.test("#unroll ... if NAME unrolls where NAME is true, else leaves the same rolled loop", () => {
  const src = "#unroll i 0 R if U\n#unroll j 1 3 if U\nacc[i][j] += w[j];\n#endunroll\n#endunroll";
  const on = lines(preprocessSource("t.wgsl", src, { R: 2, U: true })).filter((l) => l !== "{" && l !== "}");
  assert.deepEqual(on, [
    "acc[0u][1u] += w[1u];",
    "acc[0u][2u] += w[2u];",
    "acc[1u][1u] += w[1u];",
    "acc[1u][2u] += w[2u];",
  ]);
  for (const off of [{ R: 2 }, { R: 2, U: false }, { R: 2, U: 0 }] as Record<string, number | boolean>[]) {
    assert.deepEqual(lines(preprocessSource("t.wgsl", src, off)), [
      "for (var i = 0u; i < 2u; i++) {",
      "for (var j = 1u; j < 3u; j++) {",
      "acc[i][j] += w[j];",
      "}",
      "}",
    ]);
  }
  // `if !NAME`, and a rolled loop is not held to the unroll trip limit.
  assert.deepEqual(lines(preprocessSource("t.wgsl", "#unroll k 0 1000 if !U\nx[k];\n#endunroll", { U: 1 })), [
    "for (var k = 0u; k < 1000u; k++) {",
    "x[k];",
    "}",
  ]);
  assert.throws(
    () => preprocessSource("k.wgsl", "#unroll i 0 4 when U\n#endunroll"),
    /k\.wgsl:1: expected #unroll VAR FROM TO \[if NAME\]/,
  );
});

Deno.test("#unroll errors name the file and line", () => {
  const bad = (src: string, re: RegExp, defines = {}) =>
    assert.throws(() => preprocessSource("k.wgsl", src, defines), re);
  bad("x\n#unroll i 0 4\ny", /shaders\/k\.wgsl:2: #unroll without #endunroll/);
  bad("x\n#endunroll", /shaders\/k\.wgsl:2: #endunroll without #unroll/);
  bad("#unroll i 0 NOPE\n#endunroll", /shaders\/k\.wgsl:1: #unroll TO: no integer value for NOPE/);
  bad("#unroll i 0 F\n#endunroll", /k\.wgsl:1: #unroll TO: no integer value for F/, { F: true });
  bad("#unroll i 0 (3\n#endunroll", /k\.wgsl:1: #unroll TO: missing \)/);
  bad("#unroll i 0\n#endunroll", /k\.wgsl:1: expected #unroll VAR FROM TO/);
  bad("#unroll i 0 2-3 if X\n#endunroll", /k\.wgsl:1: #unroll bounds 0\.\.-1 below 0/);
  bad("#define X 4 / 0", /k\.wgsl:1: #define X: division by zero/);
  bad(
    `\n#unroll i 0 ${MAX_UNROLL_TRIPS + 1}\n#endunroll`,
    /k\.wgsl:2: #unroll i of 65 iterations \(at most 64\)/,
  );
  // The cap on the whole expansion: 64 × 64 × 64 copies of a line.
  bad(
    "a\n#unroll i 0 64\n#unroll j 0 64\n#unroll k 0 64\nx\n#endunroll\n#endunroll\n#endunroll",
    /k\.wgsl:\d: #unroll expands the shader past 16384 lines/,
  );
});
