// Text-guided completion end to end on the real stages (#17.3): the tiny fixture converted, Text2ImagePipeline.open
// on the test's GPU context (lavapipe on CI; under COGVIEW2_MAX_BINDING_BYTES every binding above the lowered limit
// must be split), a 64×64 PNG with a box whose surrounding crop stays ≤ 160 px (encode → CogLM fill → decode, then
// the whole image's VQ-VAE round trip the original does). Slow on CPU adapters (~1-3 min: the 480×480 round trip).
// Not numerics (the stages have their golden cases); it checks that every stage runs and the result is an image.
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { decodeImage, encodePng } from "../../src/formats/image.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import type { PipelineEvent } from "../../src/pipeline/types.ts";
import { sharedContext } from "../_util.ts";

const FIXTURE = new URL("../testdata/cogview2-tiny", import.meta.url).pathname;

Deno.test({
  name:
    "completion end to end on the GPU (converted tiny fixture): encode, CogLM fill, decode, a 480×480 PNG",
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "completion-e2e-" });
    try {
      const model = join(tmp, "model");
      await convertFixtureSet(FIXTURE, model);
      const ctx = await sharedContext();
      const p = await Text2ImagePipeline.open({ ctx, modelDir: model });
      assert.equal(p.info().completion, true);
      const W = 64, H = 64;
      const rgba = new Uint8Array(W * H * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
      const stages: string[] = [];
      const out = await p.complete(
        {
          prompt: "a cat",
          style: "none",
          n: 1,
          seed: 3,
          image: encodePng(rgba, W, H),
          box: [0.3, 0.3, 0.5, 0.5],
          format: "png",
        },
        (e: PipelineEvent) => {
          if (e.type === "stage") stages.push(e.stage);
        },
        new AbortController().signal,
      );
      assert.deepEqual(stages, ["encode", "coglm", "decode"]);
      assert.equal(out.length, 1);
      const img = decodeImage(out[0].data);
      assert.deepEqual([img.width, img.height], [480, 480]);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
