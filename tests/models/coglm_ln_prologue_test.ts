// CogLM decode steps with the layer norms folded into the GEMV prologues (choices.ts lnPrologue; the GPU route, run
// here through a context that reports a GPU adapter): each step's logits equal those of a full CPU forward of the
// sequence so far (within 1e-3 + 1e-4·|x|: f32 KV cache, f32 accumulation, as coglm_test's cached-step test), with
// the prologues and without, and 2·layers fewer dispatches per decode step with them (the last layer's chain goes
// into the logits GEMV).
import assert from "node:assert/strict";
import {
  CogLM,
  coglmInputsRef,
  cpuConfig,
  IMAGE_TOKENS,
  loadCpuWeights,
  loadTransformer,
  logitsRef,
  logWeightsRef,
  SANDWICH_48,
  syntheticTransformerSource,
  type TransformerDims,
  transformerForwardRef,
} from "./_coglm_case.ts";
import type { TokenSampler } from "../../src/models/coglm.ts";
import { CHOICES, choicesKey } from "../../src/kernels/choices.ts";
import { lnChainApplies } from "../../src/models/transformer.ts";
import { assertClose, rng, sharedContext } from "../_util.ts";

// Three layers: a chain into the middle layer's QKV, one into the last's, and the last layer's (fourth + final LN)
// into the logits GEMV.
const DIMS: TransformerDims = { ...SANDWICH_48, numLayers: 3 };

Deno.test("CogLM generate with LN prologues: each step's logits are a full CPU forward's; 2·layers fewer dispatches per step", async () => {
  const ctx = (await sharedContext()).withGpuSchedules();
  const src = syntheticTransformerSource(DIMS, { seed: 31, dtype: "f16" });
  const w = await loadTransformer(ctx, src, DIMS);
  const m = CogLM.fromWeights(ctx, DIMS, w, IMAGE_TOKENS);
  m.kvDtype = "f32";
  const cpu = await loadCpuWeights(src);
  const P = 5, txtLen = P - 1, B = 2, n = 4, L = P + n - 1;
  const r = rng(3);
  const textIds = Int32Array.from({ length: P }, () => 257 + Math.floor(r() * 46));
  const chosen = Int32Array.from({ length: n * B }, () => Math.floor(r() * IMAGE_TOKENS));
  // The CPU logits of every row of each batch row's whole sequence.
  const want = Array.from({ length: B }, (_, b) => {
    const tokens = Int32Array.from({ length: L }, (_, i) => i < P ? textIds[i] : chosen[(i - P) * B + b]);
    const { mask, positionIds } = coglmInputsRef(L, txtLen);
    const logWeights = logWeightsRef(L, L, txtLen, 1.4);
    return logitsRef(
      cpu,
      transformerForwardRef(cpu, cpuConfig(DIMS), { tokens, positionIds, mask, logWeights }),
      L,
      IMAGE_TOKENS,
    );
  });
  const key = choicesKey(ctx), saved = CHOICES[key].lnPrologue;
  const run = async (on: boolean) => {
    CHOICES[key].lnPrologue = on;
    assert.equal(lnChainApplies(ctx, DIMS, w, B), on);
    const rec = ctx.empty([n, B, IMAGE_TOKENS]), at: number[] = [];
    const sampler: TokenSampler = (c, lg, s) => {
      c.copy(lg, { buffer: rec.buffer, offset: s.step * B * IMAGE_TOKENS * 4, size: B * IMAGE_TOKENS * 4 });
      c.write(s.out, chosen.subarray(s.step * B, (s.step + 1) * B), s.outOffset * 4);
    };
    await m.generate({
      textIds,
      batch: B,
      seed: 0,
      recipe: { attn_plus: 1.4 },
      numTokens: n,
      sampler,
      onStep: (s) => at[s] = ctx.stats.dispatches,
    });
    const seen = await ctx.readF32(rec);
    rec.release();
    for (let k = 1; k < n; k++) { // step 0 is the prompt pass's
      for (let b = 0; b < B; b++) {
        const row = P - 1 + k;
        assertClose(
          `prologue ${on}: step ${k} row ${b}`,
          seen.subarray((k * B + b) * IMAGE_TOKENS, (k * B + b + 1) * IMAGE_TOKENS),
          want[b].subarray(row * IMAGE_TOKENS, (row + 1) * IMAGE_TOKENS),
          { atol: 1e-3, rtol: 1e-4 },
        );
      }
    }
    return at[3] - at[2]; // the dispatches of decode step 2
  };
  try {
    const off = await run(false), on = await run(true);
    assert.equal(off - on, 2 * DIMS.numLayers, `dispatches per step: ${off} without, ${on} with`);
  } finally {
    CHOICES[key].lnPrologue = saved;
    m.release();
  }
});
