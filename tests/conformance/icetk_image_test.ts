// The icetk image cases of cogview2-tiny through the conformance runner. icetk_decode_60 (480×480, the slow one on
// lavapipe) runs in tests/conformance/icetk_decode60_test.ts so each file stays short.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name: "conformance: icetk image cases of cogview2-tiny pass (decode 20x20, encode, resize, PIL, roundtrip)",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const verdicts = await runConformance(
      new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
      ctx,
      {
        kinds: new Set(["icetk_decode", "icetk_encode", "icetk_roundtrip"]),
        filter: /^(?!icetk_decode_60$)/,
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      },
    );
    assert.ok(verdicts.length >= 5, `expected the 5 icetk image cases, got ${verdicts.length}`);
    for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  },
});
