// The pipeline in a Worker: the GPU, the model and every CPU-heavy step run on their own thread, so the server's event
// loop stays free. Measured on lavapipe: awaiting the GPU (onSubmittedWorkDone, mapAsync) blocks the awaiting
// thread's event loop for the whole wait (a DSR forward: 10.9 s with /healthz unanswered). Not a pool: one worker,
// one job at a time (the JobQueue's rule), requests and events passed as structured clones.

import type {
  CompletionRequest,
  EmitEvent,
  GenerateRequest,
  Pipeline,
  PipelineEvent,
  PipelineInfo,
  ResultImage,
} from "./types.ts";
import { PipelineError } from "./types.ts";
import type { MemoryReport } from "./types.ts";
import type { ResidencySetting } from "./residency.ts";

export interface WorkerPipelineOptions {
  /** A converted model directory; the worker opens it with Text2ImagePipeline.open. */
  modelDir: string;
  demo?: boolean;
  maxInferenceBatch?: number;
  maxImages?: number;
  /** Stage residency and the GPU memory budget (src/pipeline/residency.ts). */
  residency?: ResidencySetting;
  gpuMemoryBytes?: number | null;
  gpuMemorySource?: string;
  log?: (msg: string) => void;
}

/** Messages the worker sends (worker_main.ts). */
export type FromWorker =
  | { type: "log"; msg: string }
  | { type: "opened"; info: PipelineInfo }
  /** The pool accounting after the model opened and after each job (what memory() answers). */
  | { type: "memory"; report: MemoryReport | null }
  | { type: "event"; id: number; event: PipelineEvent }
  | { type: "result"; id: number; images: ResultImage[] }
  | { type: "failed"; id: number; error: { message: string; status?: 400 | 503; abort?: boolean } };

/** Messages the worker receives. */
export type ToWorker =
  | { type: "open"; options: Omit<WorkerPipelineOptions, "log">; cancel: SharedArrayBuffer }
  | { type: "validate"; id: number; request: GenerateRequest | CompletionRequest }
  | { type: "run"; id: number; kind: "generate" | "completion"; request: GenerateRequest | CompletionRequest }
  | { type: "abort"; id: number };

interface Call {
  resolve: (v: ResultImage[] | void) => void;
  reject: (e: Error) => void;
  emit?: EmitEvent;
}

export class WorkerPipeline implements Pipeline {
  #worker: Worker;
  #info!: PipelineInfo;
  #calls = new Map<number, Call>();
  #next = 1;
  #closed = false;
  /**
   * The cancel flag shared with the worker: the id of the run to cancel. The worker's thread is inside a GPU wait
   * most of a job (a blocked event loop: the abort message waits behind it), so the stage code reads this flag
   * synchronously between its submissions instead (src/models/cancel.ts); the message still serves idle waits.
   */
  readonly #cancel = new Int32Array(new SharedArrayBuffer(4));
  #memory: MemoryReport | null = null;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** Starts the worker and opens the model there; rejects with the worker's error (no adapter, bad model dir). */
  static async open(options: WorkerPipelineOptions): Promise<WorkerPipeline> {
    const worker = new Worker(new URL("./worker_main.ts", import.meta.url).href, { type: "module" });
    const p = new WorkerPipeline(worker);
    const log = options.log ?? (() => {});
    const opened = new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "log") log(m.msg);
        else if (m.type === "memory") p.#memory = m.report;
        else if (m.type === "opened") {
          p.#info = m.info;
          resolve();
        } else if (m.type === "failed" && m.id === 0) reject(new Error(m.error.message));
        else p.#onMessage(m);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        const err = new Error(`The pipeline worker failed: ${e.message}`);
        reject(err);
        p.#failAll(err);
      };
    });
    const { log: _log, ...rest } = options;
    worker.postMessage(
      { type: "open", options: rest, cancel: p.#cancel.buffer as SharedArrayBuffer } satisfies ToWorker,
    );
    try {
      await opened;
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return p;
  }

  info(): PipelineInfo {
    return this.#info;
  }

  /** The worker's last pool report (sent after the model opened and after each job). */
  memory(): MemoryReport | null {
    return this.#memory;
  }

  validate(request: GenerateRequest | CompletionRequest): Promise<void> {
    return this.#call({ type: "validate", id: 0, request }) as Promise<void>;
  }

  generate(request: GenerateRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    return this.#run("generate", request, emit, signal);
  }

  complete(request: CompletionRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    return this.#run("completion", request, emit, signal);
  }

  /**
   * Stops the worker at once (the GPU work it was waiting on is abandoned): calls in flight reject with an
   * AbortError. For shutdown, when a cancelled job would otherwise hold the process past its grace period.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#failAll(new DOMException("Server shutting down", "AbortError") as unknown as Error);
  }

  #run(
    kind: "generate" | "completion",
    request: GenerateRequest | CompletionRequest,
    emit: EmitEvent,
    signal: AbortSignal,
  ): Promise<ResultImage[]> {
    if (signal.aborted) return Promise.reject(new DOMException("Job cancelled", "AbortError"));
    const id = this.#next++;
    const onAbort = () => {
      Atomics.store(this.#cancel, 0, id);
      this.#post({ type: "abort", id });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const p = this.#call({ type: "run", id, kind, request }, emit, id) as Promise<ResultImage[]>;
    return p.finally(() => signal.removeEventListener("abort", onAbort));
  }

  #call(msg: ToWorker, emit?: EmitEvent, id = this.#next++): Promise<ResultImage[] | void> {
    if (this.#closed) return Promise.reject(new Error("The pipeline is closed"));
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject, emit });
      this.#post({ ...msg, id } as ToWorker);
    });
  }

  #post(msg: ToWorker): void {
    if (!this.#closed) this.#worker.postMessage(msg);
  }

  #onMessage(m: FromWorker): void {
    if (m.type === "log" || m.type === "opened" || m.type === "memory") return;
    const call = this.#calls.get(m.id);
    if (!call) return;
    if (m.type === "event") return call.emit?.(m.event);
    this.#calls.delete(m.id);
    if (m.type === "result") call.resolve(m.images);
    else if (m.error.abort) call.reject(new DOMException(m.error.message, "AbortError") as unknown as Error);
    else if (m.error.status) call.reject(new PipelineError(m.error.message, m.error.status));
    else call.reject(new Error(m.error.message));
  }

  #failAll(e: Error): void {
    for (const c of this.#calls.values()) c.reject(e);
    this.#calls.clear();
  }
}
