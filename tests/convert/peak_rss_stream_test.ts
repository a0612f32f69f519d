// Memory bound of the streaming path: a generated ~600 MB float32 checkpoint inside a *deflated* coglm.zip (as a plain
// `zip -r` of a download would be) is converted in a child process; peak RSS must stay under 1 GiB + largest tensor.
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkpointPickle, type FakeTensor } from "../formats/_torch_writer.ts";
import { expectedTransformerTensors } from "../../src/convert/convert.ts";
import { writeZip, ZipArchive } from "../../src/formats/zip.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

Deno.test({
  name: "convert: peak RSS of a deflated 600 MB checkpoint streamed from a .zip stays bounded",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
    const tmp = await Deno.makeTempDir({ prefix: "convert-rss2-", dir: shm ? "/dev/shm" : undefined });
    try {
      const sat = join(tmp, "sat");
      await Deno.mkdir(sat);
      const arch = {
        model_class: "CachedAutoregressiveModel",
        num_layers: 2,
        hidden_size: 2048,
        num_attention_heads: 16,
        vocab_size: 26008,
        max_sequence_length: 1024,
        inner_hidden_size: 8192,
        layernorm_order: "sandwich",
      };
      // The inner checkpoint: built in memory once (the test process, not the measured child).
      const tensors: FakeTensor[] = [];
      const storages: { key: string; numel: number }[] = [];
      let largest = 0;
      for (const [name, shape] of expectedTransformerTensors(arch)) {
        const numel = shape.reduce((a, b) => a * b, 1);
        const key = String(storages.length);
        storages.push({ key, numel });
        tensors.push({ name, storage: key, shape });
        largest = Math.max(largest, numel * 4);
      }
      const inner = join(tmp, "inner.pt");
      const block = new Float32Array(2 ** 20).map((_, i) => ((i * 37) % 2001 - 1000) / 1024);
      const blockBytes = new Uint8Array(block.buffer);
      await writeZip(inner, [
        {
          name: "m/data.pkl",
          data: checkpointPickle({ storages: storages.map((s) => ({ ...s, dtype: "f32" })), tensors }),
        },
        ...storages.map((s) => ({
          name: `m/data/${s.key}`,
          size: s.numel * 4,
          produce: async (sink: (c: Uint8Array) => Promise<void>) => {
            for (let off = 0; off < s.numel * 4; off += blockBytes.length) {
              await sink(blockBytes.subarray(0, Math.min(blockBytes.length, s.numel * 4 - off)));
            }
          },
        })),
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
      for (const m of ["cogview2-dsr", "cogview2-itersr"]) {
        await Deno.mkdir(join(sat, m, "1"), { recursive: true });
        for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
          await Deno.copyFile(join(FIX, "sat", m, f), join(sat, m, f));
        }
      }
      const out = join(tmp, "out");
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          new URL("./_rss_child.ts", import.meta.url).pathname,
          sat,
          join(FIX, "icetk"),
          join(FIX, "cluster_label.npy"),
          out,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      const { peakBytes, seconds } = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
      const limit = 2 ** 30 + largest;
      console.log(
        `streamed ${(pt.length / 2 ** 20).toFixed(0)} MiB (deflated) in ${seconds.toFixed(1)} s; peak RSS ` +
          `${(peakBytes / 2 ** 20).toFixed(0)} MiB (limit ${(limit / 2 ** 20).toFixed(0)} MiB)`,
      );
      assert.ok(peakBytes > 0 && peakBytes < limit, `peak RSS ${peakBytes} ≥ ${limit}`);
      const st = await Deno.stat(join(out, "coglm.safetensors"));
      assert.ok(Math.abs(st.size - pt.length / 2) < 2 ** 20, `f16 output is half the f32 input (${st.size})`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
