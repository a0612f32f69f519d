// Greedy LoPAR through the conformance kind itersr_lopar_greedy: six rounds, round inputs and final tokens.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";
import { FIXTURE, fixtureModelDir } from "./_sr_fixture.ts";

Deno.test("conformance: itersr_lopar_greedy passes on the tiny fixture", async () => {
  const ctx = await sharedContext();
  const verdicts = await runConformance(FIXTURE, ctx, {
    kinds: new Set(["itersr_lopar_greedy"]),
    modelDir: await fixtureModelDir(),
  });
  assert.equal(verdicts.length, 1);
  for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status}: ${v.detail}`);
});
