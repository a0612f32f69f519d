import assert from "node:assert/strict";
import { openSafetensors, writeSafetensors } from "../../src/formats/safetensors.ts";
import { isInt8Candidate } from "../../src/formats/int8.ts";

Deno.test("safetensors stores I8 tensors (int8 weights) byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/q.safetensors`;
    const q = Int8Array.from([-127, -1, 0, 1, 127, 5]);
    await writeSafetensors(path, [{ name: "w", dtype: "i8", shape: [2, 3], data: new Uint8Array(q.buffer) }]);
    const f = await openSafetensors(path);
    assert.deepEqual(f.info("w"), { name: "w", dtype: "i8", shape: [2, 3], byteLength: 6 });
    assert.deepEqual([...new Int8Array((await f.read("w")).slice().buffer)], [...q]);
    f.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("int8 candidates: linear weights with a group, not embeddings, norms or convolutions", () => {
  assert.ok(isInt8Candidate("transformer.layers.0.attention.dense.weight", [3072, 3072]));
  assert.ok(!isInt8Candidate("transformer.word_embeddings.weight", [20000, 3072]));
  assert.ok(!isInt8Candidate("transformer.layers.0.input_layernorm.weight", [3072]));
  assert.ok(!isInt8Candidate("transformer.layers.0.attention.dense.bias", [3072]));
  assert.ok(!isInt8Candidate("encoder.conv_in.weight", [64, 3, 3, 3]));
  assert.ok(!isInt8Candidate("x.weight", [8, 101]));
});
