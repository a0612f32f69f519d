// Cancellation inside long stages on the real demo model (whatever adapter; lavapipe here): a signal set in the
// middle of a DSR round, a LoPAR round or a 60×60 VQ-VAE decode stops the stage with CancelledError long before the
// round would end, and the GPU pool holds exactly its baseline bytes afterwards (scratch, logits blocks, decoder
// activations all returned). Not the served path (tests/server/responsive_test.ts: DELETE and SIGTERM through the
// pipeline worker's shared flag) and not the step-level checks (text2image_stages_test.ts).

import nodeAssert from "node:assert/strict";
import { sharedContext } from "../../src/gpu/context.ts";
import { ensureDemoModel } from "../../src/demo/model.ts";
import { CancelledError, type CancelSignal } from "../../src/models/cancel.ts";
import { SuperResolution } from "../../src/pipeline/super_resolution.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import type { Vqvae } from "../../src/models/vqvae.ts";

const root = new URL("../../", import.meta.url).pathname;
const ctx = await sharedContext();
const modelDir = await ensureDemoModel({ dir: `${root}.cache/demo` });
const pipeline = await Text2ImagePipeline.open({ ctx, modelDir, demo: true });
const sr = pipeline.stages.sr as SuperResolution;
const vqvae = pipeline.stages.vqvae as Vqvae;
const textIds = Int32Array.from(pipeline.textIds("a cat", "mainbody").slice(0, -1));
const lowres = [Int32Array.from({ length: 400 }, (_, i) => (i * 37) % 20000)];
const highres = Int32Array.from({ length: 3600 }, (_, i) => (i * 31) % 20000);

/** A flag that reads as set from time `at` (performance.now() ms) on: read synchronously, like the worker's. */
const setAt = (at: () => number): CancelSignal => ({
  get aborted() {
    return performance.now() >= at();
  },
});

/** Live pool bytes: idle buffers freed first, so only tensors still held (weights, caches, leaks) count. */
function liveBytes(): number {
  ctx.trim();
  return ctx.poolBytes;
}

/** Runs `run` with a flag set at `at()`; returns the ms from the flag to the CancelledError. */
async function cancelLatency(
  run: (signal: CancelSignal) => Promise<unknown>,
  at: () => number,
): Promise<number> {
  let caught: unknown;
  try {
    await run(setAt(at));
  } catch (e) {
    caught = e;
  }
  const end = performance.now();
  nodeAssert.ok(caught instanceof CancelledError, `cancelled inside the stage (got ${caught ?? "a result"})`);
  return end - at();
}

// The bound: 60% of one round (DSR: its only round; decode: the whole decode; LoPAR: see its test). Checked only
// between rounds, a flag set 20% into a round would be seen at its end (80% of a round later) or not at all (DSR's
// and the decode's one round).
// Measured with steps (load 11-16): 0.02-0.40 of a round; the largest steps are LoPAR's pick blocks and the
// 480×480 decoder convolutions (the reference round is timed in another run, so load changes between runs count).
const FRACTION = 0.2, BOUND = 0.6;

Deno.test({
  name: "cancel inside a DSR round: CancelledError within 60% of a round, pool back to its baseline",
  sanitizeResources: false,
  async fn() {
    const dsr = (signal?: CancelSignal) => sr.directSr({ textIds, lowres, seed: 1, signal });
    await dsr(); // compiles the pipelines, packs the weights (cached)
    const base = liveBytes();
    let t0 = performance.now();
    await dsr({ aborted: false });
    const round = performance.now() - t0;
    // 10% in: inside the transformer forward (its scratch is live); the LoPAR case below stops inside a pick.
    t0 = performance.now();
    const ms = await cancelLatency(dsr, () => t0 + 0.1 * round);
    console.log(`DSR round ${round.toFixed(0)} ms; cancelled ${ms.toFixed(0)} ms after the flag`);
    nodeAssert.ok(
      ms < BOUND * round,
      `cancelled ${ms.toFixed(0)} ms after the flag; a round is ${round.toFixed(0)} ms`,
    );
    nodeAssert.equal(liveBytes(), base, "pool bytes after the cancelled round");
  },
});

Deno.test({
  name: "cancel inside a LoPAR round: CancelledError within 75% of a round, pool back to its baseline",
  sanitizeResources: false,
  async fn() {
    const marks: number[] = [];
    const lopar = (signal?: CancelSignal) =>
      sr.iterativeSr({
        textIds,
        highres: [highres],
        seed: 1,
        signal,
        onStep: () => marks.push(performance.now()),
      });
    let t0 = performance.now();
    await lopar();
    // Rounds 2..6 of this run (round 1 also compiled the pipelines).
    const rounds = marks.slice(1).map((t, i) => t - (i === 0 ? marks[0] : marks[i]));
    const round = rounds.sort((a, b) => a - b)[rounds.length >> 1];
    const base = liveBytes();
    marks.length = 0;
    t0 = performance.now();
    // Set 10% into round 2 (after round 1's step event). A demo LoPAR round is ~7 pick blocks and four short
    // transformer steps (0.7-1.4 s at load ~15 since the windowed SR attention), so one pick block can be ~0.6 of a
    // round: the bound here is 0.75 of a round; checked only between rounds, the flag would be seen 0.9 later.
    const ms = await cancelLatency(lopar, () => (marks[0] ?? t0 + 1e9) + 0.1 * round);
    console.log(`LoPAR round ${round.toFixed(0)} ms (median); cancelled ${ms.toFixed(0)} ms after the flag`);
    nodeAssert.equal(marks.length, 1, "stopped inside round 2");
    nodeAssert.ok(
      ms < 0.75 * round,
      `cancelled ${ms.toFixed(0)} ms after the flag; a round is ${round.toFixed(0)} ms`,
    );
    nodeAssert.equal(liveBytes(), base, "pool bytes after the cancelled round");
  },
});

Deno.test({
  name:
    "cancel inside a 60×60 VQ-VAE decode: CancelledError within 60% of the decode, pool back to its baseline",
  sanitizeResources: false,
  async fn() {
    const decode = (signal?: CancelSignal) => vqvae.decode(highres, 60, { signal });
    await decode();
    const base = liveBytes();
    let t0 = performance.now();
    const plain = await decode({ aborted: false });
    const whole = performance.now() - t0;
    nodeAssert.deepEqual(plain, await decode(), "steps give the same image as one submission");
    t0 = performance.now();
    const ms = await cancelLatency(decode, () => t0 + FRACTION * whole);
    console.log(`decode ${whole.toFixed(0)} ms; cancelled ${ms.toFixed(0)} ms after the flag`);
    nodeAssert.ok(
      ms < BOUND * whole,
      `cancelled ${ms.toFixed(0)} ms after the flag; the decode is ${whole.toFixed(0)} ms`,
    );
    nodeAssert.equal(liveBytes(), base, "pool bytes after the cancelled decode");
  },
});
