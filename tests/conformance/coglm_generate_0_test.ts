// CogLM golden case coglm_generate_greedy_0: 400 KV-cached greedy steps for a batch of 2, tokens exact.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name:
    "conformance: CogLM greedy generation case 0 of cogview2-tiny passes (KV cache, batch 2, 400 tokens exact)",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const verdicts = await runConformance(
      new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
      ctx,
      {
        kinds: new Set(["coglm_generate_greedy"]),
        filter: /^coglm_generate_greedy_0$/,
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      },
    );
    assert.equal(verdicts.length, 1, "expected the case coglm_generate_greedy_0");
    for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  },
});
