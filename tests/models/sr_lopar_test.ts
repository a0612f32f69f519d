// SuperResolution.iterativeSr (src/pipeline/super_resolution.ts) with the top-k sampler: an input mask keeps the codes
// outside it, progress per round, aborts, swapped (non-resident) models.
import assert from "node:assert/strict";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { sharedContext } from "../_util.ts";
import { fixtureModelDir, golden } from "./_sr_fixture.ts";

Deno.test("iterativeSr: input mask keeps the codes outside it; aborts stop the job", async () => {
  const ctx = await sharedContext();
  const sr = await SuperResolution.load(ctx, await fixtureModelDir(), { maxResidentBytes: 0 });
  try {
    assert.ok(!sr.resident, "a zero budget swaps the models");
    const text = Int32Array.from(await golden("itersr_lopar_greedy.text_ids"));
    const high = Int32Array.from(await golden("itersr_forward.highres_tokens"));
    const mask = new Uint8Array(3600);
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 60; j++) {
        mask[i * 60 + j] = i >= 20 && i < 45 && j >= 10 ? 1 : 0;
      }
    }
    const steps: number[] = [];
    const [out] = await sr.iterativeSr({
      textIds: text,
      highres: [high],
      inputMask: mask,
      seed: 3,
      onStep: (s) => steps.push(s),
    });
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
    let changed = 0;
    for (let i = 0; i < 3600; i++) {
      assert.ok(out[i] >= 0 && out[i] < 20000);
      if (!mask[i]) assert.equal(out[i], high[i], `cell ${i} outside the mask changed`);
      else if (out[i] !== high[i]) changed++;
    }
    assert.ok(changed > 0, "LoPAR re-predicted some masked cells");
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      sr.iterativeSr({ textIds: text, highres: [high], seed: 3, signal: ac.signal }),
      (e) => e instanceof DOMException && e.name === "AbortError",
    );
  } finally {
    sr.release();
  }
});
