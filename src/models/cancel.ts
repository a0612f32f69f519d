// Cancellation inside a long stage: the models record their work as steps (a generator yields after each layer's
// attention block, each layer, each logits block, each VQ-VAE decoder block) and a driver submits each step, waits
// for the one before it and reads a cancel flag in between. Not a scheduler, and nothing here knows about jobs or
// workers: the signal is anything with a synchronous `aborted` (an AbortSignal, or the pipeline worker's shared flag,
// src/pipeline/worker_main.ts).
import type { Fence, GpuContext } from "../gpu/context.ts";

/** What a model reads to stop early. AbortSignal fits; so does an object over a SharedArrayBuffer flag. */
export interface CancelSignal {
  readonly aborted: boolean;
}

/**
 * Thrown at a cancellation point. Its `name` is "AbortError", the name fetch and DOM APIs give an aborted operation,
 * which the pipeline and the job store already report as `cancelled` (pipeline/types.ts isAbortError).
 */
export class CancelledError extends Error {
  constructor(message = "Job cancelled") {
    super(message);
    this.name = "AbortError";
  }
}

export function throwIfCancelled(signal: CancelSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/** The work of a stage as recording steps: each `yield` is a point where it may be submitted and stopped. */
export type Steps<T> = Generator<void, T>;

/** Records every step at once (no waits: the caller submits and syncs as before). */
export function runSteps<T>(steps: Steps<T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

/**
 * Cancellation points on one GPU context. `pass()` submits what was recorded since the last point, waits until the
 * GPU has finished the work submitted before the previous point (so one step stays queued and the GPU does not idle
 * while the host records the next), then reads the signal and throws CancelledError when it is set. A cancellation
 * is thus seen when the step running at that moment ends; the one queued behind it still runs (its buffers go back
 * to the pool now: the queue orders their next use after it). Each pass costs one counted host sync; without a
 * signal there are no points at all.
 */
export class CancelPoints {
  #prev: Fence | null = null;

  constructor(readonly ctx: GpuContext, readonly signal: CancelSignal) {}

  /** Points for `signal`, or none (undefined) when there is no signal: the stage then runs as one submission. */
  static of(ctx: GpuContext, signal: CancelSignal | undefined): CancelPoints | undefined {
    return signal ? new CancelPoints(ctx, signal) : undefined;
  }

  async pass(): Promise<void> {
    const fence = this.ctx.fence();
    const prev = this.#prev;
    this.#prev = fence;
    if (prev) await prev.wait();
    throwIfCancelled(this.signal);
  }

  /**
   * Runs `steps` with a pass between steps; on cancellation (or any error) the generator is closed, so its
   * `finally` blocks return its buffers to the pool.
   */
  async run<T>(steps: Steps<T>): Promise<T> {
    try {
      let r = steps.next();
      while (!r.done) {
        await this.pass();
        r = steps.next();
      }
      return r.value;
    } catch (e) {
      steps.return(undefined as T);
      throw e;
    }
  }
}

/** Runs `steps` with cancellation points when `points` is given, else records them all at once. */
export function driveSteps<T>(steps: Steps<T>, points: CancelPoints | undefined): Promise<T> {
  return points ? points.run(steps) : Promise.resolve(runSteps(steps));
}
