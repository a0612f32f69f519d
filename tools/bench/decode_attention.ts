// `deno task bench --only decode_attention`: the published CogLM decode step's attention (48 heads × 64, f16 KV cache,
// the step's K/V row stored by the same dispatch) at keys 64 / 200 / 420 and batch 1 / 8, for every key split
// S = 1, 2, 4, 8, 16 (flash-decoding, src/kernels/attention.ts `split`; S = 1 is the one-workgroup-per-(head, batch)
// kernel) and, on GPUs, every workgroup width 32 / 64 / 128 / 256 (attentionWg), side by side. Each (wg, split) is
// first checked against the CPU twin (src/reference/attention.ts) and reported as decode_attention_skipped with the
// error when it does not match; only matching ones are timed (decode_attention_us {batch, keys, wg, split}: µs per
// call, the minimum of interleaved bursts). Per shape it also reports the fastest (decode_attention_best_split: its
// speedup over split 1 at the table's width, today's kernel) and what choices.ts picks there
// (decode_attention_table_split; timed too when not among the listed). tools/pick_variants.ts picks
// COGVIEW2_ATTENTION_SPLIT and COGVIEW2_ATTENTION_WG for the published runs from decode_attention_us. `--quick`: keys
// 64 and 420, 3 rounds.

import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { attention, attentionSplitFor, attentionWgOverride } from "../../src/kernels/attention.ts";
import { choices } from "../../src/kernels/choices.ts";
import { standardAttentionRef } from "../../src/reference/attention.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";
import { burstMs, burstReps } from "./_timing.ts";

/** The published CogLM's attention: 48 heads of 64 (hidden 3072). */
const HEADS = 48, D = 64;
export const DECODE_ATTENTION_SPLITS = [1, 2, 4, 8, 16];
/** Outputs are convex combinations of O(1) values: f32 accumulation against the float64 twin on f16-rounded K/V. */
const ATOL = 1e-4, RTOL = 1e-3;

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + seed * 1.7) * Math.cos(i * 0.011 + seed);
  return a;
}

/** max |got − want| over the allowed atol + rtol·|want|, or null when every value is within it. */
function mismatch(got: Float32Array, want: Float32Array): string | null {
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= ATOL + RTOL * Math.abs(want[i]))) return `[${i}]: ${got[i]} vs ${want[i]} (CPU twin)`;
  }
  return null;
}

type Wg = 32 | 64 | 128 | 256;
/** One (workgroup width, split count) of the fused decode attention. */
interface Variant {
  wg: Wg;
  split: number;
}

/**
 * One decode attention shape: every (wg, split) of `wgs` × `splits` (plus the table's split) checked vs the CPU twin,
 * then the matching ones timed side by side (tests run it small). Default widths: the table's (attentionWg or
 * COGVIEW2_ATTENTION_WG) only.
 */
export async function benchDecodeAttention(
  ctx: GpuContext,
  report: (r: BenchResult) => void,
  o: {
    batch: number;
    keys: number;
    heads?: number;
    headDim?: number;
    splits?: number[];
    wgs?: Wg[];
    rounds: number;
  },
): Promise<void> {
  const { batch, keys, rounds } = o, heads = o.heads ?? HEADS, d = o.headDim ?? D, W = heads * d;
  // The step's row: q, k, v of each batch entry in one [batch, 3·W] tensor (as a QKV GEMV writes it); the caches
  // hold keys − 1 earlier rows, the attention dispatch stores row keys − 1 (storeNew).
  const qkv = fill(batch * 3 * W, keys + batch);
  const kh = fill(batch * keys * W, 2), vh = fill(batch * keys * W, 3);
  const r16 = (x: Float32Array) => f16BitsToF32(f32ToF16Bits(x));
  const tq = ctx.upload(qkv, [batch, 3 * W]);
  const kc = ctx.upload(kh, [batch, keys, W], "f16"), vc = ctx.upload(vh, [batch, keys, W], "f16");
  const out = ctx.empty([batch, W]);
  const want = new Float32Array(batch * W);
  for (let b = 0; b < batch; b++) {
    const k = kh.slice(b * keys * W, (b + 1) * keys * W), v = vh.slice(b * keys * W, (b + 1) * keys * W);
    k.set(qkv.subarray(b * 3 * W + W, b * 3 * W + 2 * W), (keys - 1) * W);
    v.set(qkv.subarray(b * 3 * W + 2 * W, b * 3 * W + 3 * W), (keys - 1) * W);
    want.set(
      standardAttentionRef(qkv.subarray(b * 3 * W, b * 3 * W + W), r16(k), r16(v), {
        heads,
        d,
        rows: 1,
        keys,
      }),
      b * W,
    );
  }
  const call = ({ wg, split }: Variant) => () =>
    attention(ctx, {
      batch,
      heads,
      headDim: d,
      rows: 1,
      keys,
      q: { t: tq, ld: 3 * W, bs: 3 * W },
      k: { t: kc, ld: W, bs: keys * W },
      v: { t: vc, ld: W, bs: keys * W },
      out: { t: out, ld: W, bs: W },
      storeNew: { kOff: W, vOff: 2 * W },
      split,
      wg,
    });
  const params = ({ wg, split }: Variant) => ({ batch, keys, heads, head_dim: d, kv: "f16", wg, split });
  // The table's choice here (e.g. S = 6 on GPUs at batch 1 and 420 keys) is timed too when not listed.
  const table: Variant = {
    wg: attentionWgOverride() ?? choices(ctx).attentionWg,
    split: attentionSplitFor(ctx, { batch, heads, headDim: d, keys }),
  };
  const splits = o.splits ?? DECODE_ATTENTION_SPLITS;
  const variants: Variant[] = (o.wgs ?? [table.wg]).flatMap((wg) =>
    (splits.includes(table.split) ? splits : [...splits, table.split]).map((split) => ({ wg, split }))
  );
  if (!variants.some((v) => v.wg === table.wg && v.split === table.split)) variants.push(table);
  // Checked before timing: a variant that does not match the twin is never timed (nor picked).
  const ok: Variant[] = [];
  for (const v of variants) {
    try {
      ctx.write(out, new Float32Array(batch * W).fill(NaN)); // a variant that writes nothing cannot pass
      call(v)();
      const bad = mismatch(await ctx.readF32(out), want);
      if (bad) {
        report({ name: "decode_attention_skipped", params: { ...params(v), why: bad }, value: 0, unit: "" });
      } else ok.push(v);
    } catch (e) {
      const why = (e as Error).message.slice(0, 160);
      report({ name: "decode_attention_skipped", params: { ...params(v), why }, value: 0, unit: "" });
    }
  }
  // Interleaved rounds (load changes hit every variant alike), each burst sized once per variant (_timing.ts
  // burstReps: at least 20 empty-queue waits per burst); the minimum per variant.
  const reps = new Map<Variant, number>();
  for (const v of ok) reps.set(v, await burstReps(ctx, call(v), 4));
  const best = new Map<Variant, number>();
  for (let i = 0; i < rounds; i++) {
    for (const v of ok) {
      const us = 1000 * await burstMs(ctx, call(v), reps.get(v)!) / reps.get(v)!;
      best.set(v, Math.min(best.get(v) ?? Infinity, us));
    }
  }
  for (const v of ok) {
    report({ name: "decode_attention_us", params: params(v), value: best.get(v)!, unit: "µs/call" });
  }
  // The fastest against today's default kernel: one workgroup per (head, batch) at the table's width.
  const base = ok.find((v) => v.wg === table.wg && v.split === 1);
  const fast = ok.reduce<Variant | null>((a, v) => (!a || best.get(v)! < best.get(a)! ? v : a), null);
  if (base && fast) {
    report({
      name: "decode_attention_best_split",
      params: params(fast),
      value: best.get(base)! / best.get(fast)!,
      unit: "x",
      baseline: `split 1 wg ${table.wg}`,
    });
  }
  report({ name: "decode_attention_table_split", params: params(table), value: table.split, unit: "splits" });
  [tq, kc, vc, out].forEach((x: Tensor) => x.release());
}

export const decodeAttentionSuite: BenchSuite = {
  name: "decode_attention",
  description:
    "published CogLM decode attention (48×64 heads, f16 KV, K/V store fused) per key split S = 1..16 and width, checked vs the CPU twin",
  async run(ctx, report, { quick }) {
    // GPUs: every width (attentionWg is unmeasured as well, and the best split may depend on it); CPU adapters: the
    // table's width only (time).
    const wgs: Wg[] | undefined = ctx.gpu.isFallback ? undefined : [32, 64, 128, 256];
    for (const batch of [1, 8]) {
      for (const keys of quick ? [64, 420] : [64, 200, 420]) {
        await benchDecodeAttention(ctx, report, {
          batch,
          keys,
          heads: HEADS,
          headDim: D,
          wgs,
          rounds: quick ? 3 : 7,
        });
      }
    }
  },
};
