// A scriptable Pipeline for server tests: timed steps, previews, failures and cancellation on demand.
// Not the product: the server runs the real pipeline (src/pipeline/text2image.ts); this one exercises the HTTP paths.

import { deflateSync } from "node:zlib";
import {
  type CompletionRequest,
  type EmitEvent,
  type GenerateRequest,
  type Pipeline,
  PipelineError,
  type PipelineInfo,
  type ResultImage,
  throwIfAborted,
} from "../../src/pipeline/types.ts";

export interface FakeOptions {
  /** Milliseconds per step (default 5). */
  stepMs?: number;
  /** Steps per stage (default 3). */
  steps?: number;
  /** Produce real PNGs (160×160 previews, 480×480 images) instead of marker bytes. */
  realImages?: boolean;
}

/** Bytes of image k of a job with this seed: lets tests check that what comes back is what was made. */
export function fakeImageBytes(seed: number, k: number): Uint8Array {
  const out = new Uint8Array(64);
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < 64; i++) out[i] = (seed * 31 + k * 7 + i) & 255;
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A real (browser-decodable) RGB PNG of one colour: enough for the page test's fake images. */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const raw = new Uint8Array(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(rgb, y * (1 + 3 * width) + 1 + 3 * x);
  }
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(deflateSync(raw))),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

export class FakePipeline implements Pipeline {
  stepMs: number;
  steps: number;
  realImages: boolean;
  runs = 0;
  /** Resolves the next time a job starts running. */
  started: Promise<void>;
  #resolveStarted!: () => void;

  constructor(options: FakeOptions = {}) {
    this.stepMs = options.stepMs ?? 5;
    this.steps = options.steps ?? 3;
    this.realImages = options.realImages ?? false;
    this.started = new Promise((r) => this.#resolveStarted = r);
  }

  info(): PipelineInfo {
    return {
      name: "fake",
      dir: "(none)",
      demo: true,
      notice: "Demo model: A test pipeline.",
      styles: ["none", "mainbody", "photo"],
      defaultStyle: "mainbody",
      maxImages: 8,
      maxPromptTokens: 110,
      maxInferenceBatch: 4,
      completion: true,
      details: {},
    };
  }

  validate(request: GenerateRequest | CompletionRequest): void {
    const tokens = request.prompt.split(/\s+/).length;
    if (tokens > 110) throw new PipelineError(`Prompt is too long: ${tokens} tokens, the limit is 110`);
  }

  async generate(request: GenerateRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    return await this.#run(request, emit, signal);
  }

  async complete(request: CompletionRequest, emit: EmitEvent, signal: AbortSignal): Promise<ResultImage[]> {
    return await this.#run(request, emit, signal);
  }

  async #run(request: GenerateRequest | CompletionRequest, emit: EmitEvent, signal: AbortSignal) {
    this.runs++;
    this.#resolveStarted();
    this.started = new Promise((r) => this.#resolveStarted = r);
    const stages = ["coglm", "dsr"] as const;
    for (const [si, stage] of stages.entries()) {
      emit({ type: "stage", stage, progress: si / stages.length });
      for (let s = 1; s <= this.steps; s++) {
        await new Promise((r) => setTimeout(r, this.stepMs));
        throwIfAborted(signal);
        if (request.prompt.includes("FAIL") && si === 1) throw new Error("Fake failure in stage dsr");
        if (request.prompt.includes("UNAVAILABLE")) {
          throw new PipelineError("Stage dsr is not available", 503);
        }
        emit({
          type: "step",
          stage,
          step: s,
          steps: this.steps,
          progress: (si + s / this.steps) / stages.length,
        });
      }
      emit({
        type: "stage_done",
        stage,
        seconds: this.steps * this.stepMs / 1000,
        progress: (si + 1) / stages.length,
      });
      if (stage === "coglm") {
        for (let k = 0; k < request.n; k++) {
          emit({
            type: "preview",
            index: k,
            image: {
              data: this.realImages
                ? solidPng(160, 160, [40 * k, 120, 200])
                : fakeImageBytes(request.seed + 1000, k),
              mime: "image/png",
              width: 160,
              height: 160,
            },
          });
        }
      }
    }
    return Array.from({ length: request.n }, (_, k) => ({
      data: this.realImages ? solidPng(480, 480, [200, 40 * k, 80]) : fakeImageBytes(request.seed, k),
      mime: request.format === "jpeg" ? "image/jpeg" as const : "image/png" as const,
      width: 480,
      height: 480,
    }));
  }
}
