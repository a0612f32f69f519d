// CogLM golden cases (forward and post-selection perplexity); the two greedy generation cases run from
// coglm_generate_0_test.ts / coglm_generate_1_test.ts so that each file stays well within the per-file time budget.
import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: CogLM forward and perplexity cases of cogview2-tiny pass",
  ["coglm_forward", "coglm_perplexity"],
  { count: { atLeast: 2 } },
);
