// CogLM golden case coglm_generate_greedy_1: 400 KV-cached greedy steps for a batch of 2, tokens exact.
import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: CogLM greedy generation case 1 of cogview2-tiny passes (KV cache, batch 2, 400 tokens exact)",
  ["coglm_generate_greedy"],
  { filter: /^coglm_generate_greedy_1$/, count: 1 },
);
