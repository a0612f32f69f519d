import assert from "node:assert/strict";
import { join } from "node:path";
import {
  PyGlobal,
  PyObject,
  PyTuple,
  torchPersistentLoad,
  TorchStorage,
  TorchTensor,
  unpickle,
} from "../../src/formats/pickle.ts";
import { ZipArchive } from "../../src/formats/zip.ts";
import { checkpointPickle, PickleBuilder } from "./_torch_writer.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;
const P = () => new PickleBuilder();
const enc = new TextEncoder();

Deno.test("pickle: constants, ints of every width, floats, strings and bytes", () => {
  const b = P().proto(4).op(0x95).u64(0) // FRAME
    .op("(")
    .op("N").op(0x88).op(0x89)
    .op("K").u8(200).op("M").u16(60000).op("J").u32(0xfffffffe) // BININT -2
    .op(0x8a).u8(2).raw([0x00, 0x80]) // LONG1 -32768
    .op(0x8a).u8(0) // LONG1 0
    .op(0x8a).u8(9).raw([0, 0, 0, 0, 0, 0, 0, 0, 1]) // 2^64 → bigint
    .op(0x8b).u32(1).raw([5]) // LONG4 5
    .op("G").raw([0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]) // BINFLOAT pi
    .str("héllo").shortStr("ab").op(0x8d).u64(1).raw([0x7a])
    .op("C").u8(2).raw([1, 2]).op("B").u32(1).raw([3]).op(0x8e).u64(1).raw([4]).op(0x96).u64(0)
    .op("U").u8(1).raw([0x61]).op("T").u32(1).raw([0x62])
    .op("I").raw(enc.encode("01\n")).op("I").raw(enc.encode("-7\n")).op("L").raw(enc.encode("12L\n"))
    .op("F").raw(enc.encode("2.5\n"))
    .op("l").stop().bytes();
  const v = unpickle(b) as unknown[];
  assert.deepEqual(v.slice(0, 7), [null, true, false, 200, 60000, -2, -32768]);
  assert.equal(v[7], 0);
  assert.equal(v[8], 2n ** 64n);
  assert.equal(v[9], 5);
  assert.equal(v[10], Math.PI);
  assert.deepEqual(v.slice(11, 14), ["héllo", "ab", "z"]);
  assert.deepEqual(v.slice(14, 18), [
    new Uint8Array([1, 2]),
    new Uint8Array([3]),
    new Uint8Array([4]),
    new Uint8Array(0),
  ]);
  assert.deepEqual(v.slice(18), ["a", "b", true, -7, 12, 2.5]);
});

Deno.test("pickle: containers, memo and mark operations", () => {
  const b = P().proto(2)
    .op("}").op("q").u8(0) // dict memo 0
    .op("(")
    .str("list").op("]").op("r").u32(1).op("(").op("K").u8(1).op("K").u8(2).op("e").op("K").u8(3).op("a")
    .str("t0").op(")").str("t1").op("K").u8(1).op(0x85).str("t2").op("K").u8(1).op("K").u8(2).op(0x86)
    .str("t3").op("K").u8(1).op("K").u8(2).op("K").u8(3).op(0x87)
    .str("t4").op("(").op("K").u8(1).op("K").u8(2).op("K").u8(3).op("K").u8(4).op("t")
    .str("same").op("j").u32(1) // LONG_BINGET the list
    .str("set").op(0x8f).op(0x94).op("(").op("K").u8(7).op("K").u8(8).op(0x90)
    .str("fs").op("(").op("K").u8(9).op(0x91)
    .str("d").op("(").str("k").op("K").u8(1).op("d")
    .op("u")
    .str("x").op("K").u8(5).op("s") // SETITEM
    .op("K").u8(9).op("0") // POP
    .op("(").op("K").u8(9).op("1") // POP_MARK
    .op("2").op("0") // DUP + POP
    .stop().bytes();
  const d = unpickle(b) as Map<string, unknown>;
  assert.ok(d instanceof Map);
  assert.deepEqual(d.get("list"), [1, 2, 3]);
  assert.equal(d.get("same"), d.get("list"));
  assert.deepEqual((d.get("t0") as PyTuple).items, []);
  assert.deepEqual((d.get("t1") as PyTuple).items, [1]);
  assert.deepEqual((d.get("t2") as PyTuple).items, [1, 2]);
  assert.deepEqual((d.get("t3") as PyTuple).items, [1, 2, 3]);
  assert.deepEqual((d.get("t4") as PyTuple).items, [1, 2, 3, 4]);
  assert.deepEqual(d.get("set"), new Set([7, 8]));
  assert.deepEqual(d.get("fs"), new Set([9]));
  assert.deepEqual(d.get("d"), new Map([["k", 1]]));
  assert.equal(d.get("x"), 5);
});

Deno.test("pickle: allow-listed globals get meaning, others stay inert placeholders", () => {
  const b = P().proto(4).op("(")
    .global("collections", "OrderedDict").op(")").op("R")
    .global("builtins", "set").op("]").op("K").u8(1).op("a").op(0x85).op("R")
    .shortStr("os").shortStr("system").op(0x93).shortStr("rm -rf /").op(0x85).op("R") // STACK_GLOBAL + REDUCE: never run
    .global("some.module", "Klass").op(")").op(0x81).op("}").str("a").op("K").u8(1).op("s").op("b") // NEWOBJ + BUILD
    .global("x", "Y").op(")").op("}").op(0x92) // NEWOBJ_EX
    .op("l").stop().bytes();
  const v = unpickle(b) as unknown[];
  assert.deepEqual(v[0], new Map());
  assert.deepEqual(v[1], new Set([1]));
  const sys = v[2] as PyObject;
  assert.ok(sys instanceof PyObject);
  assert.equal(sys.cls.qualname, "os.system");
  assert.deepEqual(sys.args, ["rm -rf /"]);
  const k = v[3] as PyObject;
  assert.equal(k.cls.qualname, "some.module.Klass");
  assert.deepEqual(k.state, new Map([["a", 1]]));
  assert.equal((v[4] as PyObject).how, "newobj");
});

Deno.test("pickle: persistent ids become torch storages; _rebuild_tensor_v2 builds a view", () => {
  const bytes = checkpointPickle({
    storages: [{ key: "0", dtype: "bf16", numel: 12 }],
    tensors: [{ name: "w", storage: "0", shape: [3, 2], stride: [1, 3], offset: 5 }],
  });
  const root = unpickle(bytes, { persistentLoad: torchPersistentLoad("t") }) as Map<string, unknown>;
  const sd = root.get("module") as Map<string, unknown>;
  const t = sd.get("w") as TorchTensor;
  assert.ok(t instanceof TorchTensor);
  assert.ok(t.storage instanceof TorchStorage);
  assert.equal(t.storage.dtype, "bf16");
  assert.equal(t.storage.numel, 12);
  assert.deepEqual([t.storageOffset, t.shape, t.stride], [5, [3, 2], [1, 3]]);
  assert.ok(root.get("np_rng_state") instanceof PyObject);
  assert.deepEqual(root.get("skipped"), new Set([3]));
  // Without a resolver, persistent ids stay raw tuples and the rebuild call stays an inert placeholder.
  const raw = unpickle(bytes) as Map<string, Map<string, unknown>>;
  assert.ok(raw.get("module")!.get("w") instanceof PyObject);
});

Deno.test("pickle: an unknown storage type is rejected naming it", () => {
  const b = P().proto(2).op("(").str("storage").global("torch", "ComplexFloatStorage").str("0").str("cpu").op(
    "K",
  ).u8(1)
    .op("t").op("Q").stop().bytes();
  assert.throws(
    () => unpickle(b, { origin: "x.pkl", persistentLoad: torchPersistentLoad("x.pkl") }),
    /ComplexFloatStorage/,
  );
});

Deno.test("pickle: malformed programs give errors with the offset, never hang", () => {
  const cases: [Uint8Array, RegExp][] = [
    [P().proto(2).op("N").bytes(), /no STOP/],
    [P().proto(2).op("X").u32(1000).bytes(), /truncated pickle/],
    [P().proto(2).op(0xff).bytes(), /unknown or unsupported pickle opcode \(opcode 0xff at byte 2\)/],
    [P().proto(2).op("h").u8(3).stop().bytes(), /memo key 3 was never stored/],
    [P().proto(2).op("a").stop().bytes(), /stack underflow/],
    [P().proto(2).op("t").stop().bytes(), /no MARK/],
    [P().proto(9).bytes(), /unsupported pickle protocol 9/],
    [P().proto(2).op(0x8d).u64(2 ** 40).bytes(), /exceeds the data|truncated/],
    [P().proto(2).op("K").u8(1).op("K").u8(2).op("s").stop().bytes(), /SETITEM on number|stack underflow/],
    [P().proto(2).op("X").u32(2).raw([0xff, 0xfe]).stop().bytes(), /invalid UTF-8/],
  ];
  for (const [b, re] of cases) {
    assert.throws(
      () => unpickle(b, { origin: "bad.pkl" }),
      (e: Error) => re.test(e.message) && /bad\.pkl/.test(e.message),
    );
  }
});

Deno.test("pickle: the fixture checkpoints' programs read without running anything", async () => {
  for (
    const p of [
      "sat/coglm/1/mp_rank_00_model_states.pt",
      "sat/cogview2-dsr/1/mp_rank_00_model_states.pt",
      "icetk/ice_image.pt",
    ]
  ) {
    const z = await ZipArchive.openFile(join(FIX, p));
    try {
      const pkl = z.entries.find((e) => e.name.endsWith("data.pkl"))!;
      const root = unpickle(await z.read(pkl.name), { persistentLoad: torchPersistentLoad(p) }) as Map<
        string,
        unknown
      >;
      const sd = root.get("module") as Map<string, unknown>;
      assert.ok(sd.size > 30);
      for (const v of sd.values()) assert.ok(v instanceof TorchTensor);
      if (p.includes("coglm")) {
        // DeepSpeed bookkeeping: numpy RNG state is an inert placeholder; the torch ByteTensor is read as a tensor.
        const np = (root.get("np_rng_state") as PyTuple).items;
        assert.equal(np[0], "MT19937");
        assert.ok(np[1] instanceof PyObject);
        assert.equal((np[1] as PyObject).cls.qualname, "numpy.core.multiarray._reconstruct");
        assert.ok(root.get("torch_rng_state") instanceof TorchTensor);
        assert.ok(root.get("buffer_names") !== undefined);
      }
    } finally {
      z.close();
    }
  }
  assert.equal(new PyGlobal("a.b", "C").qualname, "a.b.C");
});
