// SentencePieceProcessor on small models trained with spm_train 0.1.97 for the options the fixture's models do
// not use (byte_fallback, identity normalizer, no dummy prefix, kept whitespace, whitespace as suffix, control
// symbols, custom unk_surface); expected values from the python module 0.1.97 (testdata/make_spm_variants.sh).
import assert from "node:assert/strict";
import { SentencePieceProcessor } from "../../src/tokenizer/sentencepiece.ts";

const DATA = new URL("testdata/", import.meta.url);

interface Case {
  model: string;
  text?: string;
  ids?: number[];
  pieces?: string[];
  decode_ids?: number[];
  decoded: string;
}

Deno.test("sentencepiece: option variants match sentencepiece 0.1.97 (encode, pieces, decode)", async () => {
  const lines = (await Deno.readTextFile(new URL("spm_variants_cases.jsonl", DATA))).split("\n");
  const cases: Case[] = lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  const models = new Map<string, SentencePieceProcessor>();
  for (const c of cases) {
    let sp = models.get(c.model);
    if (!sp) {
      models.set(c.model, sp = SentencePieceProcessor.fromBytes(await Deno.readFile(new URL(c.model, DATA))));
    }
    if (c.decode_ids) {
      assert.equal(
        sp.decodeIds(c.decode_ids),
        c.decoded,
        `${c.model} decode ${JSON.stringify(c.decode_ids)}`,
      );
      continue;
    }
    const what = `${c.model} ${JSON.stringify(c.text)}`;
    assert.deepEqual(sp.encodeIds(c.text!), c.ids, `ids of ${what}`);
    assert.deepEqual(sp.encodePieces(c.text!), c.pieces, `pieces of ${what}`);
    assert.equal(sp.decodeIds(c.ids!), c.decoded, `decode of ${what}`);
  }
  assert.equal(models.size, 3);
});

Deno.test("sentencepiece: model facts of the variants", async () => {
  const bf = SentencePieceProcessor.fromBytes(await Deno.readFile(new URL("spm_uni_bf.model", DATA)));
  assert.equal(bf.proto.trainerSpec.byteFallback, true);
  assert.equal(bf.proto.trainerSpec.treatWhitespaceAsSuffix, true);
  // an unknown character becomes its UTF-8 byte pieces, and decodes back
  // (values from sentencepiece 0.1.97; the suffix ▁ comes from treat_whitespace_as_suffix)
  assert.deepEqual(bf.encodePieces("\u{1d400}x"), ["<0xF0>", "<0x9D>", "<0x90>", "<0x80>", "x", "▁"]);
  assert.deepEqual(bf.encodeIds("\u{1d400}x"), [244, 161, 148, 132, 443, 260]);
  assert.equal(bf.decodeIds([244, 161, 148, 132, 443, 260]), "\u{1d400}x ");
  const ws = SentencePieceProcessor.fromBytes(await Deno.readFile(new URL("spm_uni_ws.model", DATA)));
  assert.equal(ws.proto.trainerSpec.unkSurface, "??");
  assert.equal(ws.proto.normalizerSpec.removeExtraWhitespaces, false);
  assert.equal(ws.decodeIds([ws.pieceToId("<unk>")]), "??");
  assert.equal(ws.decodeIds([ws.pieceToId("<ctl>")]), "");
  assert.throws(() => ws.decodeIds([ws.size]), /out of range/);
});
