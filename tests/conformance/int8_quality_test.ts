import assert from "node:assert/strict";
import { psnr } from "../../src/conformance/int8_quality.ts";

Deno.test("int8 report PSNR: 10·log10(1/MSE) on values clamped to [0, 1]", () => {
  // MSE 0.01 -> 20 dB; values outside [0, 1] are clamped before the difference.
  assert.ok(Math.abs(psnr([0.1, 0.5, 1.3], [0.2, 0.6, 0.9]) - 20) < 1e-9);
  assert.ok(Math.abs(psnr([0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1]) - 20) < 1e-9);
  assert.equal(psnr([0.3, 0.4], [0.3, 0.4]), Infinity);
});
