// Text-guided completion's geometry and sequence layout (comp_pipeline/): box → mask, crop, reordered CogLM input.
// Not the glue that runs models: completion.ts uses these; they are pure functions so tests need no GPU.

import { resizeNearestChw } from "./image_ops.ts";
import { PipelineError } from "./types.ts";

export const COMPLETION_SIZE = 480;

/**
 * The original's `cord2mask(h0, w0, h1, w1)`: fractions of the 480×480 image, rows [⌊480·h0⌋, ⌊480·h1⌋) and columns
 * [⌊480·w0⌋, ⌊480·w1⌋) are re-generated. (Its input file calls them x0 y0 x1 y1, but the first is the row.)
 */
export function boxToMask(
  box: readonly [number, number, number, number],
  size = COMPLETION_SIZE,
): Uint8Array {
  const [h0, w0, h1, w1] = box;
  const mask = new Uint8Array(size * size);
  const r0 = Math.floor(size * h0),
    r1 = Math.floor(size * h1),
    c0 = Math.floor(size * w0),
    c1 = Math.floor(size * w1);
  for (let r = r0; r < r1; r++) mask.fill(1, r * size + c0, r * size + c1);
  return mask;
}

/** PatchCompletion._surrounding_box_crop: a square around the mask's bounding box, 20/14 of its larger side. */
export function surroundingBoxCrop(mask: Uint8Array, size = COMPLETION_SIZE) {
  let h0 = size, w0 = size, h1 = -1, w1 = -1;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      if (!mask[r * size + c]) continue;
      h0 = Math.min(h0, r), h1 = Math.max(h1, r), w0 = Math.min(w0, c), w1 = Math.max(w1, c);
    }
  }
  if (h1 < 0) throw new PipelineError("Field 'box' selects no pixel of the 480×480 image");
  const inner = { y0: h0, x0: w0, y1: h1 + 1, x1: w1 + 1 };
  const hc = (h0 + h1) / 2, wc = (w0 + w1) / 2;
  const lenm = Math.max(Math.trunc((h1 - h0 + 1) * 20 / 14), Math.trunc((w1 - w0 + 1) * 20 / 14));
  if (lenm >= size) return { crop: { y0: 0, x0: 0, y1: size, x1: size }, inner };
  let y0 = Math.trunc(hc - lenm / 2), x0 = Math.trunc(wc - lenm / 2);
  if (y0 < 0) y0 = 0;
  if (Math.trunc(hc + lenm / 2) >= size) y0 = size - lenm;
  if (x0 < 0) x0 = 0;
  if (Math.trunc(wc + lenm / 2) >= size) x0 = size - lenm;
  return { crop: { y0, x0, y1: y0 + lenm, x1: x0 + lenm }, inner };
}

/** Nearest-resize a square 0/1 mask to side×side and threshold at 0.5 (F.interpolate(...) >= 0.5). */
export function downsampleMask(mask: Uint8Array, side: number, outSide: number): Uint8Array {
  const f = resizeNearestChw(Float32Array.from(mask), { c: 1, h: side, w: side }, outSide, outSide);
  return Uint8Array.from(f, (v) => v >= 0.5 ? 1 : 0);
}

/**
 * BaseCompletion's reordered sequence: text, <start_of_image>, the kept codes (context), then the codes to fill in
 * raster order (-1), each run preceded by its known left neighbour. Positions: text 0.., 512, then 513 + cell.
 */
export function completionSequence(
  textIds: ArrayLike<number>,
  soi: number,
  codes: Int32Array,
  mask20: Uint8Array,
) {
  const pos0: number[] = [], pos1: number[] = [], tok0: number[] = [], tok1: number[] = [];
  for (let i = 0; i < 20; i++) {
    for (let j = 0; j < 20; j++) {
      const cell = i * 20 + j;
      if (mask20[cell]) {
        pos1.push(513 + cell);
        tok1.push(-1);
      } else if (j < 19 && mask20[cell + 1]) {
        pos1.push(513 + cell);
        tok1.push(codes[cell]);
      } else {
        pos0.push(513 + cell);
        tok0.push(codes[cell]);
      }
    }
  }
  const txtLen = textIds.length;
  const tokens = Int32Array.from([...Array.from(textIds), soi, ...tok0, ...tok1]);
  const positionIds = Int32Array.from([
    ...Array.from({ length: txtLen }, (_, i) => i),
    512,
    ...pos0,
    ...pos1,
  ]);
  const contextLength = positionIds.length - pos1.length;
  return { tokens, positionIds, txtLen, contextLength };
}

/** get_masks_and_position_ids_comp: causal, plus fill rows see all context codes, plus text sees all text. */
export function completionAttends(i: number, j: number, txtLen: number, contextLength: number): boolean {
  return j <= i || (i > txtLen && j > txtLen && j < contextLength) || (i < txtLen && j < txtLen);
}

/** Puts generated tokens back on the 20×20 grid (BaseCompletion's final loop). */
export function scatterCompletion(
  filled: Int32Array,
  positionIds: Int32Array,
  txtLen: number,
  codes: Int32Array,
) {
  const im = Int32Array.from(codes);
  for (let j = txtLen + 1; j < positionIds.length; j++) im[positionIds[j] - 513] = filled[j];
  return im;
}
