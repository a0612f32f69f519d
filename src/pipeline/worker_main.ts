// The worker side of WorkerPipeline (worker.ts): opens the GPU and the model, runs one request at a time, posts its
// events and result back. Not reachable from outside the process.

import { setPriority } from "node:os";
import { sharedContext } from "../gpu/context.ts";
import { describeGpu, gpuLine } from "../gpu/device.ts";
import { Text2ImagePipeline } from "./text2image.ts";
import { isAbortError, PipelineError } from "./types.ts";
import type { CompletionRequest, GenerateRequest } from "./types.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
};
const post = (m: FromWorker) => scope.postMessage(m);
const log = (msg: string) => post({ type: "log", msg });
let pipeline: Text2ImagePipeline | null = null;
const aborts = new Map<number, AbortController>();
/** The server's cancel flag (worker.ts): the id of the run to cancel. */
let cancelFlag: Int32Array | null = null;

/**
 * The run's AbortSignal, which also reads the shared flag: its `aborted` (an own getter) aborts the controller once
 * the flag holds this run's id (listeners run, `reason` is set) before answering. Stage code reads it synchronously
 * between GPU waits, when the abort message is still queued behind them on this thread's blocked event loop.
 */
function runSignal(ac: AbortController, id: number): AbortSignal {
  const signal = ac.signal, flag = cancelFlag;
  if (!flag) return signal;
  const aborted = Object.getOwnPropertyDescriptor(AbortSignal.prototype, "aborted")!.get!;
  Object.defineProperty(signal, "aborted", {
    get() {
      if (!aborted.call(signal) && Atomics.load(flag, 0) === id) {
        ac.abort(new DOMException("Job cancelled", "AbortError"));
      }
      return aborted.call(signal);
    },
  });
  return signal;
}

/** Scheduling priority (nice) of the pipeline thread and the GPU driver threads it creates. */
const WORKER_NICE = 10;

/**
 * Puts this thread, and the GPU driver threads it creates afterwards (Linux threads inherit their creator's nice
 * value: lavapipe's rasterizer threads, as many as cores), below the server's event loop, so a job's CPU-bound GPU
 * work does not compete with /healthz, the event streams and the API on equal terms. Linux only (per-thread nice
 * through /proc/thread-self); returns the line to log.
 */
function yieldCpuToServer(): string {
  if (Deno.build.os !== "linux") return "pipeline worker: normal priority (per-thread nice is Linux-only)";
  try {
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    setPriority(tid, WORKER_NICE);
    return `pipeline worker: nice ${WORKER_NICE} (its GPU threads run below the server's event loop)`;
  } catch (e) {
    return `pipeline worker: normal priority (nice not set: ${e instanceof Error ? e.message : e})`;
  }
}

function failure(id: number, e: unknown): FromWorker {
  const message = e instanceof Error || e instanceof DOMException ? e.message : String(e);
  return {
    type: "failed",
    id,
    error: { message, status: e instanceof PipelineError ? e.status : undefined, abort: isAbortError(e) },
  };
}

scope.onmessage = async (e) => {
  const m = e.data;
  if (m.type === "open") {
    cancelFlag = new Int32Array(m.cancel);
    log(yieldCpuToServer());
    try {
      const ctx = await sharedContext();
      console.error(gpuLine(ctx.gpu));
      log(`GPU: ${describeGpu(ctx.gpu)}`);
      pipeline = await Text2ImagePipeline.open({ ctx, ...m.options, log });
      post({ type: "memory", report: pipeline.memory() });
      post({ type: "opened", info: pipeline.info() });
    } catch (err) {
      post(failure(0, err));
    }
  } else if (m.type === "validate") {
    try {
      pipeline!.validate(m.request);
      post({ type: "result", id: m.id, images: [] });
    } catch (err) {
      post(failure(m.id, err));
    }
  } else if (m.type === "abort") {
    aborts.get(m.id)?.abort(new DOMException("Job cancelled", "AbortError"));
  } else if (m.type === "run") {
    const ac = new AbortController();
    aborts.set(m.id, ac);
    const emit = (event: Parameters<Parameters<Text2ImagePipeline["generate"]>[1]>[0]) =>
      post({ type: "event", id: m.id, event });
    try {
      const images = m.kind === "generate"
        ? await pipeline!.generate(m.request as GenerateRequest, emit, runSignal(ac, m.id))
        : await pipeline!.complete(m.request as CompletionRequest, emit, runSignal(ac, m.id));
      post({ type: "memory", report: pipeline!.memory() }); // before the result: a caller then sees this job's
      post({ type: "result", id: m.id, images });
    } catch (err) {
      post({ type: "memory", report: pipeline!.memory() });
      post(failure(m.id, err));
    } finally {
      aborts.delete(m.id);
    }
  }
};
