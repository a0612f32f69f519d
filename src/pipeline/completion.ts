// Text-guided completion (cogview2_completion.py + comp_pipeline/): re-generate a box of an image from a prompt.
// Not a new model: CogLM fills the box's 20×20 codes around the kept ones, then DSR + LoPAR refine, VQ-VAE decodes.

import type { FillOptions } from "../models/coglm.ts";
import { decodePreprocessOffThread, resizeBilinear } from "../formats/image.ts";
import type { Recipe } from "../sampling/recipes.ts";
import type { Stages } from "./stages.ts";
import { batchSeed, encodeChw } from "./stages.ts";
import { cropChw, resizeNearestChw } from "./image_ops.ts";
import {
  boxToMask,
  COMPLETION_SIZE,
  completionAttends,
  completionSequence,
  downsampleMask,
  scatterCompletion,
  surroundingBoxCrop,
} from "./completion_layout.ts";
import { Progress } from "./progress.ts";
import {
  type CompletionRequest,
  type EmitEvent,
  PipelineError,
  type ResultImage,
  type StageName,
  throwIfAborted,
} from "./types.ts";

/** What completion needs from CogLM beyond `generate`: filling -1 slots of an arbitrary sequence. */
interface CoglmFill {
  fill(options: FillOptions): Promise<Int32Array[]>;
}

export async function runCompletion(stages: Stages, o: {
  request: CompletionRequest;
  textIds: number[];
  /** The style's recipe: CogLM's fill and DSR sample with it. */
  recipe: Recipe;
  maxInferenceBatch: number;
  emit: EmitEvent;
  signal: AbortSignal;
}): Promise<ResultImage[]> {
  const { tokenizer, coglm, sr, vqvae } = stages;
  const { request, signal } = o;
  const fill = (coglm as unknown as Partial<CoglmFill>).fill;
  if (typeof fill !== "function") {
    throw new PipelineError(
      "Text-guided completion is not available: the CogLM stage (src/models/coglm.ts) has no fill() for " +
        "reordered sequences yet",
      503,
    );
  }
  const size = COMPLETION_SIZE;
  let image: Float32Array;
  try {
    // Decoding and the icetk PIL-path preprocessing (uint8 Resize rounded half-to-even, CenterCrop offsets
    // half-to-even, as the original completion script loads the upload) run in a worker: off the event loop.
    image = (await decodePreprocessOffThread(request.image, size, signal)).image;
  } catch (e) {
    if (signal.aborted) throw e;
    throw new PipelineError(
      `Field 'image' is not a PNG or JPEG image: ${e instanceof Error ? e.message : e}`,
    );
  }
  const mask = boxToMask(request.box, size);
  const { crop } = surroundingBoxCrop(mask, size);
  const side = crop.y1 - crop.y0;
  const plan: StageName[] = [
    "encode",
    "coglm",
    ...(side > 160 ? ["dsr", "itersr"] as StageName[] : []),
    "decode",
  ];
  const progress = new Progress(o.emit, plan);

  progress.start("encode");
  const cropImg = cropChw(image, { c: 3, h: size, w: size }, crop);
  const cropMask = cropChw(Float32Array.from(mask), { c: 1, h: size, w: size }, crop);
  const small = resizeBilinear(cropImg, { c: 3, h: side, w: side }, 160, 160);
  const smallCodes = await vqvae.encode(small, 160, 160);
  const mask20 = downsampleMask(Uint8Array.from(cropMask), side, 20);
  progress.end();
  throwIfAborted(signal);

  // CogLM fills the masked cells; the text here is the whole template including its <start_of_image>, and
  // BaseCompletion appends another one (mirrored as the original does it).
  progress.start("coglm");
  const seq = completionSequence(o.textIds, tokenizer.tokenToId("<start_of_image>"), smallCodes, mask20);
  const mbz = o.maxInferenceBatch;
  const batches = Math.ceil(request.n / mbz);
  const base: Int32Array[] = [];
  for (let b = 0; b < batches; b++) {
    const out = await fill.call(coglm, {
      ...seq,
      attends: (i: number, j: number) => completionAttends(i, j, seq.txtLen, seq.contextLength),
      batch: Math.min(mbz, request.n - b * mbz),
      seed: batchSeed(request.seed, b),
      recipe: o.recipe,
      signal,
      onStep: (s: number, n: number) => progress.step(b * n + s, batches * n),
    });
    for (const filled of out) base.push(scatterCompletion(filled, seq.positionIds, seq.txtLen, smallCodes));
  }
  progress.end();
  throwIfAborted(signal);

  let crops: Float32Array[];
  if (side <= 160) {
    progress.start("decode");
    crops = [];
    for (const [k, codes] of base.entries()) {
      crops.push(
        resizeNearestChw(await vqvae.decode(codes, 20, { signal }), { c: 3, h: 160, w: 160 }, side, side),
      );
      progress.step(k + 1, base.length);
    }
  } else {
    const text = Int32Array.from(o.textIds);
    progress.start("dsr");
    const dsred = await sr.directSr({
      textIds: text,
      lowres: base,
      seed: batchSeed(request.seed, 1000),
      // The style's topk_dsr / temp_cluster_dsr: cogview2_completion.py builds its SRGroup from args that include
      // get_recipe(style), as text2image does.
      recipe: o.recipe,
      signal,
      onStep: (s: number, n: number) => progress.step(s, n),
    });
    progress.end();
    // Outside the box, the DSR codes are replaced by the codes of the crop upsampled to 480.
    const up = resizeBilinear(cropImg, { c: 3, h: side, w: side }, size, size);
    const upCodes = await vqvae.encode(up, size, size);
    const bigMask = downsampleMask(Uint8Array.from(cropMask), side, 60);
    for (const codes of dsred) for (let i = 0; i < 3600; i++) if (!bigMask[i]) codes[i] = upCodes[i];
    progress.start("itersr");
    const refined = await sr.iterativeSr({
      textIds: text,
      highres: dsred,
      inputMask: bigMask,
      seed: batchSeed(request.seed, 2000),
      signal,
      onStep: (s: number, n: number) => progress.step(s, n),
    });
    progress.end();
    progress.start("decode");
    crops = [];
    for (const [k, codes] of refined.entries()) {
      crops.push(
        resizeNearestChw(await vqvae.decode(codes, 60, { signal }), { c: 3, h: size, w: size }, side, side),
      );
      progress.step(k + 1, refined.length);
    }
  }
  throwIfAborted(signal);

  // Paste each crop into the image, then round-trip the whole image through the VQ-VAE as the original does.
  const results: ResultImage[] = [];
  for (const c of crops) {
    const out = Float32Array.from(image);
    for (let ch = 0; ch < 3; ch++) {
      for (let y = 0; y < side; y++) {
        out.set(
          c.subarray((ch * side + y) * side, (ch * side + y + 1) * side),
          (ch * size + crop.y0 + y) * size + crop.x0,
        );
      }
    }
    const codes = await vqvae.encode(out, size, size);
    results.push(encodeChw(await vqvae.decode(codes, 60, { signal }), size, size, request.format));
    throwIfAborted(signal);
  }
  progress.end();
  return results;
}
