import assert from "node:assert/strict";
import { join } from "node:path";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { deflateBomb, zipOneEntry } from "./_bombs.ts";
import { BytesAccess, crc32, crc32Js, EntryStream, writeZip, ZipArchive } from "../../src/formats/zip.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

Deno.test("zip: reads the central directory of a torch.save checkpoint", async () => {
  const z = await ZipArchive.openFile(join(FIX, "sat/coglm/1/mp_rank_00_model_states.pt"));
  try {
    assert.equal(z.entries.length, 39);
    assert.equal(z.entries[0].name, "mp_rank_00_model_states/data.pkl");
    const e = z.entry("mp_rank_00_model_states/data/0");
    assert.equal(e.size, 26008 * 64 * 2); // word embeddings, f16
    assert.equal(e.offset % 64, 0); // torch aligns storages to 64 bytes
    const pkl = await z.read("mp_rank_00_model_states/data.pkl");
    assert.equal(pkl[0], 0x80); // PROTO
    assert.equal(pkl[pkl.length - 1], 0x2e); // STOP
    assert.throws(() => z.entry("nope"), /no entry "nope"/);
  } finally {
    z.close();
  }
});

Deno.test("zip: writer round trip, plain and zip64, CRC and nested archives", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zip-test-" });
  try {
    const a = new Uint8Array(1000).map((_, i) => i * 7);
    const b = new TextEncoder().encode("hello");
    for (const forceZip64 of [false, true]) {
      const p = join(dir, `t${forceZip64}.zip`);
      await writeZip(p, [
        { name: "x/a.bin", data: a },
        { name: "x/empty", data: new Uint8Array(0) },
        { name: "x/b.txt", size: b.length, produce: async (sink) => await sink(b) },
      ], { forceZip64 });
      const z = await ZipArchive.openFile(p);
      assert.deepEqual(z.entries.map((e) => e.name), ["x/a.bin", "x/empty", "x/b.txt"]);
      assert.deepEqual(await z.read("x/a.bin"), a);
      assert.deepEqual(await z.read("x/b.txt"), b);
      assert.equal(z.entry("x/b.txt").crc32, crc32(b));
      assert.equal((await z.read("x/empty")).length, 0);
      z.close();
    }
    // An archive stored inside another one is read in place.
    const inner = await Deno.readFile(join(dir, "ttrue.zip"));
    const outer = join(dir, "outer.zip");
    await writeZip(outer, [{ name: "m/latest", data: b }, { name: "m/1/inner.zip", data: inner }]);
    const zo = await ZipArchive.openFile(outer);
    const zi = await ZipArchive.open(zo.slice("m/1/inner.zip"));
    assert.equal(zi.origin, `${outer}!m/1/inner.zip`);
    assert.deepEqual(await zi.read("x/a.bin"), a);
    zo.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("zip: known CRC-32, native and TypeScript agree", () => {
  const b = new Uint8Array(100003).map((_, i) => (i * 131) & 255);
  assert.equal(crc32Js(b), crc32(b));
  assert.equal(crc32Js(b.subarray(7), crc32Js(b.subarray(0, 7))), crc32(b));
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("zip: truncated and corrupt archives are rejected naming the file", async () => {
  const bytes = await Deno.readFile(join(FIX, "sat/coglm/1/mp_rank_00_model_states.pt"));
  await assert.rejects(
    ZipArchive.open(new BytesAccess(bytes.slice(0, bytes.length - 100), "cut.pt")),
    /cut\.pt/,
  );
  await assert.rejects(
    ZipArchive.open(new BytesAccess(bytes.slice(0, 5000), "short.pt")),
    /short\.pt: not a zip archive or truncated/,
  );
  await assert.rejects(
    ZipArchive.open(new BytesAccess(new Uint8Array(10), "tiny.pt")),
    /tiny\.pt: not a zip/,
  );
  // Central directory cut off at the front: the EOCD points before / outside it.
  const bad = bytes.slice();
  const eocd = bad.length - 22;
  new DataView(bad.buffer).setUint32(eocd + 16, bad.length, true);
  await assert.rejects(ZipArchive.open(new BytesAccess(bad, "bad.pt")), /bad\.pt: central directory/);
});

Deno.test("zip: deflated entries are inflated whole (small) or streamed (large), CRC checked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zip-test-" });
  try {
    const big = new Uint8Array(3_000_001).map((_, i) => (i * i) % 251);
    const p = join(dir, "d.zip");
    await writeZip(p, [{ name: "a.txt", data: new TextEncoder().encode("hi ".repeat(100)), deflate: true }, {
      name: "big.bin",
      data: big,
      deflate: true,
    }], { forceZip64: true });
    const z = await ZipArchive.openFile(p);
    assert.equal(z.entry("big.bin").method, 8);
    assert.ok(z.entry("big.bin").size < big.length);
    assert.equal(new TextDecoder().decode(await z.read("a.txt")), "hi ".repeat(100));
    assert.throws(() => z.slice("big.bin"), /compressed \(method 8\)/);
    const s = new EntryStream(z, z.entry("big.bin"));
    assert.deepEqual(await s.read(10), big.subarray(0, 10));
    await s.skip(1_000_000);
    assert.deepEqual(await s.read(5), big.subarray(1_000_010, 1_000_015));
    await s.finish();
    await assert.rejects(s.read(1), /ends 1 bytes early/);
    z.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("zip attack: a deflate bomb declared small is stopped at its declared size, in bounded time and memory", async () => {
  // 1 GiB of zeros deflated to ~1 MB, declared as 12 KB: the shape of the attack run's bomb.
  const bomb = zipOneEntry("archive/data.pkl", deflateBomb(1024), { method: 8, declaredSize: 12_000 });
  const rss0 = Deno.memoryUsage().rss;
  const t0 = performance.now();
  const z = await ZipArchive.open(new BytesAccess(bomb, "bomb.zip"));
  await assert.rejects(
    z.read("archive/data.pkl"),
    /bomb\.zip!archive\/data\.pkl: inflates to more than .* 12000 bytes/,
  );
  await assert.rejects(
    openTorchCheckpoint(new BytesAccess(bomb, "bomb.pt")),
    /bomb\.pt!archive\/data\.pkl: inflates to more than/,
  );
  const ms = performance.now() - t0, grew = (Deno.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(
    `zip bomb (1 GiB in ${bomb.length} bytes, declared 12 KB): rejected twice in ${ms.toFixed(0)} ms, RSS +${
      grew.toFixed(0)
    } MiB`,
  );
  // Before the running budget: 7 s and +1 GiB for one read (the whole entry inflated in one chunk first). With it,
  // ~0.1 s on a quiet machine; 2.4 s was seen with 6 other test processes on its 2 cores, hence the 6 s bound.
  assert.ok(ms < 6000, `took ${ms} ms`);
  assert.ok(grew < 128, `RSS grew ${grew} MiB`);
  // The declared size itself is bounded too (64 MiB by default; the caller's limit when given).
  const big = zipOneEntry("x", deflateBomb(1), { method: 8, declaredSize: 65 * 2 ** 20 });
  await assert.rejects(
    (await ZipArchive.open(new BytesAccess(big, "big.zip"))).read("x"),
    /too large to read whole \(68157440 bytes, the limit is 67108864\)/,
  );
});
