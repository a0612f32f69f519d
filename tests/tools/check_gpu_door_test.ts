// The one-door rule (tools/check_gpu_door.ts, run by `deno task check`): the patterns catch WebGPU use outside
// src/gpu and leave comments and look-alike names alone.
import assert from "node:assert/strict";
import { violations } from "../../tools/check_gpu_door.ts";

Deno.test("gpu door check: flags device, queue, encoder, flags and navigator.gpu use, ignores comments", () => {
  const bad = [
    "const d = ctx.device;",
    "await ctx.device.queue.onSubmittedWorkDone();",
    "const enc = x.createCommandEncoder();",
    "const a = await navigator.gpu.requestAdapter();",
    "usage: GPUBufferUsage.UNIFORM,",
    "await staging.mapAsync(1);",
  ];
  for (const line of bad) assert.ok(violations(line).length > 0, line);
  const ok = [
    "// ctx.device.queue.onSubmittedWorkDone() is what fence() wraps",
    " * createBindGroup once per buffer set",
    "ctx.dispatch(k, [1], [a, b], [1]);",
    "await ctx.fence().wait();",
    "s.app.queue.sweep();",
  ];
  for (const line of ok) assert.deepEqual(violations(line), [], line);
});
