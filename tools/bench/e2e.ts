// End-to-end benchmark: text-to-image jobs through the pipeline as users run them, wall time per stage and per image.
// Not a kernel benchmark: it runs the demo model, or a converted model (--model DIR or COGVIEW2_MODEL; `bench
// --compare-backends` converts the tiny test fixture set); at these sizes the numbers show per-step overheads and the
// fixed-size stages (20000-code logits, 60×60 SR, 480×480 decode), not the real model.
// The first jobs (the whole pipeline for one image, the first stage for four) are the warm-up: they create the
// pipelines the later jobs use, and are reported apart (e2e_warmup_s, with the pipelines created and the seconds spent
// creating them); the timed jobs then measure steady state: first stage alone and the whole pipeline at n = 1 and 4
// (--quick: first stage only).

import { ensureDemoModel } from "../../src/demo/model.ts";
import { Text2ImagePipeline } from "../../src/pipeline/text2image.ts";
import type { StageName } from "../../src/pipeline/types.ts";
import type { BenchSuite } from "./_types.ts";

export const e2eSuite: BenchSuite = {
  name: "e2e",
  description: "text → image: s per stage and per image, first stage alone and whole pipeline, n = 1 and 4 " +
    "(demo model unless --model / COGVIEW2_MODEL); warm-up (pipeline creation) apart; --quick: first stage only",
  async run(ctx, report, { quick, model: modelFlag }) {
    const model = modelFlag ?? Deno.env.get("COGVIEW2_MODEL");
    const modelDir = model ?? await ensureDemoModel();
    const label = model ? "converted" : "demo";
    const t0 = performance.now();
    const pipeline = await Text2ImagePipeline.open({ ctx, modelDir, demo: !model });
    report({ name: "e2e_load", params: { model: label }, value: (performance.now() - t0) / 1000, unit: "s" });
    const job = async (onlyFirstStage: boolean, n: number) => {
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
      return {
        stages,
        steps,
        firstPreview,
        images: images.length,
        total: (performance.now() - start) / 1000,
      };
    };
    // Warm-up: the whole pipeline (first stage only with --quick) at n = 1, then the first stage at n = 4 (its batched
    // CogLM shapes are further pipelines); the timed jobs then reuse them (any they still create is reported).
    const s0 = { ...ctx.stats };
    const warm = (await job(quick, 1)).total + (await job(true, 4)).total;
    const wparams = { model: label, only_first_stage: quick, n: "1+4" };
    report({ name: "e2e_warmup_s", params: wparams, value: warm, unit: "s" });
    report({
      name: "e2e_warmup_pipelines",
      params: wparams,
      value: ctx.stats.pipelines - s0.pipelines,
      unit: "",
    });
    report({
      name: "e2e_warmup_compile_s",
      params: { ...wparams, note: "wall time creating shader modules and pipelines" },
      value: (ctx.stats.compileMs - s0.compileMs) / 1000,
      unit: "s",
    });
    const runs: Array<{ onlyFirstStage: boolean; n: number }> = [
      { onlyFirstStage: true, n: 1 },
      { onlyFirstStage: true, n: 4 },
      ...(quick ? [] : [{ onlyFirstStage: false, n: 1 }, { onlyFirstStage: false, n: 4 }]),
    ];
    for (const { onlyFirstStage, n } of runs) {
      const p0 = ctx.stats.pipelines;
      const r = await job(onlyFirstStage, n);
      const params = { model: label, only_first_stage: onlyFirstStage, n };
      for (const [stage, s] of r.stages) {
        report({ name: `e2e_stage_${stage}_per_image`, params, value: s / r.images, unit: "s" });
      }
      const coglm = r.stages.get("coglm");
      if (coglm && r.steps) {
        report({ name: "e2e_coglm_step", params, value: coglm / r.steps * 1000, unit: "ms" });
      }
      report({ name: "e2e_first_preview", params, value: r.firstPreview, unit: "s" });
      report({ name: "e2e_per_image", params, value: r.total / r.images, unit: "s" });
      report({ name: "e2e_job", params, value: r.total, unit: "s" });
      if (ctx.stats.pipelines > p0) {
        report({ name: "e2e_pipelines_after_warmup", params, value: ctx.stats.pipelines - p0, unit: "" });
      }
    }
  },
};
