// Conformance handlers for the CogLM kinds: coglm_forward (one non-cached forward: hidden, logits statistics),
// coglm_generate_greedy (KV-cached batched filling_sequence with argmax) and coglm_perplexity (post-selection).
// Not the sampling strategy (coglm_strategy belongs to the sampling module). Every size comes from the case/config.

import { CogLM, greedySampler } from "../models/coglm.ts";
import { logitsBlockRows } from "../models/transformer.ts";
import type { GpuContext } from "../gpu/context.ts";
import { compareArrays } from "../reference/compare.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

const models = new WeakMap<GpuContext, Map<string, Promise<CogLM>>>();

/** The converted fixture's CogLM, loaded once per context and model directory. */
async function coglmOf(cx: CaseContext): Promise<CogLM> {
  let m = models.get(cx.gpu);
  if (!m) models.set(cx.gpu, m = new Map());
  const dir = await cx.modelDir();
  let p = m.get(dir);
  if (!p) {
    p = CogLM.load(cx.gpu, dir);
    m.set(dir, p);
  }
  return p;
}

function num(c: GoldenCase, obj: Record<string, unknown> | undefined, key: string): number {
  const v = Number(obj?.[key]);
  if (!Number.isFinite(v)) throw new Error(`${c.case}: ${key} missing or not a number`);
  return v;
}

/** Checks that a dense 0/1 mask is the CogLM family: row i sees j < max(ctxCols, i + 1). */
function maskMismatch(mask: ArrayLike<number>, rows: number, ctxCols: number): string | null {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < rows; j++) {
      const want = j < ctxCols || j <= i ? 1 : 0;
      if (mask[i * rows + j] !== want) return `mask[${i},${j}] = ${mask[i * rows + j]}, expected ${want}`;
    }
  }
  return null;
}

function verdict(parts: { ok: boolean; text: string }[]): CaseResult {
  return {
    pass: parts.every((p) => p.ok),
    detail: parts.map((p) => (p.ok ? "" : "FAIL ") + p.text).join("; "),
  };
}

/** coglm_forward: hidden (final LN output), per-position logsumexp / argmax over the image logits, full rows. */
export async function coglmForward(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const tol = c.tolerance ?? {};
  const [tokens, pos, mask, logw] = await Promise.all(
    ["tokens", "position_ids", "attention_mask", "log_attention_weights"].map((k) => cx.npy(c.inputs[k])),
  );
  const [eh, ea, eg, el, eri, er] = await Promise.all(
    ["hidden", "argmax", "top2_gap", "logsumexp", "logit_rows_index", "logit_rows"].map((k) =>
      cx.npy(c.expected[k])
    ),
  );
  const L = tokens.data.length,
    txtLen = num(c, c.inputs, "txt_len"),
    attnPlus = num(c, c.inputs, "attn_plus");
  const bad = maskMismatch(mask.data, L, txtLen);
  if (bad) {
    return { pass: false, detail: `attention_mask is not the CogLM mask for txt_len ${txtLen}: ${bad}` };
  }
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const want = j < txtLen ? attnPlus : 0;
      if (Math.abs(logw.data[i * L + j] - want) > 1e-6) {
        return {
          pass: false,
          detail: `log_attention_weights[${i},${j}] = ${logw.data[i * L + j]}, expected ${want}`,
        };
      }
    }
  }
  const m = await coglmOf(cx);
  const ctx = cx.gpu;
  const W = er.shape[er.shape.length - 1];
  const hidden = m.forward(Int32Array.from(tokens.data), Int32Array.from(pos.data), {
    ctxCols: txtLen,
    logWeights: { cols: txtLen, value: attnPlus },
  });
  // Logits in row blocks that each fit one storage binding ([L, W] f32 may not).
  const gl = new Float32Array(L * W);
  const block = logitsBlockRows(ctx, W);
  for (let r0 = 0; r0 < L; r0 += block) {
    const n = Math.min(block, L - r0);
    const lg = m.logits(hidden, { rows: n, aOff: r0 * m.dims.hidden, cols: W });
    gl.set((await ctx.readF32(lg)).subarray(0, n * W), r0 * W);
    lg.release();
  }
  const gh = (await ctx.readF32(hidden)).slice();
  hidden.release();

  const parts: { ok: boolean; text: string }[] = [];
  const rh = compareArrays(gh, eh.data, { atol: num(c, tol, "hidden_max_abs") });
  parts.push({ ok: rh.ok, text: `hidden ${rh.summary}` });
  const lse = new Float32Array(L), amax = new Int32Array(L);
  for (let i = 0; i < L; i++) {
    const row = gl.subarray(i * W, (i + 1) * W);
    let mx = -Infinity, bi = 0;
    for (let j = 0; j < W; j++) if (row[j] > mx) mx = row[j], bi = j;
    let s = 0;
    for (let j = 0; j < W; j++) s += Math.exp(row[j] - mx);
    lse[i] = mx + Math.log(s);
    amax[i] = bi;
  }
  const rl = compareArrays(lse, el.data, { atol: num(c, tol, "logsumexp_max_abs") });
  parts.push({ ok: rl.ok, text: `logsumexp ${rl.summary}` });
  const gapMin = num(c, tol, "argmax_exact_where_top2_gap_above");
  let checked = 0, wrong = 0, first = "";
  for (let i = 0; i < L; i++) {
    if (!(eg.data[i] > gapMin)) continue;
    checked++;
    if (amax[i] !== ea.data[i]) {
      wrong++;
      first ||= ` first at ${i}: ${amax[i]} vs ${ea.data[i]} (gap ${eg.data[i]})`;
    }
  }
  parts.push({
    ok: wrong === 0,
    text: `argmax ${checked - wrong}/${checked} exact where gap > ${gapMin}${first}`,
  });
  const rows = new Float32Array(eri.data.length * W);
  eri.data.forEach((r, k) => rows.set(gl.subarray(r * W, (r + 1) * W), k * W));
  const rr = compareArrays(rows, er.data, { atol: num(c, tol, "logits_max_abs") });
  parts.push({ ok: rr.ok, text: `logit rows ${rr.summary}` });
  return verdict(parts);
}

/** coglm_generate_greedy: the batch's 400 argmax tokens after the text, exactly. */
export async function coglmGenerateGreedy(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const [textIds, expected] = await Promise.all([cx.npy(c.inputs.text_ids), cx.npy(c.expected.tokens)]);
  const gaps = c.expected.min_top2_gap_per_step ? await cx.npy(c.expected.min_top2_gap_per_step) : null;
  const B = num(c, c.inputs, "batch_size"), n = num(c, c.inputs, "num_image_tokens");
  const P = textIds.data.length, rowLen = expected.shape[expected.shape.length - 1];
  if (rowLen !== P + n || expected.data.length !== B * rowLen) {
    throw new Error(`${c.case}: expected tokens [${expected.shape}] do not hold ${B} × (${P} + ${n})`);
  }
  const m = await coglmOf(cx);
  const out = await m.generate({
    textIds: Int32Array.from(textIds.data),
    batch: B,
    seed: 0,
    recipe: { attn_plus: num(c, c.inputs, "attn_plus") },
    numTokens: n,
    sampler: greedySampler,
  });
  let wrong = 0, first = "";
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < n; k++) {
      const want = expected.data[b * rowLen + P + k];
      if (out[b][k] !== want) {
        wrong++;
        first ||= ` first at row ${b} step ${k}: ${out[b][k]} vs ${want}` +
          (gaps ? ` (recorded top-2 gap ${gaps.data[k]})` : "");
      }
    }
    for (let i = 0; i < P; i++) {
      if (expected.data[b * rowLen + i] !== textIds.data[i]) {
        throw new Error(`${c.case}: expected row ${b} does not start with text_ids`);
      }
    }
  }
  return {
    pass: wrong === 0,
    detail: `${B * n - wrong}/${B * n} tokens exact${first}`,
  };
}

/** coglm_perplexity: inverse-prompting scores of the image samples given the caption. */
export async function coglmPerplexity(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const [img, caption, tokens, pos, mask, lossMask, expected] = await Promise.all(
    ["image_tokens", "caption_ids", "tokens", "position_ids", "attention_mask", "loss_mask"].map((k) =>
      cx.npy(c.inputs[k])
    ).concat([cx.npy(c.expected.scores)]),
  );
  const B = img.shape[0], nImg = img.shape[1], Lc = caption.data.length, L = nImg + Lc;
  // The inputs as the original built them must be the sequence CogLM.perplexity builds.
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      const want = i < nImg ? img.data[b * nImg + i] : caption.data[i - nImg];
      if (tokens.data[b * L + i] !== want) {
        throw new Error(`${c.case}: tokens[${b},${i}] is not image tokens + caption`);
      }
    }
  }
  for (let i = 0; i < L; i++) {
    if (pos.data[i] !== (i < nImg ? 513 + i : i - nImg)) {
      throw new Error(`${c.case}: position_ids[${i}] = ${pos.data[i]}`);
    }
    if (lossMask.data[i] !== (i > nImg ? 1 : 0)) {
      throw new Error(`${c.case}: loss_mask[${i}] = ${lossMask.data[i]}`);
    }
  }
  const bad = maskMismatch(mask.data, L, nImg);
  if (bad) return { pass: false, detail: `attention_mask is not image-visible + causal: ${bad}` };
  const m = await coglmOf(cx);
  const samples = Array.from(
    { length: B },
    (_, b) => Int32Array.from(img.data.subarray(b * nImg, (b + 1) * nImg)),
  );
  const scores = await m.perplexity(samples, Int32Array.from(caption.data));
  const r = compareArrays(scores, expected.data, { atol: num(c, c.tolerance, "scores_max_abs") });
  return { pass: r.ok, detail: `scores ${r.summary}` };
}
