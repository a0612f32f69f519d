// Wall-clock timing of GPU work for the kernel benches: bursts of calls recorded into one submit and awaited once.
// Each burst pays the host's wait for the queue once (Deno's wgpu: ~11.5 ms on this lavapipe and on the H200; Dawn:
// 0.03-0.07 ms), so a burst is lengthened until that wait is at most 1/BURST_WAITS of it. Before session 7 the
// memory suite timed 2 calls per burst: on the H200 wgpu's elementwise add of 64 MiB came out at 34 GB/s against
// Dawn's 2088, which is (11.5 ms + 2 calls) / 2 per call, the wait and not the kernel.

import type { GpuContext } from "../../src/gpu/context.ts";

/** A burst takes at least this many empty-queue waits (so the wait is at most 5% of what is timed). */
export const BURST_WAITS = 20;
/** The most calls one burst records. */
export const MAX_BURST_REPS = 4096;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const waits = new WeakMap<GpuContext, number>();

/** The host's wait for an empty queue in ms (median of 5), measured once per context. */
export async function queueWaitMs(ctx: GpuContext): Promise<number> {
  const known = waits.get(ctx);
  if (known !== undefined) return known;
  await ctx.sync();
  const t: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await ctx.sync();
    t.push(performance.now() - t0);
  }
  const ms = median(t);
  waits.set(ctx, ms);
  return ms;
}

/** ms of one burst: `reps` calls of `body` recorded, then one wait for the queue. */
export async function burstMs(ctx: GpuContext, body: () => void, reps: number): Promise<number> {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) body();
  await ctx.sync();
  return performance.now() - t0;
}

/**
 * The next number of calls per burst after a burst of `reps` calls took `ms` with an empty-queue wait of `waitMs`, or
 * null when that burst was long enough (at least BURST_WAITS waits) or `reps` is at MAX_BURST_REPS. The calls' share
 * is the burst less one wait (at least 1/BURST_WAITS of it, against noise); the next count at least doubles.
 */
export function nextBurstReps(reps: number, ms: number, waitMs: number): number | null {
  const floor = BURST_WAITS * waitMs;
  if (ms >= floor || reps >= MAX_BURST_REPS) return null;
  const work = Math.max(ms - waitMs, ms / BURST_WAITS);
  return Math.min(MAX_BURST_REPS, Math.max(2 * reps, Math.ceil(reps * floor / work)));
}

/** Calls per burst for `body`, from `reps` up until one burst is long enough (nextBurstReps). */
export async function burstReps(ctx: GpuContext, body: () => void, reps: number): Promise<number> {
  const wait = await queueWaitMs(ctx);
  for (;;) {
    const next = nextBurstReps(reps, await burstMs(ctx, body, reps), wait);
    if (next === null) return reps;
    reps = next;
  }
}

/**
 * ms per call of `body`: after one warm-up burst of `reps` calls, the burst is sized (burstReps), then `iters` bursts
 * are timed; their median, or their minimum with `pick: "min"` (shared machines: load only ever slows a burst).
 */
export async function timeBurst(
  ctx: GpuContext,
  body: () => void,
  o: { reps: number; iters: number; pick?: "median" | "min" },
): Promise<number> {
  await burstMs(ctx, body, o.reps);
  const reps = await burstReps(ctx, body, o.reps);
  const times: number[] = [];
  for (let i = 0; i < o.iters; i++) times.push(await burstMs(ctx, body, reps) / reps);
  return o.pick === "min" ? Math.min(...times) : median(times);
}
