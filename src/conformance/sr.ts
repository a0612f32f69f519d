// Conformance kinds of the super-resolution stages: dsr_forward / itersr_forward (hidden states, logits statistics,
// logit rows of one forward), dsr_step_greedy (one greedy DSR step) and itersr_lopar_greedy (six greedy LoPAR rounds).
// Not the samplers' kinds (dsr_strategy: src/conformance/sampling.ts) nor local_attention (its kernel's file).
import type { GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { openModelDir, type SrConfig } from "../models/config.ts";
import { DsrModel } from "../models/dsr.ts";
import { ItersrModel } from "../models/itersr.ts";
import { dsrInput, dsrMask, itersrInput, itersrMask } from "../geometry/sr.ts";
import type { SrModel } from "../models/sr_common.ts";
import { argmaxRows, logProb } from "../kernels/softmax.ts";
import { SuperResolution } from "../pipeline/super_resolution.ts";
import { compareArrays } from "../reference/compare.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

const nums = (a: { data: ArrayLike<number> }) => Array.from(a.data);

function sameInts(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Largest |a − b| (NaN or Infinity when they cannot be compared: never within a tolerance). */
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => compareArrays(a, b, { atol: 0 }).maxAbs;

function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || !a.length) return 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) n++;
  return n / a.length;
}

/** The case's layout / kernel sizes must be the converted config's (the model is built from the config). */
function checkLayout(c: GoldenCase, cfg: SrConfig): string | null {
  const lay = c.inputs.layout;
  if (lay && !sameInts(lay, cfg.layout)) return `case layout [${lay}] != config layout [${cfg.layout}]`;
  for (const k of ["kernel_size", "kernel_size2"] as const) {
    if (c.inputs[k] !== undefined && c.inputs[k] !== cfg[k]) {
      return `case ${k} ${c.inputs[k]} != config ${cfg[k]}`;
    }
  }
  return null;
}

/** argmax and logsumexp of every row's image logits, computed in row blocks on the GPU. */
async function logitStats(
  ctx: GpuContext,
  net: SrModel<{ seqLen: number }>,
  hidden: Tensor,
  rows: number,
  imageTokens: number,
): Promise<{ argmax: Int32Array; lse: Float32Array }> {
  const block = net.logitsBlock(imageTokens);
  const am = ctx.empty([rows], "i32"), lp = ctx.empty([rows, 2]);
  const none = ctx.upload(new Int32Array(block).fill(-1), [block], "i32");
  for (let r0 = 0; r0 < rows; r0 += block) {
    const n = Math.min(block, rows - r0);
    const logits = net.logits(hidden, r0, n, imageTokens);
    argmaxRows(ctx, logits, { n: imageTokens, rows: n, out: am, oOff: r0 });
    const part = logProb(ctx, logits, none, { n: imageTokens, rows: n });
    ctx.copy(part, { buffer: lp.buffer, offset: lp.byteOffset + r0 * 8, size: n * 8 }, n * 8);
    part.release();
    logits.release();
  }
  const argmax = (await ctx.read(am)) as Int32Array;
  const lpv = await ctx.readF32(lp);
  for (const t of [am, lp, none]) t.release();
  const lse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) lse[r] = lpv[2 * r];
  return { argmax, lse };
}

async function forwardCase(c: GoldenCase, cx: CaseContext, which: "dsr" | "itersr"): Promise<CaseResult> {
  const ctx = cx.gpu;
  const md = await openModelDir(await cx.modelDir());
  const cfg = md.config[which];
  const bad = checkLayout(c, cfg);
  if (bad) return { pass: false, detail: bad };
  const inp = c.inputs;
  const tokens = Int32Array.from(nums(await cx.npy(inp.tokens)));
  const positions = Int32Array.from(nums(await cx.npy(inp.position_ids)));
  const mask = (await cx.npy(inp.attention_mask)).data;
  const logW = inp.log_attention_weights ? (await cx.npy(inp.log_attention_weights)).data : undefined;
  const textIds = nums(await cx.npy(inp.text_ids));
  const boi = md.config.image_tokens + md.config.tokenizer.pieces;
  // Our layout builder must reproduce the case's inputs exactly.
  let layoutOk: boolean;
  if (which === "dsr") {
    const b = dsrInput(cfg, textIds, nums(await cx.npy(inp.lowres_tokens)), boi);
    layoutOk = sameInts(b.tokens, tokens) && sameInts(b.positionIds, positions) &&
      sameInts(dsrMask(cfg, b.nPad), mask);
  } else {
    const hi = Array.from(tokens.subarray(cfg.layout[0]));
    const b = itersrInput(cfg, textIds, hi);
    layoutOk = sameInts(b.tokens, tokens) && sameInts(b.positionIds, positions) &&
      sameInts(itersrMask(cfg, b.nPad), mask);
  }
  const src = await md.weights(which);
  const model = which === "dsr" ? await DsrModel.load(ctx, src, cfg) : await ItersrModel.load(ctx, src, cfg);
  src.close();
  try {
    const hidden = model.forward(tokens, positions, 1, mask, logW);
    const L = tokens.length, H = cfg.hidden_size;
    const hv = await ctx.readF32(hidden);
    const { argmax, lse } = await logitStats(ctx, model, hidden, L, md.config.image_tokens);
    const rowsIdx = nums(await cx.npy(c.expected.logit_rows_index));
    const rowLogits: number[] = [];
    for (const r of rowsIdx) {
      const lg = model.logits(hidden, r, 1, md.config.image_tokens);
      rowLogits.push(...await ctx.readF32(lg));
      lg.release();
    }
    hidden.release();
    const tol = c.tolerance ?? {};
    const dh = maxAbs(hv, (await cx.npy(c.expected.hidden)).data);
    const dl = maxAbs(rowLogits, (await cx.npy(c.expected.logit_rows)).data);
    const dlse = maxAbs(lse, (await cx.npy(c.expected.logsumexp)).data);
    const expAm = (await cx.npy(c.expected.argmax)).data, gap = (await cx.npy(c.expected.top2_gap)).data;
    const gapMin = tol.argmax_exact_where_top2_gap_above ?? 1e-2;
    let amBad = 0, amChecked = 0;
    for (let i = 0; i < L; i++) {
      if (gap[i] > gapMin) {
        amChecked++;
        if (argmax[i] !== expAm[i]) amBad++;
      }
    }
    const pass = layoutOk && hv.length === L * H && dh <= tol.hidden_max_abs && dl <= tol.logits_max_abs &&
      dlse <= tol.logsumexp_max_abs && amBad === 0;
    return {
      pass,
      detail:
        `layout ${layoutOk ? "ok" : "DIFFERS"}; hidden max abs ${
          dh.toExponential(2)
        } (tol ${tol.hidden_max_abs}), ` +
        `logit rows ${dl.toExponential(2)} (tol ${tol.logits_max_abs}), logsumexp ${dlse.toExponential(2)} ` +
        `(tol ${tol.logsumexp_max_abs}), argmax ${amBad} wrong of ${amChecked} with gap > ${gapMin}`,
    };
  } finally {
    model.release();
  }
}

export const dsrForward = (c: GoldenCase, cx: CaseContext) => forwardCase(c, cx, "dsr");
export const itersrForward = (c: GoldenCase, cx: CaseContext) => forwardCase(c, cx, "itersr");

/** dsr_step_greedy: one DSR step with argmax decoding; agreement with the original's 3600 tokens. */
export async function dsrStepGreedy(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const inp = c.inputs;
  if ((inp.warmup_steps ?? 1) !== 1 || !sameInts(inp.block_hw ?? [1, 0], [1, 0])) {
    return { pass: false, detail: `only warmup_steps 1, block_hw (1, 0) (direct_sr.py) is implemented` };
  }
  const sr = await SuperResolution.load(cx.gpu, await cx.modelDir(), { maxResidentBytes: 0 });
  try {
    const [got] = await sr.directSr({
      textIds: Int32Array.from(nums(await cx.npy(inp.text_ids))),
      lowres: [Int32Array.from(nums(await cx.npy(inp.lowres_tokens)))],
      seed: 0,
      decode: "greedy",
    });
    const exp = nums(await cx.npy(c.expected.tokens));
    const a = agreement(got, exp), min = c.tolerance?.tokens_min_agreement ?? 1;
    return {
      pass: a >= min,
      detail: `token agreement ${(100 * a).toFixed(2)}% (min ${(100 * min).toFixed(1)}%)`,
    };
  } finally {
    sr.release();
  }
}

/** itersr_lopar_greedy: six LoPAR rounds with argmax decoding; round inputs and final tokens vs the original's. */
export async function itersrLoparGreedy(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const inp = c.inputs;
  const sr = await SuperResolution.load(cx.gpu, await cx.modelDir(), { maxResidentBytes: 0 });
  try {
    const rounds: Int32Array[] = [];
    const [got] = await sr.iterativeSr({
      textIds: Int32Array.from(nums(await cx.npy(inp.text_ids))),
      highres: [Int32Array.from(nums(await cx.npy(inp.highres_tokens)))],
      seed: 0,
      decode: "greedy",
      onRoundInput: (r, _b, t) => (rounds[r - 1] = t.slice()),
    });
    const expRounds = nums(await cx.npy(c.expected.round_inputs));
    const L = expRounds.length / rounds.length;
    const min = c.tolerance?.tokens_min_agreement ?? 1;
    let worstRound = 1;
    rounds.forEach((
      t,
      r,
    ) => (worstRound = Math.min(worstRound, agreement(t, expRounds.slice(r * L, (r + 1) * L)))));
    const a = agreement(got, nums(await cx.npy(c.expected.tokens)));
    return {
      pass: a >= min && worstRound >= min && rounds.length === 6,
      detail: `final token agreement ${(100 * a).toFixed(2)}%, worst round-input agreement ` +
        `${(100 * worstRound).toFixed(2)}% over ${rounds.length} rounds (min ${(100 * min).toFixed(1)}%)`,
    };
  } finally {
    sr.release();
  }
}
