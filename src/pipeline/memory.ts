// GPU memory accounting per pipeline stage for GET /v1/model and the logs: the pool's bytes (live + idle buffers,
// src/gpu/context.ts) now, at their highest, and the highest seen during each stage (the stage's resident weights,
// caches and activations). Not an allocator: it reads the pool's counters around the progress events of a job.
import type { GpuContext } from "../gpu/context.ts";
import type { EmitEvent, MemoryReport } from "./types.ts";

export class StageMemory {
  #peak = 0;
  #stages: Record<string, number> = {};
  #current: string | null = null;
  constructor(readonly ctx: GpuContext) {}

  /** `emit` with the stage events observed: the pool's peak mark is reset at a stage's start and read at its end. */
  wrap(emit: EmitEvent): EmitEvent {
    return (e) => {
      if (e.type === "stage") {
        this.#note();
        this.ctx.resetPeak();
        this.#current = e.stage;
      } else if (e.type === "stage_done") {
        this.#note();
        this.#current = null;
      }
      emit(e);
    };
  }

  #note(): void {
    const p = this.ctx.peakBytes;
    this.#peak = Math.max(this.#peak, p);
    if (this.#current) this.#stages[this.#current] = Math.max(this.#stages[this.#current] ?? 0, p);
  }

  report(): MemoryReport {
    this.#note();
    return {
      current_bytes: this.ctx.poolBytes,
      peak_bytes: Math.max(this.#peak, this.ctx.peakBytes),
      stage_peak_bytes: { ...this.#stages },
    };
  }
}
