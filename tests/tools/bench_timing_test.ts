// The kernel benches' wall-clock bursts (tools/bench/_timing.ts): a burst is lengthened until the host's wait for the
// queue is at most 1/BURST_WAITS of it, so wgpu's ~11.5 ms wait is not reported as kernel time.
import assert from "node:assert/strict";
import {
  BURST_WAITS,
  burstReps,
  MAX_BURST_REPS,
  nextBurstReps,
  queueWaitMs,
} from "../../tools/bench/_timing.ts";
import type { GpuContext } from "../../src/gpu/context.ts";

/** The calls per burst nextBurstReps settles on for calls of `callMs` after a `waitMs` queue wait. */
function settle(reps: number, callMs: number, waitMs: number): { reps: number; bursts: number; ms: number } {
  for (let bursts = 1;; bursts++) {
    const ms = waitMs + reps * callMs;
    const next = nextBurstReps(reps, ms, waitMs);
    if (next === null) return { reps, bursts, ms };
    assert.ok(next >= 2 * reps, `the count at least doubles (${reps} -> ${next})`);
    reps = next;
  }
}

Deno.test("bench bursts: lengthened until the queue wait is at most 1/20 of a burst, within the cap", () => {
  // Deno's wgpu (11.5 ms wait) and a 0.1 ms kernel: 2 calls per burst, as the memory suite had, measured
  // (11.5 + 0.2) / 2 = 5.85 ms per call.
  const wgpu = settle(2, 0.1, 11.5);
  assert.ok(
    11.5 / wgpu.ms <= 1 / BURST_WAITS,
    `wait share ${(11.5 / wgpu.ms).toFixed(3)} with ${wgpu.reps} calls`,
  );
  assert.ok(wgpu.reps <= 2 * (BURST_WAITS * 11.5) / 0.1, `not needlessly long: ${wgpu.reps} calls`);
  assert.ok(wgpu.bursts <= 4, `sized in ${wgpu.bursts} bursts`);
  // Dawn's 0.05 ms wait and a 5 ms kernel: one call is enough.
  assert.deepEqual(settle(1, 5, 0.05), { reps: 1, bursts: 1, ms: 5.05 });
  // A call too short to outweigh the wait within the cap: the cap.
  assert.equal(settle(2, 1e-4, 11.5).reps, MAX_BURST_REPS);
});

Deno.test("bench bursts: burstReps sizes against the context's measured queue wait", async () => {
  // A stand-in context whose every wait takes >= 8 ms and whose calls cost nothing: no burst can reach 20 waits, so
  // the count grows to the cap; the wait is measured once per context.
  let syncs = 0;
  const ctx = { sync: () => (syncs++, new Promise<void>((r) => setTimeout(r, 8))) } as unknown as GpuContext;
  const wait = await queueWaitMs(ctx);
  assert.ok(wait >= 7, `measured wait ${wait.toFixed(1)} ms`);
  const before = syncs;
  assert.equal(await queueWaitMs(ctx), wait);
  assert.equal(syncs, before, "measured once");
  let calls = 0;
  assert.equal(await burstReps(ctx, () => calls++, 2), MAX_BURST_REPS);
  assert.ok(calls >= MAX_BURST_REPS);
});
