import assert from "node:assert/strict";
import { CogLM } from "../../src/models/coglm.ts";
import { getRecipe } from "../../src/sampling/recipes.ts";
import { sharedContext } from "../_util.ts";

Deno.test({
  name: "CogLM generate with the recipe's CoglmStrategy: seeded, batched, image tokens only",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const { convertFixtureSet } = await import("../../src/convert/fixture.ts");
    const tmp = await Deno.makeTempDir({ prefix: "coglm-sampling-test-" });
    try {
      await convertFixtureSet(new URL("../testdata/cogview2-tiny", import.meta.url).pathname, `${tmp}/model`);
      const m = await CogLM.load(ctx, `${tmp}/model`);
      const textIds = Int32Array.from([21371, 20392, 23869, 20021, 22697, 24346, 20100, 26001]);
      const recipe = getRecipe("mainbody");
      const run = (seed: number) => m.generate({ textIds, batch: 3, seed, recipe, numTokens: 9 });
      const a = await run(5), b = await run(5), c = await run(6);
      assert.deepEqual(a.map((x) => [...x]), b.map((x) => [...x]), "same seed, same tokens");
      assert.notDeepEqual(a.map((x) => [...x]), c.map((x) => [...x]), "another seed, other tokens");
      assert.notDeepEqual([...a[0]], [...a[1]], "batch rows draw independently");
      for (const row of [...a, ...c]) {
        for (const t of row) assert.ok(t >= 0 && t < m.imageTokens, `token ${t}`);
      }
      m.release();
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
