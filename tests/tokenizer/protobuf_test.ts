// Reads the fixture's SentencePiece models with the hand-written protobuf decoder and checks what the fixture
// README states about them (piece count, types, specs).
import assert from "node:assert/strict";
import { decodeModelProto, ModelType, PieceType, ProtoReader } from "../../src/tokenizer/protobuf.ts";

const ICETK = new URL("../testdata/cogview2-tiny/icetk/", import.meta.url);

Deno.test("protobuf: varints, fixed32 floats, nested messages, skipped fields", () => {
  // field 1 (varint 300), field 2 (float 1.5), field 3 (bytes "hi"), field 4 (fixed64, skipped)
  const bytes = new Uint8Array([
    0x08,
    0xac,
    0x02,
    0x15,
    0x00,
    0x00,
    0xc0,
    0x3f,
    0x1a,
    0x02,
    0x68,
    0x69,
    0x21,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
  ]);
  const r = new ProtoReader(bytes);
  assert.deepEqual(r.key(), [1, 0]);
  assert.equal(r.varint(), 300);
  assert.deepEqual(r.key(), [2, 5]);
  assert.equal(r.float32(), 1.5);
  assert.deepEqual(r.key(), [3, 2]);
  assert.equal(r.string(), "hi");
  const [, w] = r.key();
  r.skip(w);
  assert.ok(r.done());
  // negative int32 is a 10-byte varint
  const neg = new ProtoReader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.equal(neg.int32(), -1);
});

Deno.test("protobuf: unigram ice_text.model loads with its specs", async () => {
  const m = decodeModelProto(await Deno.readFile(new URL("ice_text.model", ICETK)));
  assert.equal(m.pieces.length, 6000);
  assert.equal(m.trainerSpec.modelType, ModelType.UNIGRAM);
  assert.equal(m.trainerSpec.byteFallback, false);
  assert.equal(m.trainerSpec.unkId, 0);
  assert.equal(m.trainerSpec.padId, 3);
  assert.deepEqual(m.pieces.slice(0, 5).map((p) => [p.piece, p.type]), [
    ["<unk>", PieceType.UNKNOWN],
    ["<s>", PieceType.CONTROL],
    ["</s>", PieceType.CONTROL],
    ["<pad>", PieceType.CONTROL],
    ["<n>", PieceType.USER_DEFINED],
  ]);
  assert.equal(m.pieces[6].piece, "\u2581");
  for (const p of m.pieces.slice(5)) {
    assert.equal(p.type, PieceType.NORMAL);
    assert.ok(p.score <= 0 && Number.isFinite(p.score));
  }
  assert.equal(m.normalizerSpec.name, "nmt_nfkc");
  assert.ok(m.normalizerSpec.precompiledCharsmap.length > 1000);
  assert.equal(m.normalizerSpec.addDummyPrefix, true);
  assert.equal(m.normalizerSpec.removeExtraWhitespaces, true);
  assert.equal(m.normalizerSpec.escapeWhitespaces, true);
  assert.equal(m.denormalizerSpec?.precompiledCharsmap.length ?? 0, 0);
});

Deno.test("protobuf: BPE ice_text_bpe.model loads", async () => {
  const m = decodeModelProto(await Deno.readFile(new URL("ice_text_bpe.model", ICETK)));
  assert.equal(m.pieces.length, 5000);
  assert.equal(m.trainerSpec.modelType, ModelType.BPE);
  assert.equal(m.normalizerSpec.name, "nmt_nfkc");
});

Deno.test("protobuf: garbage is rejected with a message", () => {
  assert.throws(() => decodeModelProto(new Uint8Array([0x0a, 0x05, 0x01])), /runs past the end/);
  assert.throws(() => decodeModelProto(new Uint8Array([])), /no pieces/);
});
