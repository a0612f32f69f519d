// Shared parts of the converter memory-bound tests (peak_rss_test.ts: a plain SAT folder; peak_rss_stream_test.ts: a
// deflated coglm.zip): a generated float32 CogLM-shaped checkpoint, the fixture's SR models beside it, and the
// conversion in a child process (_rss_child.ts) that reports its peak RSS.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { FakeStorage, FakeTensor } from "../formats/_torch_writer.ts";
import { expectedTransformerTensors } from "../../src/convert/convert.ts";

export const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

/** A CogLM-shaped SAT architecture (model_config.json) with `numLayers` full-width layers. */
export function coglmArch(numLayers: number) {
  return {
    model_class: "CachedAutoregressiveModel",
    num_layers: numLayers,
    hidden_size: 2048,
    num_attention_heads: 16,
    vocab_size: 26008,
    max_sequence_length: 1024,
    inner_hidden_size: 8192,
    layernorm_order: "sandwich",
  };
}

/**
 * One float32 storage per tensor of `arch`, produced on demand from a repeating 4 MiB block of small values (exactly
 * representable in float16), with the largest tensor's and the total byte count.
 */
export function fakeCheckpoint(arch: ReturnType<typeof coglmArch>): {
  storages: FakeStorage[];
  tensors: FakeTensor[];
  largest: number;
  total: number;
} {
  const block = new Float32Array(2 ** 20).map((_, i) => ((i * 37) % 2001 - 1000) / 1024);
  const blockBytes = new Uint8Array(block.buffer);
  const storages: FakeStorage[] = [];
  const tensors: FakeTensor[] = [];
  let largest = 0, total = 0;
  for (const [name, shape] of expectedTransformerTensors(arch)) {
    const numel = shape.reduce((a, b) => a * b, 1);
    const key = String(storages.length);
    largest = Math.max(largest, numel * 4);
    total += numel * 4;
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
  return { storages, tensors, largest, total };
}

/** Runs `fn` in a fresh temporary folder (tmpfs when there is one: the tests measure memory, not the disk). */
export async function inTempDir(prefix: string, fn: (tmp: string) => Promise<void>): Promise<void> {
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  const tmp = await Deno.makeTempDir({ prefix, dir: shm ? "/dev/shm" : undefined });
  try {
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Copies the fixture's DSR and iterative-SR SAT folders into `sat`. */
export async function copyFixtureSrModels(sat: string): Promise<void> {
  for (const m of ["cogview2-dsr", "cogview2-itersr"]) {
    await Deno.mkdir(join(sat, m, "1"), { recursive: true });
    for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
      await Deno.copyFile(join(FIX, "sat", m, f), join(sat, m, f));
    }
  }
}

/** Converts the SAT folder `sat` (with the fixture's tokenizer and clusters) into `out` in a child process. */
export async function convertInChild(
  sat: string,
  out: string,
): Promise<{ peakBytes: number; seconds: number }> {
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
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
}
