import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name: "conformance: icetk image cases of cogview2-tiny pass (decode 20/60, encode, resize, PIL, roundtrip)",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const verdicts = await runConformance(
      new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
      ctx,
      {
        kinds: new Set(["icetk_decode", "icetk_encode", "icetk_roundtrip"]),
        onVerdict: (v) => console.log(`${v.case}: ${v.status} (${v.ms.toFixed(0)} ms) ${v.detail}`),
      },
    );
    assert.ok(verdicts.length >= 6, `expected the 6 icetk image cases, got ${verdicts.length}`);
    for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
  },
});
