// The plain TypeScript SR forwards (src/reference/sr.ts) against the golden hidden states and logit rows.
import assert from "node:assert/strict";
import { dsrMask, itersrInput, itersrMask } from "../../src/geometry/sr.ts";
import { dsrForwardCpu, imageLogitsCpu, itersrForwardCpu, loadCpuWeights } from "../../src/reference/sr.ts";
import { fixtureModel, golden, goldenDsrInput, maxAbsDiff } from "./_sr_fixture.ts";

Deno.test("CPU DSR forward matches dsr_forward (hidden, logit rows)", async () => {
  const md = await fixtureModel();
  const cfg = md.config.dsr;
  const src = await md.weights("dsr");
  const w = await loadCpuWeights(src);
  src.close();
  const inp = await goldenDsrInput(md);
  const h = dsrForwardCpu(w, cfg, { ...inp, mask: dsrMask(cfg, inp.nPad) });
  const d = maxAbsDiff(h, await golden("dsr_forward.hidden"));
  assert.ok(d < 2e-3, `hidden max abs diff ${d}`);
  const rows = await golden("dsr_forward.logit_rows_index");
  const lg = imageLogitsCpu(w, h, cfg.hidden_size, rows, md.config.image_tokens);
  const dl = maxAbsDiff(lg, await golden("dsr_forward.logit_rows"));
  assert.ok(dl < 1e-2, `logit rows max abs diff ${dl}`);
});

Deno.test("CPU iterative-SR forward matches itersr_forward (hidden, logit rows)", async () => {
  const md = await fixtureModel();
  const cfg = md.config.itersr;
  const src = await md.weights("itersr");
  const w = await loadCpuWeights(src);
  src.close();
  const tokens = await golden("itersr_forward.tokens");
  const inp = itersrInput(cfg, await golden("itersr_forward.text_ids"), tokens.slice(cfg.layout[0]));
  assert.deepEqual(Array.from(inp.tokens), Array.from(tokens));
  const h = itersrForwardCpu(w, cfg, {
    ...inp,
    mask: itersrMask(cfg, inp.nPad),
    logAttentionWeights: new Float32Array(16),
  });
  const d = maxAbsDiff(h, await golden("itersr_forward.hidden"));
  assert.ok(d < 2e-3, `hidden max abs diff ${d}`);
  const rows = await golden("itersr_forward.logit_rows_index");
  const dl = maxAbsDiff(
    imageLogitsCpu(w, h, cfg.hidden_size, rows, md.config.image_tokens),
    await golden("itersr_forward.logit_rows"),
  );
  assert.ok(dl < 1e-2, `logit rows max abs diff ${dl}`);
});
