// The int8 column of `deno task conformance DIR --weights int8`: the same fixture inputs through the f16 model and
// the int8 model (both converted by the project's converter), compared with each other, not with the goldens:
// CogLM logit max-abs and KL divergence per position (coglm_forward inputs), greedy-token agreement over the
// coglm_generate_greedy cases' steps, SR token agreement (dsr_step_greedy, itersr_lopar_greedy inputs), and the PSNR
// of the VQ-VAE decodes of the two CogLM token grids. A report, not a verdict: pass/fail stays with the cases.
import { join } from "node:path";
import type { GpuContext } from "../gpu/context.ts";
import { readNpy } from "../formats/npy.ts";
import { CogLM, greedySampler } from "../models/coglm.ts";
import { loadTransformer, satTransformerShapes, type TransformerDims } from "../models/transformer.ts";
import { randomWeightSource } from "../models/random_weights.ts";
import { quantizedSource } from "../formats/int8.ts";
import type { WeightSource } from "../formats/weights.ts";
import { Vqvae } from "../models/vqvae.ts";
import { SuperResolution } from "../pipeline/super_resolution.ts";
import { listCases } from "./runner.ts";

/** One line of the report. */
export interface QualityRow {
  metric: string;
  value: number;
  unit: string;
  /** The case or inputs it was measured on. */
  on: string;
}

const ints = (a: { data: ArrayLike<number> }) => Int32Array.from(Array.from(a.data));

function agreement(a: ArrayLike<number>, b: ArrayLike<number>): { frac: number; first: number } {
  let same = 0, first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) same++;
    else if (first < 0) first = i;
  }
  return { frac: a.length ? same / a.length : 0, first };
}

/** log-softmax of one row (float64). */
function logSoftmax(row: Float32Array): Float64Array {
  let mx = -Infinity;
  for (const v of row) mx = Math.max(mx, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - mx);
  const lse = mx + Math.log(s);
  return Float64Array.from(row, (v) => v - lse);
}

/** PSNR in dB of two images in [0, 1] (values clamped first), peak 1. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let se = 0;
  const c = (x: number) => Math.min(1, Math.max(0, x));
  for (let i = 0; i < a.length; i++) se += (c(a[i]) - c(b[i])) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

/** Per-position comparison of two [L, W] logit matrices: max |a−b|, KL(a‖b) summed and max, argmax agreement. */
export function compareLogits(a: Float32Array, b: Float32Array, L: number) {
  const W = a.length / L;
  let maxAbs = 0, klSum = 0, klMax = 0, argSame = 0;
  for (let i = 0; i < L; i++) {
    const ra = a.subarray(i * W, (i + 1) * W), rb = b.subarray(i * W, (i + 1) * W);
    const pa = logSoftmax(ra), pb = logSoftmax(rb);
    let kl = 0, ia = 0, ib = 0;
    for (let j = 0; j < W; j++) {
      maxAbs = Math.max(maxAbs, Math.abs(ra[j] - rb[j]));
      kl += Math.exp(pa[j]) * (pa[j] - pb[j]);
      if (ra[j] > ra[ia]) ia = j;
      if (rb[j] > rb[ib]) ib = j;
    }
    klSum += kl;
    klMax = Math.max(klMax, kl);
    if (ia === ib) argSame++;
  }
  return { maxAbs, klSum, klMax, argSame };
}

/**
 * Runs the comparison; `refDir` and `int8Dir` are converted model directories of the same fixture (f16 and int8).
 * Rows arrive through `onRow` as they are measured.
 */
export async function int8Quality(
  fixtureDir: string,
  gpu: GpuContext,
  o: { refDir: string; int8Dir: string; onRow?: (r: QualityRow) => void },
): Promise<QualityRow[]> {
  const rows: QualityRow[] = [];
  const add = (r: QualityRow) => (rows.push(r), o.onRow?.(r));
  const cases = await listCases(fixtureDir);
  const npy = (ref: string | { npy: string }) =>
    readNpy(join(fixtureDir, "golden", typeof ref === "string" ? ref : ref.npy));
  const byKind = (k: string) => cases.filter((c) => c.kind === k);

  // CogLM: logits on the forward case's inputs; greedy generations (tokens kept for the image decode).
  const grids: { on: string; ref: Int32Array; q: Int32Array }[] = [];
  {
    const ref = await CogLM.load(gpu, o.refDir), q = await CogLM.load(gpu, o.int8Dir);
    try {
      for (const c of byKind("coglm_forward")) {
        const [tokens, pos] = await Promise.all([npy(c.inputs.tokens), npy(c.inputs.position_ids)]);
        const L = tokens.data.length,
          txtLen = Number(c.inputs.txt_len),
          attnPlus = Number(c.inputs.attn_plus);
        const logits = async (m: CogLM) => {
          const h = m.forward(ints(tokens), ints(pos), {
            ctxCols: txtLen,
            logWeights: { cols: txtLen, value: attnPlus },
          });
          const lg = m.logits(h, { rows: L });
          const v = (await gpu.readF32(lg)).slice();
          h.release(), lg.release();
          return v;
        };
        const a = await logits(ref), b = await logits(q);
        const W = a.length / L;
        const { maxAbs, klSum, klMax, argSame } = compareLogits(a, b, L);
        add({
          metric: "coglm_logits_max_abs",
          value: maxAbs,
          unit: "",
          on: `${c.case} (${L} positions × ${W})`,
        });
        add({ metric: "coglm_kl_mean_per_position", value: klSum / L, unit: "nats", on: c.case });
        add({ metric: "coglm_kl_max_per_position", value: klMax, unit: "nats", on: c.case });
        add({ metric: "coglm_argmax_agreement", value: argSame / L, unit: "fraction", on: c.case });
      }
      for (const c of byKind("coglm_generate_greedy")) {
        const textIds = ints(await npy(c.inputs.text_ids));
        const gen = (m: CogLM) =>
          m.generate({
            textIds,
            batch: Number(c.inputs.batch_size),
            seed: 0,
            recipe: { attn_plus: Number(c.inputs.attn_plus) },
            numTokens: Number(c.inputs.num_image_tokens),
            sampler: greedySampler,
          });
        const a = await gen(ref), b = await gen(q);
        a.forEach((row, r) => {
          const ag = agreement(row, b[r]);
          add({
            metric: "coglm_greedy_token_agreement",
            value: ag.frac,
            unit: "fraction",
            on: `${c.case} row ${r}, ${row.length} steps, ` +
              (ag.first < 0 ? "identical" : `first difference at step ${ag.first}`),
          });
          grids.push({ on: `${c.case} row ${r}`, ref: row, q: b[r] });
        });
      }
    } finally {
      ref.release(), q.release();
    }
  }

  // SR stages on their greedy cases' inputs.
  for (const c of [...byKind("dsr_step_greedy"), ...byKind("itersr_lopar_greedy")]) {
    const run = async (dir: string) => {
      const sr = await SuperResolution.load(gpu, dir, { maxResidentBytes: 0 });
      try {
        const textIds = ints(await npy(c.inputs.text_ids));
        if (c.kind === "dsr_step_greedy") {
          const [t] = await sr.directSr({
            textIds,
            lowres: [ints(await npy(c.inputs.lowres_tokens))],
            seed: 0,
            decode: "greedy",
          });
          return t;
        }
        const [t] = await sr.iterativeSr({
          textIds,
          highres: [ints(await npy(c.inputs.highres_tokens))],
          seed: 0,
          decode: "greedy",
        });
        return t;
      } finally {
        sr.release();
      }
    };
    const a = await run(o.refDir), b = await run(o.int8Dir);
    const ag = agreement(a, b);
    add({
      metric: c.kind === "dsr_step_greedy" ? "dsr_token_agreement" : "itersr_token_agreement",
      value: ag.frac,
      unit: "fraction",
      on: `${c.case} (${a.length} tokens)`,
    });
  }

  // The CogLM token grids decoded by the (f16, shared) VQ-VAE.
  if (grids.length) {
    const vq = await Vqvae.load(gpu, o.refDir);
    try {
      for (const g of grids) {
        const side = Math.round(Math.sqrt(g.ref.length));
        if (side * side !== g.ref.length) continue;
        const a = await vq.decode(g.ref, side), b = await vq.decode(g.q, side);
        add({
          metric: "decoded_image_psnr_vs_f16",
          value: psnr(a, b),
          unit: "dB",
          on: `${g.on} (${side}x${side} codes)`,
        });
      }
    } finally {
      vq.release();
    }
  }
  return rows;
}

/**
 * int8 vs f16 on random-weight CogLM layers at the published width (3072 hidden, 48 heads, MLP 12288, vocabulary
 * 150010; `layers` deep): the f16 model's weights are generated on the GPU (models/random_weights.ts), the int8 model
 * quantises those same weights (formats/int8.ts quantizedSource, group 64), so the two differ only by quantisation.
 * Greedy-token agreement over `steps` generated tokens, and logit KL / max-abs per position on the f16 model's
 * sequence (teacher-forced), also at a unit-spread temperature and as a relative RMS error (random layers predict
 * their input token with a wide margin, so greedy agreement and plain KL say little there).
 */
export async function int8RandomPublished(
  gpu: GpuContext,
  o: { layers: number; steps: number; onRow?: (r: QualityRow) => void },
): Promise<QualityRow[]> {
  const rows: QualityRow[] = [];
  const add = (r: QualityRow) => (rows.push(r), o.onRow?.(r));
  const dims: TransformerDims = {
    numLayers: o.layers,
    hidden: 3072,
    heads: 48,
    headDim: 64,
    inner: 12288,
    vocab: 150010,
    maxSeq: 1024,
    eps: 1e-5,
    order: "sandwich",
  };
  const src = randomWeightSource(gpu, satTransformerShapes(dims, {}), {
    origin: "random CogLM (published width)",
    seed: 7,
    dtype: "f16",
  });
  const qsrc = quantizedSource(src);
  // Tensors the quantisation leaves alone are generated on the GPU, as in the f16 model (same names, same values).
  const q8: WeightSource = {
    ...qsrc,
    randomFill: (n) => (qsrc.info(n).dtype === "f16" ? src.randomFill!(n) : undefined)!,
  };
  const on = `${o.layers} random layer(s) at published width`;
  const ref = CogLM.fromWeights(gpu, dims, await loadTransformer(gpu, src, dims), 20000);
  const q = CogLM.fromWeights(gpu, dims, await loadTransformer(gpu, q8, dims), 20000);
  try {
    const textIds = Int32Array.from([21371, 20392, 23869, 20021, 22697, 24346, 20100, 20200, 20300, 150001]);
    const gen = (m: CogLM) =>
      m.generate({
        textIds,
        batch: 1,
        seed: 0,
        recipe: { attn_plus: 1 },
        numTokens: o.steps,
        sampler: greedySampler,
      });
    const [a] = await gen(ref), [b] = await gen(q);
    const ag = agreement(a, b);
    add({
      metric: "coglm_greedy_token_agreement",
      value: ag.frac,
      unit: "fraction",
      on: `${on}, ${o.steps} steps, ` + (ag.first < 0 ? "identical" : `first difference at step ${ag.first}`),
    });
    // Teacher-forced on the f16 model's sequence (text + its generated tokens): the rows predicting image tokens.
    const seq = Int32Array.from([...textIds, ...a]);
    const L = seq.length, T = textIds.length;
    const pos = Int32Array.from({ length: L }, (_, i) => i);
    const logits = async (m: CogLM) => {
      const h = m.forward(seq, pos, { ctxCols: T, logWeights: { cols: T, value: 1 } });
      const lg = m.logits(h, { rows: L });
      const v = (await gpu.readF32(lg)).slice();
      h.release(), lg.release();
      const W = v.length / L;
      return v.subarray((T - 1) * W, (L - 1) * W);
    };
    const la = await logits(ref), lb = await logits(q);
    const n = L - T;
    const c = compareLogits(la, lb, n);
    // Random layers are dominated by the input token's own embedding (logits far apart: greedy repeats, KL ~ 0), so
    // the relative logit error and the KL at a unit-spread temperature (each row divided by the f16 row's standard
    // deviation) are the informative figures.
    const W = la.length / n;
    let se = 0, ss = 0;
    const sa = new Float32Array(la.length), sb = new Float32Array(lb.length);
    for (let i = 0; i < n; i++) {
      let m = 0, v = 0;
      for (let j = 0; j < W; j++) m += la[i * W + j];
      m /= W;
      for (let j = 0; j < W; j++) v += (la[i * W + j] - m) ** 2;
      const sd = Math.sqrt(v / W) || 1;
      for (let j = 0; j < W; j++) {
        const k = i * W + j;
        se += (la[k] - lb[k]) ** 2;
        ss += (la[k] - m) ** 2;
        sa[k] = la[k] / sd, sb[k] = lb[k] / sd;
      }
    }
    const cu = compareLogits(sa, sb, n);
    add({ metric: "coglm_logits_max_abs", value: c.maxAbs, unit: "", on: `${on} (${n} positions × ${W})` });
    add({ metric: "coglm_logits_rel_rms_error", value: Math.sqrt(se / ss), unit: "fraction", on });
    add({ metric: "coglm_kl_mean_per_position", value: c.klSum / n, unit: "nats", on });
    add({ metric: "coglm_kl_max_per_position", value: c.klMax, unit: "nats", on });
    add({ metric: "coglm_kl_mean_at_unit_std", value: cu.klSum / n, unit: "nats", on });
    add({ metric: "coglm_kl_max_at_unit_std", value: cu.klMax, unit: "nats", on });
    add({ metric: "coglm_argmax_agreement", value: c.argSame / n, unit: "fraction", on });
  } finally {
    await ref.release(), await q.release();
  }
  return rows;
}
