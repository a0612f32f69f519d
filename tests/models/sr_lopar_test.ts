// SuperResolution.iterativeSr (src/pipeline/super_resolution.ts) with the top-k sampler: an input mask keeps the codes
// outside it, progress per round, aborts, swapped (non-resident) models.
import assert from "node:assert/strict";
import { itersrInput, itersrMask, LOPAR_TOPKS, loparRoundMask } from "../../src/geometry/sr.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { topkSampleCpu } from "../../src/reference/sampling.ts";
import { STREAM_TOPK } from "../../src/sampling/rng.ts";
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

Deno.test("iterativeSr: round 1's draws are the CPU top-k sampler's on the model's logits, RNG row = rank of the cell", async () => {
  const ctx = await sharedContext();
  const sr = await SuperResolution.load(ctx, await fixtureModelDir());
  try {
    const text = Int32Array.from(await golden("itersr_lopar_greedy.text_ids"));
    const high = Int32Array.from(await golden("itersr_forward.highres_tokens"));
    const rounds: Int32Array[] = [];
    await sr.iterativeSr({
      textIds: text,
      highres: [high],
      seed: 3,
      onRoundInput: (r, _b, t) => (rounds[r - 1] = t.slice()),
    });
    const model = await sr.itersrModel(), cfg = model.cfg, T = model.geometry.textLen;
    // Round 1 predicts the <start_of_image> cells of its input, in ascending order (RNG rows 0, 1, ...); the cells
    // that round 2 does not re-mask carry round 1's draw in round 2's input.
    const in1 = rounds[0].subarray(T), in2 = rounds[1].subarray(T);
    const predicted = [...in1.keys()].filter((i) => in1[i] === sr.boi);
    const m2 = loparRoundMask(60, 2);
    const kept = predicted.filter((i) => !m2[i]);
    assert.ok(kept.length > 0, "round 1 predicts cells that round 2 keeps");
    const inp = itersrInput(cfg, text, in1);
    const hidden = model.forward(
      inp.tokens,
      inp.positionIds,
      1,
      itersrMask(cfg, inp.nPad),
      new Float32Array(T),
    );
    for (const cell of kept.filter((_, k) => k % Math.ceil(kept.length / 8) === 0)) {
      const lg = model.logits(hidden, T + cell, 1, sr.imageTokens);
      const x = await ctx.readF32(lg);
      lg.release();
      const cpu = topkSampleCpu(x, 1, sr.imageTokens, {
        topk: LOPAR_TOPKS[1],
        seed: 3,
        step: 1,
        stream: STREAM_TOPK,
        rowBase: predicted.indexOf(cell),
      });
      assert.equal(in2[cell], cpu.ids[0], `cell ${cell}`);
    }
    hidden.release();
    assert.equal(
      loparRoundMask(60, 1).reduce((a, v) => a + v, 0),
      predicted.length,
      "round 1 re-masks its cells",
    );
  } finally {
    sr.release();
  }
});
