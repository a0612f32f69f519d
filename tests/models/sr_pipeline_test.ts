// SuperResolution.directSr (src/pipeline/super_resolution.ts) with the cluster sampler: seeded, batch-split independent.
import assert from "node:assert/strict";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { sharedContext } from "../_util.ts";
import { fixtureModelDir, golden } from "./_sr_fixture.ts";

Deno.test("directSr: 3600 image codes per sample, same seed → same codes whatever the batch split", async () => {
  const ctx = await sharedContext();
  const dir = await fixtureModelDir();
  const sr = await SuperResolution.load(ctx, dir, { maxBatch: 2 });
  try {
    assert.ok(sr.resident, "the tiny models fit together");
    const text = Int32Array.from(await golden("dsr_forward.text_ids"));
    const low = Int32Array.from(await golden("dsr_forward.lowres_tokens"));
    const low2 = low.map((v, i) => (i % 7 === 3 ? (v + 101) % 20000 : v));
    const steps: number[] = [];
    const a = await sr.directSr({
      textIds: text,
      lowres: [low, low2],
      seed: 7,
      onStep: (s) => steps.push(s),
    });
    assert.deepEqual(steps, [1]);
    assert.equal(a.length, 2);
    for (const x of a) {
      assert.equal(x.length, 3600);
      assert.ok(x.every((v) => v >= 0 && v < 20000));
    }
    // one sequence per forward: the same codes (RNG rows are keyed by the sample's index in the call)
    sr.maxBatch = 1;
    const b = await sr.directSr({ textIds: text, lowres: [low], seed: 7 });
    assert.deepEqual(b[0], a[0]);
  } finally {
    sr.release();
  }
});
