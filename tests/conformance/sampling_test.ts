import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test("conformance: coglm_strategy and dsr_strategy cases of cogview2-tiny pass", async () => {
  const ctx = await sharedContext();
  const verdicts = await runConformance(new URL("../testdata/cogview2-tiny", import.meta.url).pathname, ctx, {
    kinds: new Set(["coglm_strategy", "dsr_strategy"]),
  });
  assert.ok(verdicts.length >= 4, `expected the 4 strategy cases, got ${verdicts.length}`);
  for (const v of verdicts) {
    console.log(`${v.status.toUpperCase()} ${v.case}: ${v.detail}`);
    assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  }
});
