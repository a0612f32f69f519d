// The icetk_text golden cases (unigram and BPE text models) through the conformance runner. The kind never touches
// the GPU, so no adapter is requested.
import assert from "node:assert/strict";
import { runConformance } from "../../src/conformance/runner.ts";
import type { GpuContext } from "../../src/gpu/context.ts";

Deno.test("conformance: icetk_text cases of cogview2-tiny pass exactly", async () => {
  const noGpu = new Proxy({}, {
    get: (_t, p) => {
      throw new Error(`icetk_text must not use the GPU (touched ctx.${String(p)})`);
    },
  }) as GpuContext;
  const verdicts = await runConformance(
    new URL("../testdata/cogview2-tiny", import.meta.url).pathname,
    noGpu,
    {
      kinds: new Set(["icetk_text"]),
    },
  );
  assert.equal(
    verdicts.length,
    2,
    `expected icetk_text and icetk_text_bpe, got ${verdicts.map((v) => v.case)}`,
  );
  for (const v of verdicts) assert.ok(v.pass, `${v.case}: ${v.status} ${v.detail}`);
});
