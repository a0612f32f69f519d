// CogLM golden cases (forward and post-selection perplexity); the two greedy generation cases run from
// coglm_generate_0_test.ts / coglm_generate_1_test.ts so that each file stays well within the per-file time budget.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name: "conformance: CogLM forward and perplexity cases of cogview2-tiny pass",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const verdicts = await runConformance(
      new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
      ctx,
      {
        kinds: new Set(["coglm_forward", "coglm_perplexity"]),
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      },
    );
    assert.ok(
      verdicts.length >= 2,
      `expected the CogLM forward and perplexity cases, got ${verdicts.length}`,
    );
    for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  },
});
