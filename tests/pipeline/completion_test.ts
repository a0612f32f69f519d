// Text-guided completion's orchestration over stage doubles: an "identity" VQ-VAE (decode gives back the encoded
// pixels cell by cell, filled cells a flat grey), a CogLM fill that writes one code, a DSR that re-generates every cell. Checks the
// plan, the sequence CogLM fills, that pixels outside the box come back unchanged and the box is re-generated, and
// errors. Not numerics (stages have their own tests) nor geometry (completion_helpers_test.ts).

import nodeAssert from "node:assert/strict";
import { decodeImage, encodePng } from "../../src/formats/image.ts";
import { IceTokenizer } from "../../src/tokenizer/icetk.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import { batchSeed, type SrStage, type VqvaeStage } from "../../src/pipeline/stages.ts";
import { boxToMask, surroundingBoxCrop } from "../../src/pipeline/completion_layout.ts";
import {
  type CompletionRequest,
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
  styles: ["none", "mainbody", "photo"],
  defaultStyle: "mainbody",
  maxImages: 8,
  maxPromptTokens: 110,
  maxInferenceBatch: 2,
  completion: true,
  details: {},
};
/** The code CogLM writes into every cell it fills; decodes to flat grey 0.25. */
const FILL = 7;

interface FillArgs {
  tokens: Int32Array;
  positionIds: Int32Array;
  txtLen: number;
  contextLength: number;
  attends: (i: number, j: number) => boolean;
  batch: number;
  seed: number;
}

class Doubles {
  stored: Float32Array[] = [];
  fills: FillArgs[] = [];
  dsrCalls = 0;
  dsrRecipe?: { topk_dsr: number; temp_cluster_dsr: number };
  inputMask: Uint8Array | undefined;
  withFill = true;

  vqvae: VqvaeStage = {
    encode: (chw, h, w) => {
      nodeAssert.equal(h, w);
      this.stored.push(Float32Array.from(chw));
      return Promise.resolve(new Int32Array((h / 8) * (w / 8)).fill(10000 + this.stored.length - 1));
    },
    decode: (codes, side) => {
      const s = side * 8, out = new Float32Array(3 * s * s);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < s; x++) {
            const code = codes[(y >> 3) * side + (x >> 3)];
            const i = (c * s + y) * s + x;
            if (code === FILL) out[i] = 0.25;
            else {
              const img = this.stored[code - 10000];
              nodeAssert.equal(img.length, 3 * s * s, "an encoded image is decoded at its own size");
              out[i] = img[i];
            }
          }
        }
      }
      return Promise.resolve(out);
    },
  };
  sr: SrStage = {
    directSr: (o) => {
      // DSR re-generates every cell; completion.ts keeps the image's own codes outside the box.
      this.dsrCalls++;
      this.dsrRecipe = o.recipe;
      return Promise.resolve(o.lowres.map(() => new Int32Array(3600).fill(FILL)));
    },
    iterativeSr: (o) => {
      this.inputMask = o.inputMask;
      return Promise.resolve(o.highres);
    },
  };

  pipeline(): Text2ImagePipeline {
    const coglm = {
      generate: () => Promise.reject(new Error("not used")),
      perplexity: () => Promise.reject(new Error("not used")),
      fill: this.withFill
        ? (o: FillArgs) => {
          this.fills.push(o);
          return Promise.resolve(
            Array.from({ length: o.batch }, () => o.tokens.map((t) => t < 0 ? FILL : t)),
          );
        }
        : undefined,
    };
    return Text2ImagePipeline.fromStages({ tokenizer, coglm, sr: this.sr, vqvae: this.vqvae }, INFO);
  }
}

/** A 480×480 RGB gradient as PNG (and its RGBA pixels). */
function picture(): { png: Uint8Array; rgba: Uint8Array } {
  const rgba = new Uint8Array(480 * 480 * 4);
  for (let y = 0; y < 480; y++) {
    for (let x = 0; x < 480; x++) {
      rgba.set([(x * 255 / 479) | 0, (y * 255 / 479) | 0, ((x + y) * 255 / 958) | 0, 255], (y * 480 + x) * 4);
    }
  }
  return { png: encodePng(rgba, 480, 480), rgba };
}

function req(
  box: [number, number, number, number],
  over: Partial<CompletionRequest> = {},
): CompletionRequest {
  return {
    prompt: "a red apple",
    style: "photo",
    n: 3,
    seed: 9,
    image: picture().png,
    box,
    format: "png",
    ...over,
  };
}

const never = new AbortController().signal;

async function check(box: [number, number, number, number], expectSr: boolean) {
  const d = new Doubles();
  const events: PipelineEvent[] = [];
  const out = await d.pipeline().complete(req(box), (e) => events.push(e), never);
  const stages = events.filter((e) => e.type === "stage").map((e) => (e as { stage: string }).stage);
  nodeAssert.deepEqual(
    stages,
    expectSr ? ["encode", "coglm", "dsr", "itersr", "decode"] : ["encode", "coglm", "decode"],
  );
  nodeAssert.equal(d.dsrCalls, expectSr ? 1 : 0);
  // CogLM fills n = 3 samples in batches of 2, the photo template then <start_of_image> again, as the original.
  nodeAssert.deepEqual(d.fills.map((f) => f.batch), [2, 1]);
  nodeAssert.deepEqual(d.fills.map((f) => f.seed), [batchSeed(9, 0), batchSeed(9, 1)]);
  const f = d.fills[0];
  const ids = tokenizer.encode("a red apple 高清摄影<start_of_image>");
  nodeAssert.deepEqual([...f.tokens.slice(0, ids.length + 1)], [
    ...ids,
    tokenizer.tokenToId("<start_of_image>"),
  ]);
  const holes = [...f.tokens].filter((t) => t < 0).length;
  nodeAssert.ok(holes > 0 && f.contextLength + holes <= f.tokens.length, `${holes} cells to fill`);
  nodeAssert.ok(f.attends(f.tokens.length - 1, 0) && !f.attends(0, f.tokens.length - 1), "causal fill rows");
  if (expectSr) nodeAssert.ok(d.inputMask && d.inputMask.some((v) => v) && d.inputMask.some((v) => !v));
  // Output: 480×480; outside the crop the input comes back exactly; the box's middle is the filled grey.
  nodeAssert.equal(out.length, 3);
  const { rgba } = picture();
  const { crop, inner } = surroundingBoxCrop(boxToMask(box));
  for (const img of out) {
    const dec = decodeImage(img.data);
    nodeAssert.deepEqual([dec.width, dec.height], [480, 480]);
    let outside = 0, inside = 0;
    for (let y = 0; y < 480; y += 7) {
      for (let x = 0; x < 480; x += 7) {
        const p = (y * 480 + x) * 4;
        const inCrop = y >= crop.y0 && y < crop.y1 && x >= crop.x0 && x < crop.x1;
        const deep = y >= inner.y0 + 24 && y < inner.y1 - 24 && x >= inner.x0 + 24 && x < inner.x1 - 24;
        if (!inCrop) {
          nodeAssert.deepEqual(
            [...dec.data.slice(p, p + 3)],
            [...rgba.slice(p, p + 3)],
            `kept pixel ${y},${x}`,
          );
          outside++;
        } else if (deep) {
          nodeAssert.deepEqual([...dec.data.slice(p, p + 3)], [64, 64, 64], `re-generated pixel ${y},${x}`);
          inside++;
        }
      }
    }
    nodeAssert.ok(outside > 100 && inside > 4, `${outside} kept and ${inside} re-generated pixels checked`);
  }
  const progress = events.flatMap((e) => "progress" in e ? [e.progress] : []);
  nodeAssert.equal(progress[progress.length - 1], 1);
}

Deno.test("completion: a small box (crop ≤ 160 px) — CogLM fill then decode; pixels outside come back", async () => {
  await check([0.3, 0.4, 0.45, 0.6], false);
});

Deno.test("completion: a large box — CogLM fill, DSR, LoPAR with the box's mask, decode at 480", async () => {
  await check([0.25, 0.2, 0.75, 0.7], true);
});

Deno.test("completion: clear errors — not an image, an empty box, a CogLM without fill (503)", async () => {
  const d = new Doubles();
  await nodeAssert.rejects(
    d.pipeline().complete(req([0.1, 0.1, 0.2, 0.2], { image: new Uint8Array([1, 2, 3]) }), () => {}, never),
    (e: Error) => e instanceof PipelineError && /'image' is not a PNG or JPEG/.test(e.message),
  );
  await nodeAssert.rejects(
    d.pipeline().complete(req([0.5, 0.5, 0.5, 0.6]), () => {}, never),
    (e: Error) => e instanceof PipelineError && /selects no pixel/.test(e.message),
  );
  d.withFill = false;
  await nodeAssert.rejects(
    d.pipeline().complete(req([0.1, 0.1, 0.2, 0.2]), () => {}, never),
    (e: Error) => e instanceof PipelineError && e.status === 503,
  );
});

Deno.test("completion: DSR samples with the style's recipe (flat: topk_dsr 5, temp_cluster_dsr 0.4), as the original", async () => {
  // cogview2_completion.py builds its SRGroup from args that include get_recipe(style), so DirectSuperResolution's
  // strategy takes the style's topk_dsr / temp_cluster_dsr there too, not only in text2image.
  const d = new Doubles();
  await d.pipeline().complete(req([0.25, 0.2, 0.75, 0.7], { style: "flat", n: 1 }), () => {}, never);
  nodeAssert.equal(d.dsrCalls, 1);
  nodeAssert.deepEqual(d.dsrRecipe && { topk: d.dsrRecipe.topk_dsr, temp: d.dsrRecipe.temp_cluster_dsr }, {
    topk: 5,
    temp: 0.4,
  });
});
