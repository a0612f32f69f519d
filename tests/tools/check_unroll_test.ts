// The loop-indexed register-array check of `deno task check` (tools/check_unroll.ts): it must flag a function-scope or
// private array indexed by a rolled loop's counter, ignore workgroup/storage arrays, #unroll blocks, literal indices,
// same-named non-arrays and comments, and pass on this repository's shaders as they are.
import assert from "node:assert/strict";
import { ALLOWED, checkShaders, findLoopIndexed } from "../../tools/check_unroll.ts";

Deno.test("check_unroll: flags register arrays indexed by rolled loop counters, nothing else", () => {
  const src = `
var<workgroup> T: array<f32, 64>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
var<private> p: array<f32, 4>;
fn f(v: array<f32, 4>) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < 4u; k++) { s += v[k]; }
  return s;
}
fn main() {
  var acc: array<vec4<f32>, 8>;
  for (var i = 0u; i < 8u; i++) {
    acc[2u * (i / 2u)] += vec4<f32>(X[i] + T[i]); // X, T: storage / workgroup
    p[0u] = acc[1u].x; // literal indices
  }
  // for (var j = 0u; j < 4u; j++) { p[j] = 0.0; }
#unroll j 0 4
  p[j] = 1.0;
#endunroll
  for (var q = 0u; q < 4u; q++) {
    p[q] = 2.0;
  }
}
fn g() {
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) { acc[c] = 1.0; }
}
`;
  assert.deepEqual(
    findLoopIndexed(src).map((v) => `${v.line} ${v.array} ${v.loopVar}`),
    ["7 v k", "13 acc i", "21 p q"],
  );
});

Deno.test("check_unroll: every allow-list entry gives its reason", () => {
  for (const [k, why] of Object.entries(ALLOWED)) {
    assert.match(k, /^\w+\.wgsl( \w+ \w+)?$/, k);
    assert.ok(why.length > 20, `${k}: a reason`);
  }
});

Deno.test("check_unroll: this repository's shaders pass, every allow-list entry still in use", () => {
  const r = checkShaders(new URL("../../shaders", import.meta.url).pathname);
  assert.deepEqual(r.problems, []);
  assert.ok(r.files > 20 && r.allowed === Object.keys(ALLOWED).length);
});
