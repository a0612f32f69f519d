// GPU DSR and iterative-SR forwards (src/models/dsr.ts, itersr.ts) against the golden hidden states, batched.
import assert from "node:assert/strict";
import { DsrModel } from "../../src/models/dsr.ts";
import { ItersrModel } from "../../src/models/itersr.ts";
import { dsrMask, itersrInput, itersrMask } from "../../src/geometry/sr.ts";
import { sharedContext } from "../_util.ts";
import { fixtureModel, golden, goldenDsrInput, maxAbsDiff } from "./_sr_fixture.ts";

Deno.test("GPU DSR forward, batch 2, matches dsr_forward hidden in both sequences", async () => {
  const ctx = await sharedContext();
  const md = await fixtureModel();
  const cfg = md.config.dsr;
  const src = await md.weights("dsr");
  const model = await DsrModel.load(ctx, src, cfg);
  src.close();
  try {
    const inp = await goldenDsrInput(md);
    const L = cfg.layout[2];
    const tokens = new Int32Array(2 * L), pos = new Int32Array(2 * L);
    for (let b = 0; b < 2; b++) {
      tokens.set(inp.tokens, b * L);
      pos.set(inp.positionIds, b * L);
    }
    const h = model.forward(tokens, pos, 2, dsrMask(cfg, inp.nPad));
    const got = await ctx.readF32(h);
    h.release();
    const exp = await golden("dsr_forward.hidden");
    for (let b = 0; b < 2; b++) {
      const d = maxAbsDiff(got.subarray(b * exp.length, (b + 1) * exp.length), exp);
      assert.ok(d < 2e-3, `sequence ${b}: hidden max abs diff ${d}`);
    }
  } finally {
    model.release();
  }
});

Deno.test("GPU iterative-SR forward matches itersr_forward hidden", async () => {
  const ctx = await sharedContext();
  const md = await fixtureModel();
  const cfg = md.config.itersr;
  const src = await md.weights("itersr");
  const model = await ItersrModel.load(ctx, src, cfg);
  src.close();
  try {
    const tokens = await golden("itersr_forward.tokens");
    const inp = itersrInput(cfg, await golden("itersr_forward.text_ids"), tokens.slice(cfg.layout[0]));
    const h = model.forward(
      inp.tokens,
      inp.positionIds,
      1,
      itersrMask(cfg, inp.nPad),
      new Float32Array(cfg.layout[0]),
    );
    const got = await ctx.readF32(h);
    h.release();
    const d = maxAbsDiff(got, await golden("itersr_forward.hidden"));
    assert.ok(d < 2e-3, `hidden max abs diff ${d}`);
  } finally {
    model.release();
  }
});
