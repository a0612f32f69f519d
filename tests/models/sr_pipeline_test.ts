// SuperResolution.directSr (src/pipeline/super_resolution.ts) with the cluster sampler: its draws are the CPU twin's
// on the model's own logits with the documented RNG rows, another seed draws others, batch-split independent.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readNpy } from "../../src/formats/npy.ts";
import { dsrInput, dsrMask } from "../../src/geometry/sr.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { clusterSampleCpu } from "../../src/reference/sampling.ts";
import { STREAM_DSR } from "../../src/sampling/rng.ts";
import { sharedContext } from "../_util.ts";
import { FIXTURE, fixtureModelDir, golden } from "./_sr_fixture.ts";

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
    const c = await sr.directSr({ textIds: text, lowres: [low], seed: 8 });
    assert.notDeepEqual(c[0], a[0], "seed 8 draws other codes than seed 7");
    // Sample 1's cells are the CPU cluster sampler's draws (recipe defaults: 100 clusters, temperature2 0.89) on the
    // DSR logits of that cell, with RNG row 1·3600 + cell of stream DSR, step 0.
    const model = await sr.dsrModel(), cfg = model.cfg, g = model.geometry;
    const labels = (await readNpy(join(FIXTURE, "cluster_label.npy"))).data as ArrayLike<number>;
    const inp = dsrInput(cfg, text, low2, sr.boi);
    const hidden = model.forward(inp.tokens, inp.positionIds, 1, dsrMask(cfg, inp.nPad));
    for (const cell of [0, 1, 59, 60, 1234, 2000, 3000, 3599]) {
      const lg = model.logits(hidden, g.s0 + cell, 1, sr.imageTokens);
      const x = await ctx.readF32(lg);
      lg.release();
      const cpu = clusterSampleCpu(x, 1, sr.imageTokens, labels, 500, {
        temperature: 1,
        temperature2: 0.89,
        topk: 100,
        seed: 7,
        step: 0,
        stream: STREAM_DSR,
        rowBase: 3600 + cell,
      });
      assert.equal(a[1][cell], cpu.ids[0], `sample 1 cell ${cell}`);
    }
    hidden.release();
  } finally {
    sr.release();
  }
});
