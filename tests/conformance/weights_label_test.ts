// The conformance runner converts at source precision and labels each case with the weights it ran with (#14):
// a fixture whose CogLM is stored as float32 that float16 cannot hold shows "f32" by default and "f16, NARROWED from
// f32 (N tensors)" when converted with --weights f16; the unchanged f16 fixture shows plain "f16".
import assert from "node:assert/strict";
import { join } from "node:path";
import { describeWeights, runConformance } from "../../src/conformance/runner.ts";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { writeF32Checkpoint } from "../convert/_f32_checkpoint.ts";
import { sharedContext } from "../_util.ts";
import { FIXTURE } from "./_run.ts";

Deno.test({
  name: "conformance: each case says which weights it ran with, and when they were narrowed",
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "conf-weights-" });
    try {
      const set = join(tmp, "set");
      await new Deno.Command("cp", { args: ["-r", FIXTURE, set] }).output();
      await new Deno.Command("chmod", { args: ["-R", "u+w", set] }).output();
      const pt = "sat/coglm/1/mp_rank_00_model_states.pt";
      await writeF32Checkpoint(join(FIXTURE, pt), join(set, pt), { wrap: true });
      // Narrowed on purpose: the label says so (the perturbation is below f16's half-ulp, so the case still passes).
      const vs = await runConformance(set, await sharedContext(), {
        kinds: new Set(["coglm_forward", "local_attention"]),
        weights: "f16",
      });
      const fwd = vs.find((v) => v.kind === "coglm_forward")!;
      assert.match(fwd.weights ?? "", /^f16, NARROWED from f32 \(36 tensors\)$/);
      assert.ok(fwd.pass, fwd.detail);
      for (const v of vs.filter((v) => v.kind === "local_attention")) {
        assert.equal(v.weights, undefined, "kinds without a model carry no weights label");
      }
      // Default conversion: kept as stored.
      const src = join(tmp, "src");
      await convertFixtureSet(set, src);
      assert.equal(await describeWeights(src, "coglm"), "f32");
      assert.equal(await describeWeights(src, "vqvae"), "f16");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
