// The small CogLM cases the CogLM tests share (coglm_test, coglm_binding_test, int8_model_test): odd test dims, the
// image-token count, the CPU transformer's config of a dims, and one forward case (prompt + image rows, mask,
// positions, attn_plus) checked against the CPU transformer with the tolerances stated here. Not a test itself.
import assert from "node:assert/strict";
import { type CogLM, type TokenSampler } from "../../src/models/coglm.ts";
import type { GpuContext } from "../../src/gpu/context.ts";
import type { TransformerDims } from "../../src/models/transformer.ts";
import type { loadCpuWeights } from "../../src/reference/sr.ts";
import { coglmInputsRef, logitsRef, transformerForwardRef } from "../../src/reference/transformer.ts";
import { logWeightsRef } from "../../src/reference/attention.ts";
import { assertClose, rng } from "../_util.ts";

export { CogLM } from "../../src/models/coglm.ts";
export {
  loadTransformer,
  syntheticTransformerSource,
  type TransformerDims,
} from "../../src/models/transformer.ts";
export { loadCpuWeights } from "../../src/reference/sr.ts";
export {
  coglmInputsRef,
  coglmPerplexityRef,
  logitsRef,
  transformerForwardRef,
} from "../../src/reference/transformer.ts";
export { logWeightsRef } from "../../src/reference/attention.ts";

/** Rows 0..256 of the 303-row test vocabulary play the image tokens (the rest: text). */
export const IMAGE_TOKENS = 257;

/** Sandwich LayerNorm, head size 16 (divides the attention workgroup), hidden 48, odd inner 101. */
export const SANDWICH_48: TransformerDims = {
  numLayers: 2,
  hidden: 48,
  heads: 3,
  headDim: 16,
  inner: 101,
  vocab: 303,
  maxSeq: 530,
  eps: 1e-5,
  order: "sandwich",
};

/** The CPU transformer's config (reference/transformer.ts) of test dims. */
export function cpuConfig(d: TransformerDims) {
  return {
    num_layers: d.numLayers,
    hidden_size: d.hidden,
    num_attention_heads: d.heads,
    layernorm_epsilon: d.eps,
    layernorm_order: d.order,
  };
}

/**
 * One forward of 7 text + 12 image rows (CogLM's mask and positions, attn_plus 1.4 on the text columns) on the GPU
 * model and the CPU transformer: hidden states within 2e-4 + 1e-4·|x| (f32 accumulation; LayerNormed O(1) outputs
 * after 1-2 layers), logits within 1e-3 + 1e-4·|x|.
 */
export async function assertForwardMatchesCpu(
  ctx: GpuContext,
  m: CogLM,
  cpu: Awaited<ReturnType<typeof loadCpuWeights>>,
  dims: TransformerDims,
  label: string,
): Promise<void> {
  const txtLen = 7, L = 19;
  const r = rng(3);
  const tokens = Int32Array.from(
    { length: L },
    (_, i) =>
      i < txtLen ? IMAGE_TOKENS + Math.floor(r() * (dims.vocab - IMAGE_TOKENS)) : Math.floor(r() * 257),
  );
  const { mask, positionIds } = coglmInputsRef(L, txtLen);
  const hidden = m.forward(tokens, positionIds, {
    ctxCols: txtLen,
    logWeights: { cols: txtLen, value: 1.4 },
  });
  const want = transformerForwardRef(cpu, cpuConfig(dims), {
    tokens,
    positionIds,
    mask,
    logWeights: logWeightsRef(L, L, txtLen, 1.4),
  });
  assertClose(`hidden ${label}`, await ctx.readF32(hidden), want, { atol: 2e-4, rtol: 1e-4 });
  const lg = m.logits(hidden, { rows: L });
  assertClose(`logits ${label}`, await ctx.readF32(lg), logitsRef(cpu, want, L, IMAGE_TOKENS), {
    atol: 1e-3,
    rtol: 1e-4,
  });
  [hidden, lg].forEach((t) => t.release());
}

/**
 * The CPU greedy continuation of `textIds` (the last `textIds.length - txtLen` ids are image-side): `n` image tokens,
 * each the argmax of the first `imageTokens` logits of a full CPU forward of the sequence so far (attn_plus 1.4).
 */
export function greedyContinuationRef(
  cpu: Awaited<ReturnType<typeof loadCpuWeights>>,
  dims: TransformerDims,
  textIds: ArrayLike<number>,
  o: { txtLen: number; n: number; imageTokens: number },
): number[] {
  const seq = Array.from(textIds);
  for (let k = 0; k < o.n; k++) {
    const L = seq.length;
    const { mask, positionIds } = coglmInputsRef(L, o.txtLen);
    const hidden = transformerForwardRef(cpu, cpuConfig(dims), {
      tokens: seq,
      positionIds,
      mask,
      logWeights: logWeightsRef(L, L, o.txtLen, 1.4),
    });
    const lg = logitsRef(cpu, hidden.subarray((L - 1) * dims.hidden), 1, o.imageTokens);
    let best = 0;
    for (let i = 1; i < o.imageTokens; i++) if (lg[i] > lg[best]) best = i;
    seq.push(best);
  }
  return seq.slice(textIds.length);
}

/**
 * The completion fill (text, <start_of_image>, context codes, then holes with provided codes among them; per-row
 * prefix mask) against full CPU forwards: each hole's logits as the sampler saw them within 1e-3 + 1e-4·|x| (KV cache
 * f32) or 1e-2 (f16: K/V rounded to f16, relative 4.9e-4 per element; measured up to 3.2e-3 on these O(3) logits),
 * and each row filled with what was sampled for it. Token ids below 303 (every test vocabulary has them).
 */
export async function assertFillMatchesCpu(
  ctx: GpuContext,
  m: CogLM,
  cpu: Awaited<ReturnType<typeof loadCpuWeights>>,
  dims: TransformerDims,
  o: { imageTokens: number; kv: "f32" | "f16" },
): Promise<void> {
  const txtLen = 4, B = 2;
  // text, <start_of_image>, 5 context codes, then fill cells with provided "first of block" codes among them.
  const tokens = Int32Array.from([260, 281, 299, 270, 300, 11, 22, 33, 44, 55, 66, -1, -1, 77, -1, -1, -1]);
  const L = tokens.length, contextLength = 11;
  const positionIds = Int32Array.from(
    { length: L },
    (_, i) => i < txtLen ? i : i === txtLen ? 512 : 513 + ((i * 5) % 17),
  );
  const attends = (i: number, j: number) =>
    j <= i || (i > txtLen && j > txtLen && j < contextLength) || (i < txtLen && j < txtLen);
  const holes = [...tokens.keys()].filter((i) => tokens[i] < 0);
  const r = rng(17);
  const chosen = Int32Array.from({ length: holes.length * B }, () => Math.floor(r() * o.imageTokens));
  const rec = ctx.empty([holes.length, B, o.imageTokens]);
  const sampler: TokenSampler = (c, lg, s) => {
    c.copy(lg, { buffer: rec.buffer, offset: s.step * B * o.imageTokens * 4, size: B * o.imageTokens * 4 });
    for (let b = 0; b < B; b++) {
      c.write(
        s.out,
        chosen.subarray(s.step * B + b, s.step * B + b + 1),
        (s.outOffset + b * (s.outStride ?? 1)) * 4,
      );
    }
  };
  const out = await m.fill({
    tokens,
    positionIds,
    txtLen,
    contextLength,
    attends,
    batch: B,
    seed: 0,
    recipe: { attn_plus: 1.4 },
    sampler,
  });
  const seen = await ctx.readF32(rec);
  const mask = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) mask[i * L + j] = attends(i, j) ? 1 : 0;
  for (let b = 0; b < B; b++) {
    const want = Int32Array.from(tokens);
    holes.forEach((p, k) => want[p] = chosen[k * B + b]);
    assert.deepEqual([...out[b]], [...want]);
    const hidden = transformerForwardRef(cpu, cpuConfig(dims), {
      tokens: want,
      positionIds,
      mask,
      logWeights: logWeightsRef(L, L, txtLen, 1.4),
    });
    const all = logitsRef(cpu, hidden, L, o.imageTokens);
    holes.forEach((p, k) => {
      const row = k === 0 ? 0 : b;
      assertClose(
        `hole ${p} row ${b}`,
        seen.subarray((k * B + row) * o.imageTokens, (k * B + row + 1) * o.imageTokens),
        all.subarray((p - 1) * o.imageTokens, p * o.imageTokens),
        { atol: o.kv === "f16" ? 1e-2 : 1e-3, rtol: 1e-4 },
      );
    });
  }
  rec.release();
}
