// Layouts of the SR models (src/geometry/sr.ts) against the inputs the original code built for the golden cases.
import assert from "node:assert/strict";
import { readNpy } from "../../src/formats/npy.ts";
import {
  dsrInput,
  dsrMask,
  itersrInput,
  itersrMask,
  LOPAR_ROUNDS,
  loparRoundMask,
} from "../../src/geometry/sr.ts";
import { windowCells } from "../../src/reference/sr.ts";

const G = new URL("../testdata/cogview2-tiny/golden/", import.meta.url).pathname;
const npy = async (f: string) => Array.from((await readNpy(G + f + ".npy")).data);
const cfg = (layout: number[]) => ({ layout, kernel_size: 5, kernel_size2: 5, max_sequence_length: 1024 });
const BOI = 26000; // <start_of_image> of the tiny fixture's tokenizer

Deno.test("DSR input, positions and mask match dsr_forward", async () => {
  const c = cfg([96, 496, 4096]);
  const inp = dsrInput(c, await npy("dsr_forward.text_ids"), await npy("dsr_forward.lowres_tokens"), BOI);
  assert.deepEqual(Array.from(inp.tokens), await npy("dsr_forward.tokens"));
  assert.deepEqual(Array.from(inp.positionIds), await npy("dsr_forward.position_ids"));
  assert.deepEqual(Array.from(dsrMask(c, inp.nPad)), await npy("dsr_forward.attention_mask"));
});

Deno.test("iterative-SR input and mask match itersr_forward", async () => {
  const c = cfg([16, 3616]);
  const tokens = await npy("itersr_forward.tokens");
  const inp = itersrInput(c, await npy("itersr_forward.text_ids"), tokens.slice(16));
  assert.deepEqual(Array.from(inp.tokens), tokens);
  assert.deepEqual(Array.from(inp.positionIds), await npy("itersr_forward.position_ids"));
  assert.deepEqual(Array.from(itersrMask(c, inp.nPad)), await npy("itersr_forward.attention_mask"));
});

Deno.test("LoPAR round masks re-mask exactly the <start_of_image> slots of each golden round input", async () => {
  const rounds = await npy("itersr_lopar_greedy.round_inputs");
  for (let r = 0; r < LOPAR_ROUNDS; r++) {
    const m = loparRoundMask(60, r + 1);
    const inp = rounds.slice(r * 3616 + 16, (r + 1) * 3616);
    for (let i = 0; i < 3600; i++) if (m[i]) assert.equal(inp[i], BOI, `round ${r + 1} cell ${i}`);
  }
  // round 6 re-masks only the cells with mask_raw 6: 2 of 36 per tile
  assert.equal(loparRoundMask(60, 6).reduce((a, b) => a + b, 0), 200);
  // an input mask restricts the re-masked cells
  const keep = new Uint8Array(3600).fill(0, 0, 1800).fill(1, 1800);
  assert.ok(loparRoundMask(60, 1, keep).slice(0, 1800).every((v) => v === 0));
});

Deno.test("local windows: 9x5 own grid and 5x5 cross grid with out-of-grid cells", () => {
  const own = windowCells(0, 0, 60, 60, { kH: 9, kW: 5 });
  assert.equal(own.length, 45);
  assert.equal(own[4 * 5 + 2], 0); // centre
  assert.equal(own[0], -1);
  const cross = windowCells(59, 31, 60, 20, { kH: 5, kW: 5 });
  assert.equal(cross[2 * 5 + 2], 19 * 20 + 10); // centre cell (59//3, 31//3)
  assert.equal(cross[4 * 5 + 2], -1); // below the grid
});

Deno.test("LoPAR round masks: per-tile counts, nested rounds, the input mask, bad rounds and masks rejected", () => {
  // Values ≥ round in the 6×6 mask_raw: 23, 19, 15, 10, 6, 2 cells per tile (100 tiles on 60×60).
  const perTile = [23, 19, 15, 10, 6, 2];
  for (let round = 1; round <= LOPAR_ROUNDS; round++) {
    const m = loparRoundMask(60, round);
    assert.equal(m.reduce((s, v) => s + v, 0), perTile[round - 1] * 100, `round ${round}`);
    if (round > 1) {
      const prev = loparRoundMask(60, round - 1);
      for (let i = 0; i < 3600; i++) {
        if (m[i]) assert.equal(prev[i], 1, `round ${round} cell ${i} not in round ${round - 1}`);
      }
    }
  }
  assert.equal(loparRoundMask(60, 6)[2 * 60 + 5], 1); // mask_raw[2][5] = 6
  assert.equal(loparRoundMask(60, 6)[(6 + 2) * 60 + 6 + 5], 1); // tiled: the same cell of the next tile
  assert.equal(loparRoundMask(60, 1)[0], 0); // mask_raw[0][0] = -1
  const top = new Uint8Array(3600).fill(1, 0, 1800);
  const m = loparRoundMask(60, 1, top);
  assert.equal(m.subarray(1800).reduce((s, v) => s + v, 0), 0);
  assert.equal(m.reduce((s, v) => s + v, 0), 23 * 50);
  assert.throws(() => loparRoundMask(60, 0), /LoPAR round must be 1..6/);
  assert.throws(() => loparRoundMask(60, 7), /LoPAR round must be 1..6/);
  assert.throws(() => loparRoundMask(60, 1, new Uint8Array(10)), /10 entries, expected 3600/);
});
