import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import { sharedContext } from "../_util.ts";

Deno.test("conformance: local_attention cases of cogview2-tiny pass (GPU kernels and CPU twins)", async () => {
  const ctx = await sharedContext();
  const verdicts = await runConformance(new URL("../testdata/cogview2-tiny", import.meta.url).pathname, ctx, {
    kinds: new Set(["local_attention"]),
  });
  assert.ok(verdicts.length >= 3, `expected the 3 local_attention cases, got ${verdicts.length}`);
  for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
});
