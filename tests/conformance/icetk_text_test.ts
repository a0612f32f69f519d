// The icetk_text golden cases (unigram and BPE text models) through the conformance runner. The kind never touches
// the GPU, so no adapter is requested.
import type { GpuContext } from "../../src/gpu/context.ts";
import { conformanceTest } from "./_run.ts";

const noGpu = new Proxy({}, {
  get: (_t, p) => {
    throw new Error(`icetk_text must not use the GPU (touched ctx.${String(p)})`);
  },
}) as GpuContext;

conformanceTest("conformance: icetk_text cases of cogview2-tiny pass exactly", ["icetk_text"], {
  count: 2,
  ctx: () => noGpu,
});
