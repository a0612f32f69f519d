// CogLM golden case coglm_generate_greedy_0 (400 KV-cached greedy steps, batch 2, tokens exact) with every decode
// step's attention split over 4 key ranges (COGVIEW2_ATTENTION_SPLIT=4: flash-decoding, shaders/attention.wgsl SPLIT
// + combine, K/V store of the new row in the last split). In a child process, so the variable never reaches the
// other test files that `deno test --parallel` runs in this process at the same time. CPU adapters' default is 1
// split (choices.ts attentionSplit), so without the variable the split path never runs in the models here.
import assert from "node:assert/strict";
import { fixtureModelDir } from "../models/_sr_fixture.ts";
import { FIXTURE } from "./_run.ts";

Deno.test("conformance: CogLM greedy case 0 with the decode attention split over 4 key ranges (COGVIEW2_ATTENTION_SPLIT=4) passes, 800/800 tokens exact", async () => {
  const tool = new URL("../../tools/conformance.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-webgpu",
      tool,
      FIXTURE,
      "--case",
      "^coglm_generate_greedy_0$",
      "--model",
      await fixtureModelDir(),
    ],
    env: { COGVIEW2_ATTENTION_SPLIT: "4" },
  }).output();
  const out = new TextDecoder().decode(stdout);
  console.log(out.trim());
  assert.equal(code, 0, `${out}\n${new TextDecoder().decode(stderr)}`);
  assert.match(out, /PASS coglm_generate_greedy_0 .* 800\/800 tokens exact/);
  assert.match(out, /^1 passed, 0 failed$/m);
});
