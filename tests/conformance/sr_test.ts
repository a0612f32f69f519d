// Conformance of the SR stages on the tiny fixture: dsr_forward, itersr_forward and dsr_step_greedy through the runner
// (itersr_lopar_greedy runs in tests/models/sr_greedy_test.ts to keep each file short).
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";
import { fixtureModelDir } from "../models/_sr_fixture.ts";

const FIXTURE = new URL("../testdata/cogview2-tiny", import.meta.url).pathname;

Deno.test("conformance: dsr_forward, itersr_forward, dsr_step_greedy pass on the tiny fixture", async () => {
  const ctx = await sharedContext();
  const verdicts = await runConformance(FIXTURE, ctx, {
    kinds: new Set(["dsr_forward", "itersr_forward", "dsr_step_greedy"]),
    modelDir: await fixtureModelDir(),
  });
  assert.equal(verdicts.length, 3);
  for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status}: ${v.detail}`);
});
