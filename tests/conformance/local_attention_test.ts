import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: local_attention cases of cogview2-tiny pass (GPU kernels and CPU twins)",
  ["local_attention"],
  { count: { atLeast: 3 } },
);
