// Conformance of the SR stages on the tiny fixture: dsr_forward, itersr_forward and dsr_step_greedy through the runner
// (itersr_lopar_greedy runs in tests/models/sr_greedy_test.ts to keep each file short).
import { fixtureModelDir } from "../models/_sr_fixture.ts";
import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: dsr_forward, itersr_forward, dsr_step_greedy pass on the tiny fixture",
  ["dsr_forward", "itersr_forward", "dsr_step_greedy"],
  { count: 3, modelDir: fixtureModelDir },
);
