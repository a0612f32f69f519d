import assert from "node:assert/strict";
import { StageMemory } from "../../src/pipeline/memory.ts";
import type { PipelineEvent } from "../../src/pipeline/types.ts";
import { sharedContext } from "../_util.ts";

Deno.test("stage memory: per-stage peak pool bytes from the progress events; a repeated job adds no pool bytes", async () => {
  const ctx = await sharedContext();
  const mem = new StageMemory(ctx);
  const seen: PipelineEvent[] = [];
  const emit = mem.wrap((e) => seen.push(e));
  const job = () => {
    emit({ type: "stage", stage: "coglm", progress: 0 });
    const a = ctx.empty([3 << 20]), b = ctx.empty([1 << 20]); // 12 MiB + 4 MiB live at once
    a.release(), b.release();
    emit({ type: "stage_done", stage: "coglm", seconds: 0, progress: 0.5 });
    emit({ type: "stage", stage: "decode", progress: 0.5 });
    ctx.empty([1 << 18]).release(); // 1 MiB
    emit({ type: "stage_done", stage: "decode", seconds: 0, progress: 1 });
  };
  const before = ctx.poolBytes;
  job();
  const after1 = mem.report();
  assert.equal(seen.length, 4, "events are passed through");
  // Pool bytes count idle pooled buffers too: each stage's peak includes what earlier stages left in the pool.
  assert.ok(after1.stage_peak_bytes.coglm >= before + (16 << 20), `coglm ${after1.stage_peak_bytes.coglm}`);
  assert.ok(after1.stage_peak_bytes.decode >= after1.stage_peak_bytes.coglm, "decode");
  assert.ok(after1.peak_bytes >= after1.stage_peak_bytes.coglm);
  // The same job again reuses the pooled buffers: the pool does not grow (no leak across requests).
  job();
  const after2 = mem.report();
  assert.equal(after2.current_bytes, after1.current_bytes);
  assert.equal(after2.peak_bytes, after1.peak_bytes);
});
