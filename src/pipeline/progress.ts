// Progress accounting for a pipeline run: stage weights → one overall fraction, stage timings. The terminal bar that
// shows it is src/cli/terminal_bar.ts.
// Not an event bus: the pipeline emits through the EmitEvent it is given; this only computes the numbers.

import type { EmitEvent, StageName } from "./types.ts";

/** Relative cost of each stage (rough wall-time shares at the published sizes), used to weight the progress bar. */
export const STAGE_WEIGHTS: Record<StageName, number> = {
  encode: 0.05,
  coglm: 0.45,
  /** The 160×160 decode of each sample right after CogLM (a large share on CPU adapters). */
  preview: 0.1,
  postselect: 0.05,
  dsr: 0.15,
  itersr: 0.25,
  decode: 0.1,
};

/** Emits stage / step / stage_done events with an overall progress over the planned stages. */
export class Progress {
  readonly #emit: EmitEvent;
  readonly #plan: StageName[];
  readonly #total: number;
  #done = 0;
  #stage: StageName | null = null;
  #t0 = 0;

  constructor(emit: EmitEvent, plan: StageName[]) {
    this.#emit = emit;
    this.#plan = plan;
    this.#total = plan.reduce((a, s) => a + STAGE_WEIGHTS[s], 0);
  }

  get stage(): StageName | null {
    return this.#stage;
  }

  start(stage: StageName): void {
    if (!this.#plan.includes(stage)) {
      throw new Error(`Progress: stage '${stage}' is not in the plan ${this.#plan}`);
    }
    this.#stage = stage;
    this.#t0 = performance.now();
    this.#emit({ type: "stage", stage, progress: this.#fraction(0) });
  }

  /** Step `step` of `steps` of the current stage finished. */
  step(step: number, steps: number): void {
    const stage = this.#stage;
    if (!stage) throw new Error("Progress.step: no stage started");
    this.#emit({ type: "step", stage, step, steps, progress: this.#fraction(Math.min(1, step / steps)) });
  }

  /** Ends the current stage; returns its wall time in seconds. */
  end(): number {
    const stage = this.#stage;
    if (!stage) throw new Error("Progress.end: no stage started");
    const seconds = (performance.now() - this.#t0) / 1000;
    this.#done += STAGE_WEIGHTS[stage];
    this.#stage = null;
    this.#emit({ type: "stage_done", stage, seconds, progress: this.#fraction(0) });
    return seconds;
  }

  #fraction(within: number): number {
    const cur = this.#stage ? STAGE_WEIGHTS[this.#stage] * within : 0;
    return Math.min(1, (this.#done + cur) / this.#total);
  }
}
