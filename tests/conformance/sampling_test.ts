import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: coglm_strategy and dsr_strategy cases of cogview2-tiny pass",
  ["coglm_strategy", "dsr_strategy"],
  { count: { atLeast: 4 } },
);
