// Memory bound of the streaming path: a generated ~600 MB float32 checkpoint inside a *deflated* coglm.zip (as a plain
// `zip -r` of a download would be) is converted in a child process; peak RSS must stay under 1 GiB + largest tensor.
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkpointPickle } from "../formats/_torch_writer.ts";
import { writeZip, ZipArchive } from "../../src/formats/zip.ts";
import { coglmArch, convertInChild, copyFixtureSrModels, fakeCheckpoint, inTempDir } from "./_rss.ts";

Deno.test({
  name: "convert: peak RSS of a deflated 600 MB checkpoint streamed from a .zip stays bounded",
  ignore: Deno.build.os !== "linux",
  fn: () =>
    inTempDir("convert-rss2-", async (tmp) => {
      const sat = join(tmp, "sat");
      await Deno.mkdir(sat);
      const arch = coglmArch(2);
      // The inner checkpoint: built in memory once (the test process, not the measured child).
      const { storages, tensors, largest } = fakeCheckpoint(arch);
      const inner = join(tmp, "inner.pt");
      await writeZip(inner, [
        { name: "m/data.pkl", data: checkpointPickle({ storages, tensors }) },
        ...storages.map((s) => ({ name: `m/data/${s.key}`, size: s.numel * 4, produce: s.produce! })),
      ]);
      const pt = await Deno.readFile(inner);
      await Deno.remove(inner);
      await writeZip(join(sat, "coglm.zip"), [
        { name: "coglm/latest", data: new TextEncoder().encode("1"), deflate: true },
        {
          name: "coglm/model_config.json",
          data: new TextEncoder().encode(JSON.stringify(arch)),
          deflate: true,
        },
        { name: "coglm/1/mp_rank_00_model_states.pt", data: pt, deflate: true },
      ]);
      const z = await ZipArchive.openFile(join(sat, "coglm.zip"));
      assert.equal(z.entry("coglm/1/mp_rank_00_model_states.pt").method, 8);
      z.close();
      await copyFixtureSrModels(sat);
      const out = join(tmp, "out");
      const { peakBytes, seconds } = await convertInChild(sat, out);
      const limit = 2 ** 30 + largest;
      console.log(
        `streamed ${(pt.length / 2 ** 20).toFixed(0)} MiB (deflated) in ${seconds.toFixed(1)} s; peak RSS ` +
          `${(peakBytes / 2 ** 20).toFixed(0)} MiB (limit ${(limit / 2 ** 20).toFixed(0)} MiB)`,
      );
      assert.ok(peakBytes > 0 && peakBytes < limit, `peak RSS ${peakBytes} ≥ ${limit}`);
      const st = await Deno.stat(join(out, "coglm.safetensors"));
      assert.ok(Math.abs(st.size - pt.length / 2) < 2 ** 20, `f16 output is half the f32 input (${st.size})`);
    }),
});
