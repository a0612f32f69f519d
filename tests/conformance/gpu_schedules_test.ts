// The golden CogLM and SR forward cases through the GPU schedules (a context over the same device that reports a
// non-CPU adapter: gemmTiles with double-buffered K slices, gemvRows, flashAttention), so that what a real GPU runs is
// held to the same golden tolerances. f16 arithmetic (COGVIEW2_F16_MATH=1) is not: it fails them (src/kernels/gemm.ts).
import { fixtureModelDir } from "../models/_sr_fixture.ts";
import { sharedContext } from "../_util.ts";
import { conformanceTest } from "./_run.ts";

const shared = await sharedContext();
const gpuSchedules = () => shared.withGpuSchedules();

conformanceTest(
  "conformance on GPU schedules: coglm_forward, coglm_perplexity, dsr_forward, itersr_forward",
  ["coglm_forward", "coglm_perplexity", "dsr_forward", "itersr_forward"],
  { count: { atLeast: 4 }, ctx: gpuSchedules, modelDir: fixtureModelDir },
);
