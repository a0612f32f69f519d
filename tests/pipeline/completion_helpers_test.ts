// Completion's pure parts (box → mask, surrounding crop, reordered sequence, attention rule, scatter) and image ops.
// Not an end-to-end completion test: that needs the model stages (tests/pipeline/text2image_test.ts).

import nodeAssert from "node:assert/strict";
import {
  boxToMask,
  completionAttends,
  completionSequence,
  downsampleMask,
  scatterCompletion,
  surroundingBoxCrop,
} from "../../src/pipeline/completion_layout.ts";
import { resizeNearestChw } from "../../src/pipeline/image_ops.ts";
import { resizeBilinear } from "../../src/formats/image.ts";
import { Progress } from "../../src/pipeline/progress.ts";
import type { PipelineEvent } from "../../src/pipeline/types.ts";

const eq = <T>(a: T, b: T, msg?: string) => nodeAssert.deepStrictEqual(a, b, msg);

Deno.test("boxToMask follows cord2mask: rows ⌊480·h0⌋..⌊480·h1⌋, columns ⌊480·w0⌋..⌊480·w1⌋", () => {
  const m = boxToMask([0.25, 0.5, 0.5, 0.75]);
  let count = 0;
  for (let i = 0; i < m.length; i++) count += m[i];
  eq(count, 120 * 120);
  eq(m[120 * 480 + 240], 1);
  eq(m[119 * 480 + 240], 0);
  eq(m[120 * 480 + 359], 1);
  eq(m[120 * 480 + 360], 0);
});

Deno.test("surroundingBoxCrop: the 20/14 square, clamped at the borders like the original (Python int())", () => {
  // Centre box: rows/cols 120..359 → lenm = int(240·20/14) = 342, start int(239.5 − 171) = 68.
  eq(surroundingBoxCrop(boxToMask([0.25, 0.25, 0.75, 0.75])).crop, { y0: 68, x0: 68, y1: 410, x1: 410 });
  // Bottom-left corner: rows 432..479, cols 0..47 → lenm 68; rows pushed up to 412, columns clamped to 0.
  eq(surroundingBoxCrop(boxToMask([0.9, 0, 1, 0.1])).crop, { y0: 412, x0: 0, y1: 480, x1: 68 });
  // A box covering most of the image uses the whole image.
  eq(surroundingBoxCrop(boxToMask([0, 0, 0.8, 0.8])).crop, { y0: 0, x0: 0, y1: 480, x1: 480 });
  nodeAssert.throws(() => surroundingBoxCrop(new Uint8Array(480 * 480)), /selects no pixel/);
});

Deno.test("completionSequence: context codes first, then each run's left neighbour and the slots; positions 513+cell", () => {
  const codes = Int32Array.from({ length: 400 }, (_, i) => 1000 + i);
  const mask = new Uint8Array(400);
  mask[2 * 20 + 5] = mask[2 * 20 + 6] = 1; // row 2, columns 5..6
  mask[0] = 1; // first cell: no left neighbour
  const s = completionSequence([30001, 30002, 77], 77, codes, mask);
  eq(s.txtLen, 3);
  eq(Array.from(s.tokens.slice(0, 4)), [30001, 30002, 77, 77]);
  eq(Array.from(s.positionIds.slice(0, 4)), [0, 1, 2, 512]);
  // 400 cells: 3 masked + 1 left neighbour (cell 2·20+4) in the fill part.
  eq(s.tokens.length, 4 + 400);
  eq(s.contextLength, 4 + 396);
  eq(Array.from(s.tokens.slice(s.contextLength)), [-1, 1000 + 44, -1, -1]);
  eq(Array.from(s.positionIds.slice(s.contextLength)), [513, 513 + 44, 513 + 45, 513 + 46]);
  eq(s.positionIds[4], 514); // the first context cell is cell 1
  // Attention: text sees text both ways, fill rows see all context, context rows are causal.
  nodeAssert.ok(completionAttends(0, 2, 3, s.contextLength));
  nodeAssert.ok(!completionAttends(0, 3, 3, s.contextLength));
  nodeAssert.ok(completionAttends(s.contextLength, s.contextLength - 1, 3, s.contextLength));
  nodeAssert.ok(completionAttends(5, 100, 3, s.contextLength));
  nodeAssert.ok(!completionAttends(s.contextLength, s.contextLength + 1, 3, s.contextLength));
  // Scatter puts filled values back where they belong.
  const filled = Int32Array.from(s.tokens, (t, j) => (t === -1 ? 5 + j : t));
  const im = scatterCompletion(filled, s.positionIds, 3, codes);
  eq(im[0], 5 + s.contextLength);
  eq(im[45], 5 + s.contextLength + 2);
  eq(im[44], 1044);
  eq(im[399], 1399);
});

Deno.test("image ops: nearest ×3, bilinear against hand values, mask downsampling", () => {
  const src = Float32Array.from([0, 1, 2, 3]); // 1×2×2
  eq(Array.from(resizeNearestChw(src, { c: 1, h: 2, w: 2 }, 4, 4)), [
    0,
    0,
    1,
    1,
    0,
    0,
    1,
    1,
    2,
    2,
    3,
    3,
    2,
    2,
    3,
    3,
  ]);
  // align_corners=False: output 4 of input 2 samples at −0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  const b = resizeBilinear(Float32Array.from([0, 4]), { c: 1, h: 1, w: 2 }, 1, 4);
  eq(Array.from(b), [0, 1, 3, 4]);
  const m = new Uint8Array(6 * 6);
  m.fill(1, 0, 18); // top half
  eq(Array.from(downsampleMask(m, 6, 2)), [1, 1, 0, 0]);
});

Deno.test("Progress: overall fraction is monotonic over the planned stages and ends at 1", () => {
  const events: PipelineEvent[] = [];
  const p = new Progress((e) => events.push(e), ["coglm", "dsr", "decode"]);
  p.start("coglm");
  for (let s = 1; s <= 4; s++) p.step(s, 4);
  p.end();
  p.start("dsr");
  p.step(1, 1);
  p.end();
  p.start("decode");
  p.step(1, 2);
  p.step(2, 2);
  p.end();
  const fr = events.map((e) => ("progress" in e ? e.progress : 0));
  for (let i = 1; i < fr.length; i++) nodeAssert.ok(fr[i] >= fr[i - 1], `event ${i} goes back: ${fr}`);
  eq(fr[fr.length - 1], 1);
  nodeAssert.throws(() => p.start("itersr"), /not in the plan/);
});
