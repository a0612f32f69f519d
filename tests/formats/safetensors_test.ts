// safetensors writer/reader: layout as the format specifies, streamed entries, range reads, and named errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSafetensors, writeSafetensors } from "../../src/formats/safetensors.ts";

Deno.test("safetensors: written files follow the spec and read back by name and range", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "w.safetensors");
    const a = Float32Array.from({ length: 37 }, (_, i) => i * 0.5 - 3);
    const b = Uint16Array.from({ length: 3 * 5 }, (_, i) => 0x3c00 + i);
    const streamed = Uint8Array.from({ length: 1001 }, (_, i) => (i * 7) & 255);
    await writeSafetensors(path, [
      { name: "a", dtype: "f32", shape: [37], data: a },
      { name: "layers.0.b", dtype: "f16", shape: [3, 5], data: b },
      {
        name: "s",
        dtype: "u8",
        shape: [7, 11, 13],
        write: async (sink) => {
          for (let i = 0; i < streamed.length; i += 100) await sink(streamed.subarray(i, i + 100));
        },
      },
    ], { metadata: { note: "test" } });
    // Spec: u64 LE header size, JSON header padded to 8 bytes, data offsets relative to the end of the header.
    const raw = await Deno.readFile(path);
    const n = Number(new DataView(raw.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(raw.subarray(8, 8 + n)));
    assert.deepEqual(header.a, { dtype: "F32", shape: [37], data_offsets: [0, 148] });
    assert.deepEqual(header["layers.0.b"].data_offsets, [148, 178]);
    assert.equal(header.__metadata__.note, "test");
    assert.equal(raw.length, 8 + n + 148 + 30 + 1001);

    const f = await openSafetensors(path);
    try {
      assert.deepEqual(f.names().sort(), ["a", "layers.0.b", "s"]);
      assert.deepEqual(f.info("layers.0.b"), {
        name: "layers.0.b",
        dtype: "f16",
        shape: [3, 5],
        byteLength: 30,
      });
      assert.deepEqual(new Float32Array((await f.read("a")).slice().buffer), a);
      const [r1, r2] = await Promise.all([f.readRange("s", 13, 29), f.readRange("a", 4, 8)]);
      assert.deepEqual(r1, streamed.subarray(13, 42));
      assert.deepEqual(new Float32Array(r2.slice().buffer), a.subarray(1, 3));
      assert.throws(() => f.info("missing"), /w\.safetensors: no tensor named "missing"/);
      await assert.rejects(f.readRange("a", 140, 16), /outside tensor "a"/);
    } finally {
      f.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: bad sizes and bad files give errors naming the tensor or file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "bad.safetensors");
    await assert.rejects(
      writeSafetensors(path, [{ name: "x", dtype: "f32", shape: [3], data: new Float32Array(4) }]),
      /tensor "x" has 16 bytes/,
    );
    await assert.rejects(
      writeSafetensors(path, [{
        name: "y",
        dtype: "u8",
        shape: [4],
        write: async (sink) => await sink(new Uint8Array(3)),
      }]),
      /tensor "y" produced 3 of its 4 bytes/,
    );
    await Deno.writeFile(path, new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 1, 2]));
    await assert.rejects(openSafetensors(path), /bad\.safetensors: not a safetensors file/);
    const body = new TextEncoder().encode('{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}');
    const bytes = new Uint8Array(8 + body.length + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(body.length), true);
    bytes.set(body, 8);
    await Deno.writeFile(path, bytes);
    await assert.rejects(openSafetensors(path), /tensor "t" has inconsistent shape\/offsets/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
