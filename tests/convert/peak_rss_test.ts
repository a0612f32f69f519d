// Memory bound of the converter: a generated ~1.4 GB float32 CogLM-shaped checkpoint is converted to float16 in a child
// process, whose peak RSS must stay under 1 GiB plus the largest tensor (the whole checkpoint never sits in memory).
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeTorchCheckpoint } from "../formats/_torch_writer.ts";
import { coglmArch, convertInChild, copyFixtureSrModels, fakeCheckpoint, inTempDir } from "./_rss.ts";

Deno.test({
  name: "convert: peak RSS stays below 1 GiB + largest tensor on a generated 1.4 GB checkpoint",
  ignore: Deno.build.os !== "linux",
  fn: () =>
    inTempDir("convert-rss-", async (tmp) => {
      const t0 = performance.now();
      const sat = join(tmp, "sat");
      const arch = coglmArch(6);
      await Deno.mkdir(join(sat, "coglm", "1"), { recursive: true });
      await Deno.writeTextFile(join(sat, "coglm", "latest"), "1");
      await Deno.writeTextFile(join(sat, "coglm", "model_config.json"), JSON.stringify(arch));
      const { storages, tensors, largest, total } = fakeCheckpoint(arch);
      await writeTorchCheckpoint(join(sat, "coglm", "1", "mp_rank_00_model_states.pt"), {
        storages,
        tensors,
        archive: "mp_rank_00_model_states",
      });
      assert.ok(total > 1.3e9, `checkpoint is ${total} bytes`);
      await copyFixtureSrModels(sat);
      const tGen = (performance.now() - t0) / 1000;
      const out = join(tmp, "out");
      const { peakBytes, seconds } = await convertInChild(sat, out);
      const limit = 2 ** 30 + largest;
      console.log(
        `generated in ${tGen.toFixed(1)} s; converted ${(total / 2 ** 30).toFixed(2)} GiB in ${
          seconds.toFixed(1)
        } s; peak RSS ${(peakBytes / 2 ** 20).toFixed(0)} MiB ` +
          `(limit ${(limit / 2 ** 20).toFixed(0)} MiB)`,
      );
      assert.ok(peakBytes > 0 && peakBytes < limit, `peak RSS ${peakBytes} ≥ ${limit}`);
      const st = await Deno.stat(join(out, "coglm.safetensors"));
      assert.ok(
        st.size > total / 2 && st.size < total / 2 + 2 ** 20,
        `f16 output is half the f32 input (${st.size})`,
      );
    }),
});
