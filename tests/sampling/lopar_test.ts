import assert from "node:assert/strict";
import {
  applyRound,
  ITERSR_TOPKS,
  loparMask,
  loparTopk,
  MASK_RAW,
  tiledMaskRaw,
} from "../../src/sampling/lopar.ts";

Deno.test("lopar: mask_raw tiled over 60×60 and the per-round masks", () => {
  assert.equal(MASK_RAW.length, 36);
  const t = tiledMaskRaw();
  assert.equal(t.length, 3600);
  // the original's flattening of view(1,6,1,6).expand(10,6,10,6): index ((a·6+i)·10+b)·6+j holds mask_raw[i][j]
  for (let a = 0; a < 10; a += 3) {
    for (let i = 0; i < 6; i++) {
      for (let b = 0; b < 10; b += 4) {
        for (let j = 0; j < 6; j++) assert.equal(t[((a * 6 + i) * 10 + b) * 6 + j], MASK_RAW[i * 6 + j]);
      }
    }
  }
  // counts per 6×6 tile of values ≥ round
  const perTile = [23, 19, 15, 10, 6, 2];
  for (let round = 1; round <= 6; round++) {
    const m = loparMask(round);
    assert.equal(m.reduce((s, v) => s + v, 0), perTile[round - 1] * 100, `round ${round}`);
    // later rounds re-predict a subset of earlier ones
    if (round > 1) {
      const prev = loparMask(round - 1);
      for (let i = 0; i < 3600; i++) if (m[i]) assert.equal(prev[i], 1);
    }
  }
  assert.equal(loparMask(6)[2 * 60 + 5], 1); // mask_raw[2][5] = 6
  assert.equal(loparMask(1)[0], 0); // mask_raw[0][0] = -1
  assert.throws(() => loparMask(0));
  assert.throws(() => loparMask(7));
});

Deno.test("lopar: input mask, top-k per round, applying a round", () => {
  const input = new Uint8Array(3600);
  for (let i = 0; i < 1800; i++) input[i] = 1; // top half only
  const m = loparMask(1, input);
  assert.equal(m.subarray(1800).reduce((s, v) => s + v, 0), 0);
  assert.equal(m.reduce((s, v) => s + v, 0), 23 * 50);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(loparTopk), [40, 40, 40, 20, 20, 10]);
  assert.equal(ITERSR_TOPKS[0], 60);
  const tokens = Int32Array.from([1, 2, 3, 4]);
  applyRound(tokens, [9, 9, 9, 9], [0, 1, 0, 1]);
  assert.deepEqual([...tokens], [1, 9, 3, 9]);
});
