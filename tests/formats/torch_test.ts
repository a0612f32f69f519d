import assert from "node:assert/strict";
import { join } from "node:path";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { writeZip, ZipArchive } from "../../src/formats/zip.ts";
import { writeTorchCheckpoint } from "./_torch_writer.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

async function withTmp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "torch-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const f32Bytes = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);

Deno.test("torch: views of one storage, offsets, transposes and broadcast strides are read contiguous", async () => {
  await withTmp(async (dir) => {
    const base = Array.from({ length: 24 }, (_, i) => i + 0.5);
    const p = join(dir, "views.pt");
    await writeTorchCheckpoint(p, {
      storages: [{ key: "0", dtype: "f32", numel: 24, data: f32Bytes(base) }],
      tensors: [
        { name: "full", storage: "0", shape: [4, 6] },
        { name: "rows", storage: "0", shape: [2, 6], offset: 6 }, // full[1:3]
        { name: "t", storage: "0", shape: [6, 4], stride: [1, 6] }, // full.T
        { name: "cols", storage: "0", shape: [4, 2], stride: [6, 1], offset: 3 }, // full[:, 3:5]
        { name: "bcast", storage: "0", shape: [3, 5], stride: [0, 1], offset: 2 }, // expand
        { name: "scalar", storage: "0", shape: [], stride: [], offset: 23 },
        { name: "empty", storage: "0", shape: [0, 7], stride: [7, 1] },
        { name: "one", storage: "0", shape: [1, 4, 1], stride: [99, 1, 99], offset: 1 }, // size-1 dims: any stride
        { name: "col", storage: "0", shape: [1, 4, 1], stride: [99, 6, 99], offset: 1 },
      ],
    });
    const ck = await openTorchCheckpoint(p);
    try {
      const get = async (n: string) => Array.from(new Float32Array((await ck.read(n)).buffer));
      assert.deepEqual(await get("full"), base);
      assert.deepEqual(await get("rows"), base.slice(6, 18));
      const t: number[] = [];
      for (let j = 0; j < 6; j++) for (let i = 0; i < 4; i++) t.push(base[i * 6 + j]);
      assert.deepEqual(await get("t"), t);
      assert.deepEqual(await get("cols"), [3, 4, 9, 10, 15, 16, 21, 22].map((i) => base[i]));
      assert.deepEqual(await get("bcast"), [0, 1, 2].flatMap(() => base.slice(2, 7)));
      assert.deepEqual(await get("scalar"), [23.5]);
      assert.deepEqual(await get("empty"), []);
      assert.deepEqual(await get("one"), base.slice(1, 5));
      assert.deepEqual(await get("col"), [1, 7, 13, 19].map((i) => base[i]));
      assert.equal(ck.layout("full").coversStorage, true);
      assert.equal(ck.layout("t").contiguous, false);
      assert.equal(ck.layout("one").contiguous, true);
      // Ranged reads of a strided view, not element aligned.
      const whole = await ck.read("t");
      for (const [o, l] of [[0, 5], [3, 17], [50, 46], [95, 1]]) {
        assert.deepEqual(await ck.readRange("t", o, l), whole.slice(o, o + l));
      }
      assert.deepEqual(ck.info("t"), { name: "t", dtype: "f32", shape: [6, 4], byteLength: 96 });
      await assert.rejects(ck.readRange("t", 90, 10), /outside tensor "t"/);
    } finally {
      ck.close();
    }
  });
});

Deno.test("torch: float16, bfloat16, int64 and bool storages; bare and wrapped state dicts", async () => {
  await withTmp(async (dir) => {
    const h = new Uint8Array(new Float16Array([1, -2, 0.5]).buffer);
    const bf = new Uint8Array(new Uint16Array([0x3f80, 0xc000]).buffer);
    const l = new Uint8Array(new BigInt64Array([5n, -1n]).buffer);
    for (const wrap of [true, false]) {
      const p = join(dir, `d${wrap}.pt`);
      await writeTorchCheckpoint(p, {
        wrap,
        forceZip64: wrap, // zip64 records, as torch writes for members over 4 GiB
        ordered: !wrap,
        storages: [
          { key: "a", dtype: "f16", numel: 3, data: h },
          { key: "b", dtype: "bf16", numel: 2, data: bf },
          { key: "c", dtype: "i64", numel: 2, data: l },
          { key: "d", dtype: "bool", numel: 2, data: new Uint8Array([1, 0]) },
        ],
        tensors: [
          { name: "h", storage: "a", shape: [3] },
          { name: "bf", storage: "b", shape: [2] },
          { name: "l", storage: "c", shape: [2] },
          { name: "m", storage: "d", shape: [2] },
        ],
      });
      const ck = await openTorchCheckpoint(p);
      assert.deepEqual(ck.names(), ["h", "bf", "l", "m"]);
      assert.deepEqual(["h", "bf", "l", "m"].map((n) => ck.info(n).dtype), ["f16", "bf16", "i64", "u8"]);
      assert.equal(ck.torchDType("bf"), "bfloat16");
      assert.deepEqual(await ck.read("h"), h);
      assert.deepEqual(await ck.read("bf"), bf);
      assert.deepEqual(await ck.read("l"), l);
      ck.close();
    }
  });
});

Deno.test("torch: placeholders in the state dict are named only when a tensor is needed", async () => {
  await withTmp(async (dir) => {
    const p = join(dir, "ph.pt");
    await writeTorchCheckpoint(p, {
      storages: [{ key: "0", dtype: "f32", numel: 2, data: f32Bytes([1, 2]) }],
      tensors: [{ name: "w", storage: "0", shape: [2] }],
      rawEntries: [{
        name: "evil",
        emit: (b) => b.global("os", "system").str("echo pwned").op(0x85).op("R"),
      }],
    });
    const ck = await openTorchCheckpoint(p);
    assert.deepEqual(ck.names(), ["w"]);
    assert.deepEqual([...ck.nonTensors().keys()], ["evil"]);
    assert.throws(() => ck.info("evil"), /"evil" is an object of class os\.system, not a tensor/);
    assert.throws(() => ck.info("nope"), /no tensor named "nope"/);
    ck.close();
  });
});

Deno.test("torch: corrupt checkpoints are rejected naming the file and the tensor", async () => {
  await withTmp(async (dir) => {
    // Storage missing from the archive.
    const p = join(dir, "missing.pt");
    await writeTorchCheckpoint(p, {
      storages: [{ key: "0", dtype: "f32", numel: 2, data: f32Bytes([1, 2]) }],
      tensors: [{ name: "w", storage: "0", shape: [2] }, { name: "v", storage: "0", shape: [2] }],
    });
    const z = await ZipArchive.openFile(p);
    const entries = await Promise.all(
      z.entries.filter((e) => !e.name.endsWith("data/0")).map(async (e) => ({
        name: e.name,
        data: await z.read(e.name),
      })),
    );
    z.close();
    const q = join(dir, "nostorage.pt");
    await writeZip(q, entries);
    await assert.rejects(openTorchCheckpoint(q), /nostorage\.pt: tensor "w": storage 0 .* is missing/);
    // View reaching past its storage.
    const r = join(dir, "oob.pt");
    await writeTorchCheckpoint(r, {
      storages: [{ key: "0", dtype: "f32", numel: 4, data: f32Bytes([1, 2, 3, 4]) }],
      tensors: [{ name: "w", storage: "0", shape: [2, 2], offset: 1 }],
    });
    await assert.rejects(
      openTorchCheckpoint(r),
      /oob\.pt: tensor "w" .* reaches element 5 of a 4-element storage/,
    );
    // Storage size disagreeing with its numel.
    const s = join(dir, "size.pt");
    await writeTorchCheckpoint(s, {
      storages: [{ key: "0", dtype: "f32", numel: 3, data: f32Bytes([1, 2, 3]) }],
      tensors: [{ name: "w", storage: "0", shape: [3] }],
    });
    // Patch numel 3 → 4 in the pickle (BININT1 3 right after 'cpu') and re-zip with a matching CRC.
    const zs = await ZipArchive.openFile(s);
    const parts = await Promise.all(
      zs.entries.map(async (e) => ({ name: e.name, data: await zs.read(e.name) })),
    );
    zs.close();
    const pkl = parts[0].data;
    const cpu = new TextEncoder().encode("cpu");
    const at = pkl.findIndex((_, i) => cpu.every((c, j) => pkl[i + j] === c));
    assert.equal(pkl[at + 3], 0x4b);
    pkl[at + 4] = 4;
    await writeZip(s, parts);
    await assert.rejects(
      openTorchCheckpoint(s),
      /size\.pt: tensor "w": storage .* has 12 bytes, expected 4 × 4/,
    );
    // Legacy format and non-zip files.
    const legacy = join(dir, "legacy.pt");
    await Deno.writeFile(legacy, new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]));
    await assert.rejects(openTorchCheckpoint(legacy), /legacy \(pre-1\.6, non-zip\) torch\.save format/);
    await assert.rejects(openTorchCheckpoint(join(dir, "absent.pt")), /absent\.pt/);
  });
});

Deno.test("torch: fixture checkpoints, including one read from inside a stored zip", async () => {
  const ck = await openTorchCheckpoint(join(FIX, "icetk/ice_image.pt"));
  assert.equal(ck.names().length, 329);
  assert.deepEqual(ck.info("quantize.embed.weight").shape, [20000, 48]);
  assert.equal(ck.info("quantize.embed.weight").dtype, "f16");
  const direct = await ck.read("decs.2.conv_out.weight");
  ck.close();
  await withTmp(async (dir) => {
    const outer = join(dir, "icetk.zip");
    await writeZip(outer, [{
      name: "icetk/ice_image.pt",
      data: await Deno.readFile(join(FIX, "icetk/ice_image.pt")),
    }]);
    const z = await ZipArchive.openFile(outer);
    const nested = await openTorchCheckpoint(z.slice("icetk/ice_image.pt"));
    assert.equal(nested.origin, `${outer}!icetk/ice_image.pt`);
    assert.deepEqual(await nested.read("decs.2.conv_out.weight"), direct);
    nested.close();
    z.close();
  });
});
