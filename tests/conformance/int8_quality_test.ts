import assert from "node:assert/strict";
import { compareLogits, psnr } from "../../src/conformance/int8_quality.ts";

Deno.test("int8 report PSNR: 10·log10(1/MSE) on values clamped to [0, 1]", () => {
  // MSE 0.01 -> 20 dB; values outside [0, 1] are clamped before the difference.
  assert.ok(Math.abs(psnr([0.1, 0.5, 1.3], [0.2, 0.6, 0.9]) - 20) < 1e-9);
  assert.ok(Math.abs(psnr([0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1]) - 20) < 1e-9);
  assert.equal(psnr([0.3, 0.4], [0.3, 0.4]), Infinity);
});

Deno.test("int8 report compareLogits: KL(a‖b) per row by hand, max |a−b|, argmax agreement", () => {
  // Row 0: a = log([0.5, 0.5]), b = log([0.25, 0.75]) -> KL = 0.5·ln(2) + 0.5·ln(2/3); row 1 identical.
  const a = Float32Array.from([Math.log(0.5), Math.log(0.5), 1, 2]);
  const b = Float32Array.from([Math.log(0.25), Math.log(0.75), 1, 2]);
  const c = compareLogits(a, b, 2);
  const kl = 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3);
  assert.ok(Math.abs(c.klSum - kl) < 1e-6, `${c.klSum} vs ${kl}`);
  assert.ok(Math.abs(c.klMax - kl) < 1e-6);
  assert.ok(Math.abs(c.maxAbs - Math.abs(Math.log(0.5) - Math.log(0.25))) < 1e-6);
  assert.equal(c.argSame, 1, "row 0: argmax 0 vs 1 (ties keep the first); row 1 agrees");
});
