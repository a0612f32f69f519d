// Memory bound of the converter: a generated ~1.4 GB float32 CogLM-shaped checkpoint is converted to float16 in a child
// process, whose peak RSS must stay under 1 GiB plus the largest tensor (the whole checkpoint never sits in memory).
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FakeStorage, type FakeTensor, writeTorchCheckpoint } from "../formats/_torch_writer.ts";
import { expectedTransformerTensors } from "../../src/convert/convert.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

Deno.test({
  name: "convert: peak RSS stays below 1 GiB + largest tensor on a generated 1.4 GB checkpoint",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // tmpfs when there is one: the test measures memory, not the disk.
    const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
    const tmp = await Deno.makeTempDir({ prefix: "convert-rss-", dir: shm ? "/dev/shm" : undefined });
    const t0 = performance.now();
    try {
      const sat = join(tmp, "sat");
      const arch = {
        model_class: "CachedAutoregressiveModel",
        num_layers: 6,
        hidden_size: 2048,
        num_attention_heads: 16,
        vocab_size: 26008,
        max_sequence_length: 1024,
        inner_hidden_size: 8192,
        layernorm_order: "sandwich",
      };
      await Deno.mkdir(join(sat, "coglm", "1"), { recursive: true });
      await Deno.writeTextFile(join(sat, "coglm", "latest"), "1");
      await Deno.writeTextFile(join(sat, "coglm", "model_config.json"), JSON.stringify(arch));
      // A repeating 4 MiB block of small float32 values (exactly representable in float16).
      const block = new Float32Array(2 ** 20).map((_, i) => ((i * 37) % 2001 - 1000) / 1024);
      const blockBytes = new Uint8Array(block.buffer);
      const storages: FakeStorage[] = [];
      const tensors: FakeTensor[] = [];
      let largest = 0;
      for (const [name, shape] of expectedTransformerTensors(arch)) {
        const numel = shape.reduce((a, b) => a * b, 1);
        const key = String(storages.length);
        largest = Math.max(largest, numel * 4);
        storages.push({
          key,
          dtype: "f32",
          numel,
          produce: async (sink) => {
            for (let off = 0; off < numel * 4; off += blockBytes.length) {
              await sink(blockBytes.subarray(0, Math.min(blockBytes.length, numel * 4 - off)));
            }
          },
        });
        tensors.push({ name, storage: key, shape });
      }
      await writeTorchCheckpoint(join(sat, "coglm", "1", "mp_rank_00_model_states.pt"), {
        storages,
        tensors,
        archive: "mp_rank_00_model_states",
      });
      const total = storages.reduce((a, s) => a + s.numel * 4, 0);
      assert.ok(total > 1.3e9, `checkpoint is ${total} bytes`);
      for (const m of ["cogview2-dsr", "cogview2-itersr"]) {
        await Deno.mkdir(join(sat, m, "1"), { recursive: true });
        for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
          await Deno.copyFile(join(FIX, "sat", m, f), join(sat, m, f));
        }
      }
      const tGen = (performance.now() - t0) / 1000;
      const out = join(tmp, "out");
      const child = new Deno.Command(Deno.execPath(), {
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
      });
      const r = await child.output();
      const stderr = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 0, stderr);
      const { peakBytes, seconds } = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
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
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
