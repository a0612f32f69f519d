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
 * Cancellation points on one GPU context. `pass()` submits what was recorded since the last point and waits for
 * the GPU before reading the signal, throwing CancelledError when it is set. While steps are short (a wait under
 * SERIAL_MS), one step stays queued behind the running one, so the GPU does not idle for the host's round trip;
 * once they are long (lavapipe, published sizes), each pass waits for its own step, so a cancellation is seen when
 * the running step ends. Either way the GPU is idle when CancelledError is thrown (a queued short step is waited
 * for): the next job, or the process exit on SIGTERM, does not wait behind the cancelled stage's work. Closed early, a stage's generators return their buffers to the pool at once (the queue orders any
 * reuse after work still in flight). Each pass costs one or two counted host syncs; without a signal there are no
 * points at all.
 */
export class CancelPoints {
  /** A wait longer than this (ms) makes the steps serial (each waited for before the next is recorded). */
  static readonly SERIAL_MS = 50;
  #prev: Fence | null = null;
  #serial = false;

  constructor(readonly ctx: GpuContext, readonly signal: CancelSignal) {}

  /** Points for `signal`, or none (undefined) when there is no signal: the stage then runs as one submission. */
  static of(ctx: GpuContext, signal: CancelSignal | undefined): CancelPoints | undefined {
    return signal ? new CancelPoints(ctx, signal) : undefined;
  }

  async pass(): Promise<void> {
    const fence = this.ctx.fence();
    const t0 = performance.now();
    await this.#prev?.wait();
    if (this.#serial) await fence.wait();
    this.#prev = this.#serial ? null : fence;
    this.#serial = performance.now() - t0 > CancelPoints.SERIAL_MS;
    if (this.signal.aborted) {
      // A short step may still be queued: wait for it, so the GPU is idle when the stage reports cancelled.
      await this.#prev?.wait();
      this.#prev = null;
      throw new CancelledError();
    }
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
