// DSR and iterative SR where the activations exceed the max storage binding (#14): the same device with the binding
// limit lowered to 1 MiB, the tiny fixture models (4096 / 3616 rows × 64): the fused QKV output [rows, 192] (3 MiB),
// the MLP activations [rows, 256] and the 4 heads' score matrices of the 496 base-attention rows (3.9 MB) do not fit
// one binding, so q/k/v go to separate planes, matmuls run in row blocks and scores one head at a time. Numerics
// against the CPU forwards (src/reference/sr.ts).
import assert from "node:assert/strict";
import { GpuContext } from "../../src/gpu/context.ts";
import { DsrModel } from "../../src/models/dsr.ts";
import { ItersrModel } from "../../src/models/itersr.ts";
import { dsrMask, itersrInput, itersrMask } from "../../src/geometry/sr.ts";
import { dsrForwardCpu, itersrForwardCpu, loadCpuWeights } from "../../src/reference/sr.ts";
import { assertClose, sharedContext } from "../_util.ts";
import { fixtureModel, golden, goldenDsrInput } from "./_sr_fixture.ts";

const LIMIT = 2 ** 20;

async function limited(): Promise<GpuContext> {
  const shared = await sharedContext();
  return new GpuContext({
    ...shared.gpu,
    limits: { ...shared.gpu.limits, maxStorageBufferBindingSize: LIMIT },
  });
}

// GPU f32 accumulation vs the CPU's, LayerNormed O(1) outputs after 2 layers (as transformer_test).
const TOL = { atol: 2e-4, rtol: 1e-4 };

Deno.test("DSR forward at a 1 MiB binding limit matches the CPU DSR forward", async () => {
  const ctx = await limited();
  const md = await fixtureModel();
  const cfg = md.config.dsr;
  const src = await md.weights("dsr");
  const model = await DsrModel.load(ctx, src, cfg);
  const cpu = await loadCpuWeights(src);
  src.close();
  try {
    const inp = await goldenDsrInput(md);
    const L = cfg.layout[2], H = cfg.hidden_size;
    assert.ok(L * 3 * H * 4 > 2 * LIMIT, "the fused QKV output exceeds the limit");
    const mask = dsrMask(cfg, inp.nPad);
    const h = model.forward(inp.tokens, inp.positionIds, 1, mask);
    const got = await ctx.readF32(h);
    h.release();
    assertClose("DSR hidden at 1 MiB", got, dsrForwardCpu(cpu, cfg, { ...inp, mask }), TOL);
  } finally {
    model.release();
  }
});

Deno.test("iterative-SR forward at a 1 MiB binding limit matches the CPU iterative-SR forward", async () => {
  const ctx = await limited();
  const md = await fixtureModel();
  const cfg = md.config.itersr;
  const src = await md.weights("itersr");
  const model = await ItersrModel.load(ctx, src, cfg);
  const cpu = await loadCpuWeights(src);
  src.close();
  try {
    const tokens = await golden("itersr_forward.tokens");
    const inp = itersrInput(cfg, await golden("itersr_forward.text_ids"), tokens.slice(cfg.layout[0]));
    const mask = itersrMask(cfg, inp.nPad);
    const logW = Float32Array.from({ length: cfg.layout[0] }, (_, i) => (i % 3) * 0.25);
    assert.ok(
      inp.tokens.length * 3 * cfg.hidden_size * 4 > 2 * LIMIT,
      "the fused QKV output exceeds the limit",
    );
    const h = model.forward(inp.tokens, inp.positionIds, 1, mask, logW);
    const got = await ctx.readF32(h);
    h.release();
    const want = itersrForwardCpu(cpu, cfg, { ...inp, mask, logAttentionWeights: logW });
    assertClose("iterative-SR hidden at 1 MiB", got, want, TOL);
  } finally {
    model.release();
  }
});
