// The job queue: one job runs on the GPU at a time, a bounded FIFO waits, finished results are kept with a
// bound and an expiry (in memory, or as files under an output directory). Not HTTP: app.ts maps it to routes.

import { join } from "node:path";
import {
  type CompletionRequest,
  type EncodedImage,
  type GenerateRequest,
  isAbortError,
  type Pipeline,
  PipelineError,
  type PipelineEvent,
  type StageName,
} from "../pipeline/types.ts";
import type { Metrics } from "./metrics.ts";

export type JobState = "queued" | "running" | "done" | "error" | "cancelled";

export type JobInput =
  | { kind: "generate"; request: GenerateRequest }
  | { kind: "completion"; request: CompletionRequest };

/** What a subscriber (SSE stream) receives: pipeline events plus the job's own lifecycle events. */
export type JobEvent =
  | { type: "queued"; position: number }
  | { type: "started" }
  | { type: "stage"; stage: StageName; progress: number }
  | { type: "step"; stage: StageName; step: number; steps: number; progress: number }
  | { type: "stage_done"; stage: StageName; seconds: number; progress: number }
  | { type: "preview"; index: number; url: string; width: number; height: number }
  | { type: "done"; images: string[] }
  | { type: "error"; message: string }
  | { type: "cancelled" };

interface StoredImage {
  mime: string;
  width: number;
  height: number;
  score?: number;
  /** In memory, or the file it was written to (a name built from the job id, never from a request). */
  data?: Uint8Array;
  file?: string;
  bytes: number;
}

export interface Job {
  readonly id: string;
  readonly input: JobInput;
  state: JobState;
  readonly createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  stage?: StageName;
  step?: number;
  steps?: number;
  progress: number;
  error?: string;
  /** HTTP status an error maps to (400 for a request the pipeline rejects, 503 for a missing stage, 500 else). */
  errorStatus?: number;
  images: StoredImage[];
  previews: StoredImage[];
  /** Every event so far, replayed to late subscribers. */
  readonly history: JobEvent[];
  readonly listeners: Set<(e: JobEvent) => void>;
  readonly abort: AbortController;
  readonly finished: Promise<void>;
  resolveFinished: () => void;
}

export interface JobQueueOptions {
  pipeline: Pipeline;
  metrics: Metrics;
  /** Jobs waiting (not counting the running one); beyond it `submit` throws QueueFullError. */
  maxQueue: number;
  /** Finished jobs kept; the oldest are dropped first. */
  maxFinished: number;
  /** Finished jobs expire this long after finishing. */
  ttlMs: number;
  /** Write images under this directory instead of keeping them in memory. */
  outDir?: string;
  log?: (msg: string) => void;
}

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`The queue is full: try again in about ${retryAfterSeconds} s`);
  }
}

export class ShuttingDownError extends Error {
  constructor() {
    super("The server is shutting down and accepts no new jobs");
  }
}

/**
 * When shutdown cancels the running job and when it stops the pipeline outright (ms after the signal) for a grace
 * period of `graceMs`. The job may finish until the grace period less 5 s (at least its first half); the
 * cancellation then reaches inside the running stage within one GPU step (served demo on lavapipe under load 11-13 on
 * 2 cores: 0.3-6.6 s after a DELETE, the long ones in 480×480 VQ-VAE decoder steps); a pipeline still busy a tenth
 * (at most 1 s) before the end is stopped, which leaves the process that long to exit.
 */
export function shutdownPlan(graceMs: number): { cancelAtMs: number; stopAtMs: number } {
  return {
    cancelAtMs: Math.max(graceMs / 2, graceMs - 5000),
    stopAtMs: graceMs - Math.min(1000, graceMs / 10),
  };
}

const TERMINAL: ReadonlySet<JobState> = new Set(["done", "error", "cancelled"]);

export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

export class JobQueue {
  readonly #o: JobQueueOptions;
  readonly #jobs = new Map<string, Job>();
  readonly #waiting: Job[] = [];
  #running: Job | null = null;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #durations: number[] = [];
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(options: JobQueueOptions) {
    this.#o = options;
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, options.ttlMs / 4)));
    this.#sweeper.unref?.();
  }

  get queueDepth(): number {
    return this.#waiting.length;
  }

  get running(): Job | null {
    return this.#running;
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** The stored jobs, newest first (queued, running and the kept finished ones: bounded like the store). */
  list(): Job[] {
    this.sweep();
    return [...this.#jobs.values()].reverse();
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** Seconds a new client should wait before retrying when the queue is full. */
  retryAfterSeconds(): number {
    const avg = this.#durations.length
      ? this.#durations.reduce((a, b) => a + b, 0) / this.#durations.length
      : 5;
    return Math.max(
      1,
      Math.min(3600, Math.ceil(avg * (this.#waiting.length + 1) / Math.max(1, this.#o.maxQueue))),
    );
  }

  /** Enqueues a job; throws QueueFullError when `maxQueue` jobs already wait, ShuttingDownError after close(). */
  submit(input: JobInput): Job {
    if (this.#closed) throw new ShuttingDownError();
    if (this.#waiting.length >= this.#o.maxQueue) {
      this.#o.metrics.inc("cogview2_jobs_rejected_total", { reason: "queue_full" });
      throw new QueueFullError(this.retryAfterSeconds());
    }
    this.sweep();
    let resolveFinished!: () => void;
    const finished = new Promise<void>((r) => resolveFinished = r);
    const job: Job = {
      id: crypto.randomUUID(),
      input,
      state: "queued",
      createdAt: Date.now(),
      progress: 0,
      images: [],
      previews: [],
      history: [],
      listeners: new Set(),
      abort: new AbortController(),
      finished,
      resolveFinished,
    };
    this.#jobs.set(job.id, job);
    this.#waiting.push(job);
    this.#o.metrics.inc("cogview2_jobs_submitted_total", { kind: input.kind });
    this.#publish(job, { type: "queued", position: this.#waiting.length });
    this.#updateGauges();
    this.#pump();
    return job;
  }

  /** Cancels a queued or running job (a running one stops at its next step). Returns false if already finished. */
  cancel(id: string): boolean {
    const job = this.#jobs.get(id);
    if (!job || isTerminal(job.state)) return false;
    if (job.state === "queued") {
      const i = this.#waiting.indexOf(job);
      if (i >= 0) this.#waiting.splice(i, 1);
      this.#finish(job, "cancelled");
      this.#updateGauges();
    } else {
      job.abort.abort(new DOMException("Job cancelled", "AbortError"));
    }
    return true;
  }

  /** Removes a finished job and its files. */
  async remove(id: string): Promise<boolean> {
    const job = this.#jobs.get(id);
    if (!job || !isTerminal(job.state)) return false;
    this.#jobs.delete(id);
    await this.#deleteFiles(job);
    return true;
  }

  subscribe(job: Job, listener: (e: JobEvent) => void): () => void {
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** The bytes of image `k` of a job (or of preview `k`), from memory or from its file. */
  async imageBytes(job: Job, k: number, preview = false): Promise<{ data: Uint8Array; mime: string } | null> {
    const list = preview ? job.previews : job.images;
    const img = list[k];
    if (!img) return null;
    if (img.data) return { data: img.data, mime: img.mime };
    if (img.file) {
      try {
        return { data: await Deno.readFile(img.file), mime: img.mime };
      } catch {
        return null;
      }
    }
    return null;
  }

  /**
   * Stops accepting jobs and cancels the waiting ones; the running job may finish until shutdownPlan's cancel time,
   * then is cancelled (and the pipeline stopped if it is still busy at the stop time). Resolves when nothing runs.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const job of this.#waiting.splice(0)) this.#finish(job, "cancelled");
    this.#updateGauges();
    const running = this.#running;
    if (running) {
      const plan = shutdownPlan(graceMs), t0 = Date.now();
      const until = async (at: number) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ms = Math.max(0, at - (Date.now() - t0));
        await Promise.race([running.finished, new Promise<void>((r) => timer = setTimeout(r, ms))]);
        clearTimeout(timer);
        return isTerminal(running.state);
      };
      if (!(await until(plan.cancelAtMs))) {
        running.abort.abort(new DOMException("Server shutting down", "AbortError"));
        if (!(await until(plan.stopAtMs)) && this.#o.pipeline.close) {
          this.#o.log?.(`job ${running.id} did not stop within the grace period: stopping the pipeline`);
          this.#o.pipeline.close();
        }
        await running.finished;
      }
    }
    await this.#idle;
  }

  /** Drops expired finished jobs and the oldest beyond `maxFinished`. */
  sweep(): void {
    const now = Date.now();
    const finished = [...this.#jobs.values()].filter((j) => isTerminal(j.state));
    const excess = finished.length - this.#o.maxFinished;
    finished.forEach((job, i) => {
      if (i < excess || now - (job.finishedAt ?? now) > this.#o.ttlMs) {
        this.#jobs.delete(job.id);
        this.#deleteFiles(job).catch(() => {});
      }
    });
  }

  #pump(): void {
    if (this.#running || this.#waiting.length === 0) return;
    const job = this.#waiting.shift()!;
    this.#running = job;
    this.#waiting.forEach((w, i) => this.#publish(w, { type: "queued", position: i + 1 }));
    this.#updateGauges();
    this.#idle = this.#run(job).finally(() => {
      this.#running = null;
      this.#updateGauges();
      this.#pump();
    });
  }

  async #run(job: Job): Promise<void> {
    const { pipeline, metrics } = this.#o;
    job.state = "running";
    job.startedAt = Date.now();
    this.#publish(job, { type: "started" });
    const emit = (e: PipelineEvent) => this.#onPipelineEvent(job, e);
    try {
      const images = job.input.kind === "generate"
        ? await pipeline.generate(job.input.request, emit, job.abort.signal)
        : await pipeline.complete(job.input.request, emit, job.abort.signal);
      if (job.abort.signal.aborted) throw new DOMException("Job cancelled", "AbortError");
      for (const [k, img] of images.entries()) {
        job.images.push(await this.#store(job, img, `${k}`));
      }
      job.progress = 1;
      this.#durations = [...this.#durations.slice(-9), (Date.now() - job.startedAt) / 1000];
      metrics.observe("cogview2_job_seconds", {}, (Date.now() - job.startedAt) / 1000);
      metrics.inc("cogview2_images_generated_total", {}, images.length);
      this.#finish(job, "done");
    } catch (e) {
      if (isAbortError(e) || job.abort.signal.aborted) {
        this.#finish(job, "cancelled");
      } else {
        job.error = e instanceof Error ? e.message : String(e);
        job.errorStatus = e instanceof PipelineError ? e.status : 500;
        if (!(e instanceof PipelineError)) {
          this.#o.log?.(`job ${job.id}: ${e instanceof Error ? e.stack : e}`);
        }
        this.#finish(job, "error");
      }
    }
  }

  #onPipelineEvent(job: Job, e: PipelineEvent): void {
    switch (e.type) {
      case "stage":
        job.stage = e.stage;
        job.step = 0;
        job.steps = undefined;
        job.progress = e.progress;
        this.#publish(job, e);
        break;
      case "step":
        job.stage = e.stage;
        job.step = e.step;
        job.steps = e.steps;
        job.progress = e.progress;
        this.#publish(job, e);
        break;
      case "stage_done":
        job.progress = e.progress;
        this.#o.metrics.observe("cogview2_stage_seconds", { stage: e.stage }, e.seconds);
        this.#publish(job, e);
        break;
      case "preview": {
        // Previews stay in memory (small); stored before the event so the URL resolves when it arrives.
        job.previews[e.index] = { ...e.image, bytes: e.image.data.byteLength, data: e.image.data };
        this.#publish(job, {
          type: "preview",
          index: e.index,
          url: `/v1/jobs/${job.id}/previews/${e.index}`,
          width: e.image.width,
          height: e.image.height,
        });
        break;
      }
    }
  }

  async #store(job: Job, img: EncodedImage & { score?: number }, k: string): Promise<StoredImage> {
    const meta = {
      mime: img.mime,
      width: img.width,
      height: img.height,
      score: img.score,
      bytes: img.data.byteLength,
    };
    if (!this.#o.outDir) return { ...meta, data: img.data };
    // The file name is built from the server's own UUID and an index: nothing from the request reaches the path.
    const file = join(this.#o.outDir, `${job.id}-${k}.${img.mime === "image/jpeg" ? "jpg" : "png"}`);
    await Deno.mkdir(this.#o.outDir, { recursive: true });
    await Deno.writeFile(file, img.data);
    return { ...meta, file };
  }

  async #deleteFiles(job: Job): Promise<void> {
    for (const img of job.images) {
      if (img.file) await Deno.remove(img.file).catch(() => {});
    }
  }

  #finish(job: Job, state: "done" | "error" | "cancelled"): void {
    job.state = state;
    job.finishedAt = Date.now();
    this.#o.metrics.inc("cogview2_jobs_total", { state });
    const took = job.startedAt ? ` in ${((job.finishedAt - job.startedAt) / 1000).toFixed(2)} s` : "";
    this.#o.log?.(`job ${job.id} ${state}${took}${state === "error" ? `: ${job.error}` : ""}`);
    if (state === "done") {
      this.#publish(job, {
        type: "done",
        images: job.images.map((_, k) => `/v1/jobs/${job.id}/images/${k}`),
      });
    } else if (state === "error") {
      this.#publish(job, { type: "error", message: job.error ?? "unknown error" });
    } else this.#publish(job, { type: "cancelled" });
    job.listeners.clear();
    job.resolveFinished();
  }

  #publish(job: Job, e: JobEvent): void {
    // Step events are many: keep only the latest step per stage in the replay history.
    const last = job.history[job.history.length - 1];
    if (e.type === "step" && last?.type === "step" && last.stage === e.stage) job.history.pop();
    if (e.type === "queued" && last?.type === "queued") job.history.pop();
    job.history.push(e);
    for (const l of [...job.listeners]) {
      try {
        l(e);
      } catch {
        job.listeners.delete(l);
      }
    }
  }

  #updateGauges(): void {
    this.#o.metrics.set("cogview2_queue_depth", {}, this.#waiting.length);
    this.#o.metrics.set("cogview2_jobs_running", {}, this.#running ? 1 : 0);
    this.#o.metrics.set("cogview2_jobs_stored", {}, this.#jobs.size);
  }
}
