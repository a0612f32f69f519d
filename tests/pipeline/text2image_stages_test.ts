// Text2ImagePipeline's orchestration over recording stage doubles (real tokenizer, fake CogLM / SR / VQ-VAE): stage
// order and events, batching and seeds, the text each stage sees, first-stage upscaling, post-selection order,
// cancellation, errors. Not numerics: the stages have their own tests; text2image_test.ts runs the demo model.

import nodeAssert from "node:assert/strict";
import { decodeImage } from "../../src/formats/image.ts";
import { DEFAULT_STYLE, getRecipe, type Recipe, STYLES } from "../../src/sampling/recipes.ts";
import { IceTokenizer } from "../../src/tokenizer/icetk.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import { batchSeed, type CoglmStage, type SrStage, type VqvaeStage } from "../../src/pipeline/stages.ts";
import {
  type GenerateRequest,
  PipelineError,
  type PipelineEvent,
  type PipelineInfo,
} from "../../src/pipeline/types.ts";

const tokenizer = await IceTokenizer.fromFile(
  new URL("../testdata/cogview2-tiny/icetk/ice_text.model", import.meta.url).pathname,
);

const INFO: PipelineInfo = {
  name: "doubles",
  dir: "(none)",
  demo: true,
  notice: "test",
  styles: [...STYLES],
  defaultStyle: DEFAULT_STYLE,
  maxImages: 16,
  maxPromptTokens: 110,
  maxInferenceBatch: 2,
  completion: true,
  details: {},
};

/** Codes of sample k of a CogLM call with `seed`: a recognisable pattern. */
function codesOf(seed: number, k: number, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (seed * 7 + k * 1000 + i * 13) % 20000);
}

class Doubles {
  calls: string[] = [];
  generateArgs: Array<{ textIds: Int32Array; batch: number; seed: number; recipe: Recipe }> = [];
  perplexityArgs: Array<{ samples: Int32Array[]; caption: Int32Array }> = [];
  srText: Int32Array[] = [];
  dsrRecipe?: { topk_dsr: number; temp_cluster_dsr: number };
  dsrInput: Int32Array[] = [];
  decodes = 0;
  failIn: string | null = null;
  steps = 5;

  coglm: CoglmStage = {
    generate: async (o) => {
      this.calls.push(`coglm.generate(${o.batch})`);
      this.generateArgs.push(o);
      for (let s = 1; s <= this.steps; s++) {
        await Promise.resolve();
        if (o.signal?.aborted) throw new DOMException("Job cancelled", "AbortError");
        o.onStep?.(s, this.steps);
      }
      if (this.failIn === "coglm") throw new Error("CogLM exploded");
      return Array.from({ length: o.batch }, (_, k) => codesOf(o.seed, k, 400));
    },
    perplexity: (samples, caption) => {
      this.calls.push("coglm.perplexity");
      this.perplexityArgs.push({ samples, caption });
      // Scores that reverse the sample order with a tie-free pattern: sample k scores -(k * 1.5) + (k === 1 ? 9 : 0).
      return Promise.resolve(samples.map((_, k) => -1.5 * k + (k === 1 ? 9 : 0)));
    },
  };
  sr: SrStage = {
    directSr: (o) => {
      this.calls.push("sr.directSr");
      this.srText.push(o.textIds);
      this.dsrInput = o.lowres;
      this.dsrRecipe = o.recipe;
      if (this.failIn === "dsr") return Promise.reject(new Error("DSR exploded"));
      o.onStep?.(1, 1);
      return Promise.resolve(o.lowres.map((c) => Int32Array.from({ length: 3600 }, (_, i) => c[i % 400])));
    },
    iterativeSr: (o) => {
      this.calls.push("sr.iterativeSr");
      this.srText.push(o.textIds);
      o.onStep?.(1, 2);
      o.onStep?.(2, 2);
      return Promise.resolve(o.highres);
    },
  };
  vqvae: VqvaeStage = {
    decode: (codes, side) => {
      this.decodes++;
      this.calls.push(`vqvae.decode(${side})`);
      const s = side * 8;
      const img = new Float32Array(3 * s * s);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < s; x++) {
            img[(c * s + y) * s + x] = (codes[(y >> 3) * side + (x >> 3)] % 251) / 250 * (c + 1) / 3;
          }
        }
      }
      return Promise.resolve(img);
    },
    encode: () => Promise.reject(new Error("not used")),
  };

  pipeline(): Text2ImagePipeline {
    return Text2ImagePipeline.fromStages(
      { tokenizer, coglm: this.coglm, sr: this.sr, vqvae: this.vqvae },
      INFO,
    );
  }
}

function req(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: "a cat",
    style: "mainbody",
    n: 1,
    seed: 1,
    onlyFirstStage: false,
    inversePrompt: false,
    format: "png",
    ...over,
  };
}

const never = new AbortController().signal;
const stagesOf = (events: PipelineEvent[]) =>
  events.filter((e) => e.type === "stage").map((e) => (e as { stage: string }).stage);

Deno.test("text2image stages: full pipeline order, batches and seeds, the text each stage sees, progress 0 → 1", async () => {
  const d = new Doubles();
  const p = d.pipeline();
  const events: PipelineEvent[] = [];
  const out = await p.generate(req({ n: 5, seed: 77, style: "photo" }), (e) => events.push(e), never);
  nodeAssert.equal(out.length, 5);
  nodeAssert.deepEqual(stagesOf(events), ["coglm", "preview", "dsr", "itersr", "decode"]);
  // n = 5 with maxInferenceBatch 2: batches 2, 2, 1 with per-batch seeds.
  nodeAssert.deepEqual(d.generateArgs.map((a) => a.batch), [2, 2, 1]);
  nodeAssert.deepEqual(d.generateArgs.map((a) => a.seed), [0, 1, 2].map((b) => batchSeed(77, b)));
  nodeAssert.equal(new Set(d.generateArgs.map((a) => a.seed)).size, 3, "distinct batch seeds");
  const ids = d.generateArgs[0].textIds;
  nodeAssert.deepEqual([...ids], tokenizer.encode("a cat 高清摄影<start_of_image>"), "the photo template");
  nodeAssert.equal(ids[ids.length - 1], tokenizer.tokenToId("<start_of_image>"));
  nodeAssert.equal(d.generateArgs[0].recipe.style, "photo");
  // DSR and LoPAR get the text without <start_of_image> (the original's seq[:txt_len]).
  nodeAssert.deepEqual(d.srText.map((t) => [...t]), [[...ids.slice(0, -1)], [...ids.slice(0, -1)]]);
  // DSR samples with the style's own topk_dsr / temp_cluster_dsr (the original sets them per style).
  const photo = getRecipe("photo");
  nodeAssert.deepEqual(
    [d.dsrRecipe?.topk_dsr, d.dsrRecipe?.temp_cluster_dsr],
    [photo.topk_dsr, photo.temp_cluster_dsr],
  );
  // Five previews, right after CogLM, before DSR starts.
  const previews = events.flatMap((e, i) => e.type === "preview" ? [i] : []);
  nodeAssert.equal(previews.length, 5);
  const dsrStart = events.findIndex((e) => e.type === "stage" && e.stage === "dsr");
  nodeAssert.ok(previews.every((i) => i < dsrStart));
  for (const e of events) {
    if (e.type === "preview") {
      const img = decodeImage(e.image.data);
      nodeAssert.deepEqual([img.width, img.height, e.image.mime], [160, 160, "image/png"]);
    }
  }
  // Progress never goes back and ends at 1.
  const prog = events.flatMap((e) => "progress" in e ? [e.progress] : []);
  for (let i = 1; i < prog.length; i++) nodeAssert.ok(prog[i] >= prog[i - 1] - 1e-12, `monotonic at ${i}`);
  nodeAssert.equal(prog[prog.length - 1], 1);
  for (const img of out) {
    const dec = decodeImage(img.data);
    nodeAssert.deepEqual([dec.width, dec.height, img.mime, img.score], [480, 480, "image/png", undefined]);
  }
});

Deno.test("text2image stages: first stage only — one decode per sample, nearest ×3 to 480×480, JPEG on request", async () => {
  const d = new Doubles();
  const p = d.pipeline();
  const events: PipelineEvent[] = [];
  const out = await p.generate(req({ n: 3, onlyFirstStage: true }), (e) => events.push(e), never);
  nodeAssert.deepEqual(stagesOf(events), ["coglm", "preview", "decode"]);
  nodeAssert.equal(d.decodes, 3, "the preview decode is reused for the result");
  nodeAssert.ok(!d.calls.some((c) => c.startsWith("sr.")));
  const small = await d.vqvae.decode(codesOf(batchSeed(1, 0), 1, 400), 20);
  const got = decodeImage(out[1].data);
  // Nearest ×3: output pixel (y, x) is decoded pixel (⌊y/3⌋, ⌊x/3⌋) (PNG is lossless; 8-bit rounding as save_image).
  // Every pixel (the double's 8-px code cells make most single pixels blind to an off-by-one source row/column).
  let wrong = 0, first = "";
  for (let y = 0; y < 480; y++) {
    for (let x = 0; x < 480; x++) {
      for (let c = 0; c < 3; c++) {
        const v = small[(c * 160 + Math.floor(y / 3)) * 160 + Math.floor(x / 3)];
        // save_image's rounding in float32: ⌊fround(fround(v·255) + 0.5)⌋, clamped.
        const want = Math.min(255, Math.max(0, Math.floor(Math.fround(Math.fround(v * 255) + 0.5))));
        if (got.data[(y * 480 + x) * 4 + c] !== want && !wrong++) first = `pixel ${y},${x} channel ${c}`;
      }
    }
  }
  nodeAssert.equal(wrong, 0, `${wrong} channel values differ from nearest ×3, first at ${first}`);
  const jpeg = await p.generate(req({ n: 1, onlyFirstStage: true, format: "jpeg" }), () => {}, never);
  nodeAssert.equal(jpeg[0].mime, "image/jpeg");
  nodeAssert.deepEqual([jpeg[0].data[0], jpeg[0].data[1]], [0xff, 0xd8]);
});

Deno.test("text2image stages: post-selection scores '<start_of_chinese>' + prompt and orders best first, SR included", async () => {
  const d = new Doubles();
  const p = d.pipeline();
  const events: PipelineEvent[] = [];
  const out = await p.generate(
    req({ n: 4, inversePrompt: true, prompt: "a red apple" }),
    (e) => events.push(e),
    never,
  );
  nodeAssert.deepEqual(stagesOf(events), ["coglm", "preview", "postselect", "dsr", "itersr", "decode"]);
  nodeAssert.deepEqual(
    [...d.perplexityArgs[0].caption],
    [tokenizer.tokenToId("<start_of_chinese>"), ...tokenizer.encode("a red apple")],
  );
  nodeAssert.equal(d.perplexityArgs[0].samples.length, 4);
  // Scores: [0, 7.5, -3, -4.5] → order 1, 0, 2, 3.
  nodeAssert.deepEqual(out.map((i) => i.score), [7.5, 0, -3, -4.5]);
  const samples = d.perplexityArgs[0].samples;
  nodeAssert.deepEqual(
    d.dsrInput,
    [samples[1], samples[0], samples[2], samples[3]],
    "DSR gets the ordered samples",
  );
  const first = await p.generate(req({ n: 3, inversePrompt: true, onlyFirstStage: true }), () => {}, never);
  nodeAssert.deepEqual(first.map((i) => i.score), [7.5, 0, -3]);
});

Deno.test("text2image stages: validation, cancellation between steps, a failing stage leaves the pipeline usable", async () => {
  const d = new Doubles();
  const p = d.pipeline();
  nodeAssert.throws(
    () => p.validate(req({ style: "cubism" })),
    (e: Error) => e instanceof PipelineError && /cubism/.test(e.message),
  );
  const long = Array(120).fill("apple").join(" ");
  nodeAssert.throws(() => p.validate(req({ prompt: long })), /Prompt is too long: \d+ tokens .*limit is 110/);
  await nodeAssert.rejects(p.generate(req({ prompt: long }), () => {}, never), PipelineError);
  nodeAssert.equal(d.calls.length, 0, "rejected before any stage runs");

  const ac = new AbortController();
  let steps = 0;
  await nodeAssert.rejects(
    p.generate(req({ n: 4 }), (e) => {
      if (e.type === "step" && ++steps === 3) ac.abort();
    }, ac.signal),
    (e: Error) => e.name === "AbortError",
  );
  nodeAssert.ok(
    !d.calls.some((c) => c.startsWith("sr.") || c.startsWith("vqvae")),
    `stopped in CogLM: ${d.calls}`,
  );
  nodeAssert.equal(d.generateArgs.length, 1, "no further CogLM batch after the abort");

  d.failIn = "dsr";
  await nodeAssert.rejects(p.generate(req(), () => {}, never), /DSR exploded/);
  d.failIn = null;
  const ok = await p.generate(req({ n: 2 }), () => {}, never);
  nodeAssert.equal(ok.length, 2);
});
