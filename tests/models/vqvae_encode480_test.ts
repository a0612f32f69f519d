// Vqvae.encode on the demo model when the encoder's mid attention cannot hold its full score matrix in one binding.
// At 480×480 the 120×120 map has 14400 positions (a 829 MB score matrix, over lavapipe's 128 MiB binding); that run
// takes minutes on lavapipe (about 6 min on a busy 2-core machine), so here a 160×160 encode (40×40 = 1600 positions) is
// forced into query-row blocks by a small score limit and compared with the same encode in one block. The 480 run: COGVIEW2_SLOW_TESTS=1.

import assert from "node:assert/strict";
import { ensureDemoModel } from "../../src/demo/model.ts";
import { sharedContext } from "../../src/gpu/context.ts";
import { Vqvae } from "../../src/models/vqvae.ts";
import { assertClose, rng } from "../_util.ts";

const root = new URL("../../", import.meta.url).pathname;
const slow = Deno.env.get("COGVIEW2_SLOW_TESTS") === "1";
const opts = { sanitizeResources: false, sanitizeOps: false };

/** A smooth image with some texture, values in [0, 1]. */
function image(side: number, seed: number): Float32Array {
  const r = rng(seed);
  const img = new Float32Array(3 * side * side);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const v = 0.5 + 0.3 * Math.sin((x + 7 * c) / 9) * Math.cos(y / 13) + 0.1 * (r() - 0.5);
        img[(c * side + y) * side + x] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return img;
}

async function load(): Promise<Vqvae> {
  const ctx = await sharedContext();
  return await Vqvae.load(ctx, await ensureDemoModel({ dir: `${root}.cache/demo` }));
}

Deno.test({
  name:
    "vqvae (demo model): 160×160 encode with the mid attention in forced query-row blocks equals the one-block encode",
  ...opts,
  fn: async () => {
    const vq = await load();
    const side = 160, n = (side / 4) ** 2; // the encoder's mid attention runs at 1/4 resolution
    const img = image(side, 5);
    vq.attentionMaxScoreBytes = undefined;
    const one = await vq.encodeDetailed(img, side, side);
    // 4·n·211 bytes: blocks of 211 rows, the last one short (1600 = 7·211 + 123).
    vq.attentionMaxScoreBytes = 4 * n * 211 + 1;
    const blocked = await vq.encodeDetailed(img, side, side);
    vq.attentionMaxScoreBytes = undefined;
    assert.equal(blocked.best.length, (side / vq.rate) ** 2);
    assertClose("z_e blocked vs one block", blocked.ze, one.ze, { atol: 1e-5, rtol: 1e-5 });
    // Codes agree except at near-ties of the one-block search.
    for (let i = 0; i < one.best.length; i++) {
      if (one.gap[i] > 1e-3) assert.equal(blocked.best[i], one.best[i], `code ${i}`);
    }
  },
});

Deno.test({
  name: "vqvae (demo model): 480×480 encode (14400-position mid attention over the binding limit) — slow",
  ignore: !slow,
  ...opts,
  fn: async () => {
    const vq = await load();
    const t0 = performance.now();
    const codes = await vq.encode(image(480, 9), 480, 480);
    console.log(`480×480 encode: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(codes.length, 3600);
    assert.ok(codes.every((c) => c >= 0 && c < vq.arch.nEmbed));
  },
});
