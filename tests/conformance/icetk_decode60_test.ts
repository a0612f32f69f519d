// icetk_decode_60 (60×60 codes → 480×480) through the conformance runner: the full-size CogView2 decode.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name: "conformance: icetk_decode_60 of cogview2-tiny passes (60x60 codes, 480x480 image)",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const verdicts = await runConformance(
      new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
      ctx,
      {
        kinds: new Set(["icetk_decode"]),
        filter: /^icetk_decode_60$/,
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      },
    );
    assert.equal(verdicts.length, 1, "icetk_decode_60 is in the fixture");
    for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  },
});
