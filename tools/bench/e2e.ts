// End-to-end benchmark: text-to-image jobs through the pipeline as users run them, wall time per stage and per image.
// Not a kernel benchmark: it runs the demo model (or COGVIEW2_MODEL); on the demo the sizes are tiny, so the numbers
// show per-step overheads and the fixed-size stages (20000-code logits, 60×60 SR, 480×480 decode), not the real model.

import { ensureDemoModel } from "../../src/demo/model.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import type { StageName } from "../../src/pipeline/types.ts";
import type { BenchSuite } from "./_types.ts";

export const e2eSuite: BenchSuite = {
  name: "e2e",
  description:
    "text → image: seconds per stage and per image (demo model unless COGVIEW2_MODEL); --quick: first stage only",
  async run(ctx, report, { quick }) {
    const model = Deno.env.get("COGVIEW2_MODEL");
    const modelDir = model ?? await ensureDemoModel();
    const label = model ? "converted" : "demo";
    const t0 = performance.now();
    const pipeline = await Text2ImagePipeline.open({ ctx, modelDir, demo: !model });
    report({ name: "e2e_load", params: { model: label }, value: (performance.now() - t0) / 1000, unit: "s" });
    const runs: Array<{ onlyFirstStage: boolean; n: number }> = quick
      ? [{ onlyFirstStage: true, n: 1 }]
      : [{ onlyFirstStage: true, n: 1 }, { onlyFirstStage: true, n: 2 }, { onlyFirstStage: false, n: 1 }];
    for (const { onlyFirstStage, n } of runs) {
      const stages = new Map<StageName, number>();
      let steps = 0, firstPreview = 0;
      const start = performance.now();
      const images = await pipeline.generate({
        prompt: "a photo of a cat",
        style: pipeline.info().defaultStyle,
        n,
        seed: 1,
        onlyFirstStage,
        inversePrompt: false,
        format: "png",
      }, (e) => {
        if (e.type === "stage_done") stages.set(e.stage, (stages.get(e.stage) ?? 0) + e.seconds);
        if (e.type === "step" && e.stage === "coglm") steps++;
        if (e.type === "preview" && !firstPreview) firstPreview = (performance.now() - start) / 1000;
      }, new AbortController().signal);
      const total = (performance.now() - start) / 1000;
      const params = { model: label, only_first_stage: onlyFirstStage, n };
      for (const [stage, s] of stages) {
        report({ name: `e2e_stage_${stage}_per_image`, params, value: s / images.length, unit: "s" });
      }
      const coglm = stages.get("coglm");
      if (coglm && steps) {
        report({ name: "e2e_coglm_step", params, value: coglm / steps * 1000, unit: "ms" });
      }
      report({ name: "e2e_first_preview", params, value: firstPreview, unit: "s" });
      report({ name: "e2e_per_image", params, value: total / images.length, unit: "s" });
    }
  },
};
