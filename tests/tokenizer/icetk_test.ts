// icetk text tokenizer vs the fixture's golden records (unigram and BPE models) and targeted probes whose expected
// pieces come from sentencepiece 0.1.97 (python module) on the same model files.
import assert from "node:assert/strict";
import { IceTokenizer } from "../../src/tokenizer/icetk.ts";

const ROOT = new URL("../testdata/cogview2-tiny/", import.meta.url);

interface Golden {
  inputs: { text_model: string; special_tokens_added: string[] };
  expected: {
    num_tokens: number;
    encode: {
      text: string;
      ignore_linebreak: boolean;
      tag: string;
      ids: number[];
      pieces: string[];
      tokenize: string[];
      decoded: string;
    }[];
    id_to_token: { id: number; token: string }[];
    token_to_id: { token: string; id: number }[];
    decode: { ids: number[]; text: string }[];
  };
}

async function load(name: string): Promise<[IceTokenizer, Golden]> {
  const g: Golden = JSON.parse(await Deno.readTextFile(new URL(`golden/${name}`, ROOT)));
  const t = await IceTokenizer.fromFile(new URL(g.inputs.text_model, ROOT).pathname, {
    specialTokens: g.inputs.special_tokens_added,
  });
  return [t, g];
}

for (const name of ["icetk_text.json", "icetk_text_bpe.json"]) {
  Deno.test(`icetk: ${name} encode, tokenize, decode records exact`, async () => {
    const [t, g] = await load(name);
    assert.equal(t.numTokens, g.expected.num_tokens);
    for (const r of g.expected.encode) {
      const what = `${r.tag} ${JSON.stringify(r.text)}`;
      const ids = t.encode(r.text, { ignoreLinebreak: r.ignore_linebreak });
      assert.deepEqual(ids, r.ids, `ids of ${what}`);
      assert.deepEqual(ids.map((id) => t.idToToken(id)), r.pieces, `pieces of ${what}`);
      assert.deepEqual(t.tokenize(r.text), r.tokenize, `tokenize of ${what}`);
      assert.equal(t.decode(r.ids), r.decoded, `decode of ${what}`);
    }
  });

  Deno.test(`icetk: ${name} id/token lookups and decode cases`, async () => {
    const [t, g] = await load(name);
    for (const r of g.expected.id_to_token) assert.equal(t.idToToken(r.id), r.token, `icetk[${r.id}]`);
    for (const r of g.expected.token_to_id) assert.equal(t.tokenToId(r.token), r.id, `icetk[${r.token}]`);
    for (const r of g.expected.decode) assert.equal(t.decode(r.ids), r.text, `decode ${r.ids}`);
  });
}

Deno.test("icetk: normalizer and user-defined probes (expected from sentencepiece 0.1.97)", async () => {
  const t = await IceTokenizer.fromFile(new URL("icetk/ice_text.model", ROOT).pathname);
  const cases: [string, string[], number[]][] = [
    ["ﬁne", ["▁f", "ine"], [237, 1353]],
    ["①②", ["▁", "12"], [6, 1023]],
    ["™", ["▁T", "M"], [272, 129]],
    ["½", ["▁1", "⁄", "2"], [520, 0, 76]],
    ["ＡＢＣ１２３", ["▁A", "B", "C", "12", "3"], [98, 136, 68, 1023, 176]],
    ["\t a\u3000b\u00a0 c \r\n", ["▁a", "▁b", "▁", "c"], [34, 1185, 6, 32]],
    ["▁x▁▁y", ["▁", "x", "▁", "y"], [6, 78, 6, 63]],
    ["ｶﾞ", ["▁", "ガ"], [6, 0]],
    ["e\u0301", ["▁", "é"], [6, 1330]],
    ["  ", [], []],
    ["", [], []],
    ["<n>a\n<n>", ["▁", "<n>", "a", "▁", "<n>"], [6, 4, 80, 6, 4]],
    ["x<n>y", ["▁", "x", "<n>", "y"], [6, 78, 4, 63]],
    ["ﬀ<n>", ["▁", "ff", "<n>"], [6, 1054, 4]],
  ];
  for (const [text, pieces, ids] of cases) {
    assert.deepEqual(t.tokenize(text), pieces, JSON.stringify(text));
    assert.deepEqual(t.encode(text), ids.map((i) => i + 20000), JSON.stringify(text));
  }
});

Deno.test("icetk: long expanding input (normalizer buffers grow) matches sentencepiece 0.1.97", async () => {
  const t = await IceTokenizer.fromFile(new URL("icetk/ice_text.model", ROOT).pathname);
  t.encode("short first"); // scratch buffers exist before the long input
  const want = [520, 0, 76];
  for (let i = 0; i < 149; i++) want.push(124, 0, 76);
  for (let i = 0; i < 100; i++) want.push(6, 1199);
  const text = "½".repeat(150) + " ﬁ".repeat(100);
  assert.deepEqual(t.encode(text), want.map((i) => i + 20000));
  assert.deepEqual(t.encode(text), want.map((i) => i + 20000));
  const norm = t.processor.normalize(text);
  assert.equal(new TextDecoder().decode(norm), "▁" + "1⁄2".repeat(150) + "▁fi".repeat(100));
});

Deno.test("icetk: special tokens, linebreaks, unknown runs, discourage", async () => {
  const bytes = await Deno.readFile(new URL("icetk/ice_text.model", ROOT));
  const t = IceTokenizer.fromBytes(bytes);
  const soi = t.tokenToId("<start_of_image>");
  assert.equal(soi, 26000);
  assert.equal(t.encode("一只老虎<start_of_image>").at(-1), soi);
  assert.deepEqual(t.encode("a\nb", { ignoreLinebreak: false }).includes(20004), true);
  assert.equal(t.decode(t.encode("a\nb", { ignoreLinebreak: false })), "a\nb");
  assert.equal(t.decode(t.encode("a\nb")), "a b");
  // a run of unknown characters is one <unk> whose piece is the run's text
  assert.deepEqual(t.tokenize("😀😀"), ["▁", "😀😀"]);
  assert.deepEqual(t.encode("😀😀"), [20006, 20000]);
  assert.equal(t.decode([20006, 20000]), " ⁇ ");
  // without special tokens the vocabulary is the file's
  assert.equal(IceTokenizer.fromBytes(bytes, { specialTokens: [] }).numTokens, 26000);
  assert.throws(() => t.idToToken(26003), /out of range/);
  // Python's str.isdigit()/int() accept any decimal digits: icetk['<image_١٢>'] == 12, ['<image_𝟗𝟎>'] == 90
  assert.equal(t.tokenToId("<image_١٢>"), 12);
  assert.equal(t.tokenToId("<image_𝟗𝟎>"), 90);
  assert.equal(t.tokenToId("<image_007>"), 7);
  // discourage_tokens changes unigram output (score −100 on a piece)
  const d = IceTokenizer.fromBytes(bytes);
  const before = d.tokenize("a tiger");
  d.discourageTokens(before[0]);
  assert.notDeepEqual(d.tokenize("a tiger"), before);
  const e = IceTokenizer.fromBytes(bytes);
  e.discourageIds(e.tokenToId(before[0]) - 20000);
  assert.deepEqual(e.tokenize("a tiger"), d.tokenize("a tiger"));
});

Deno.test("icetk: random strings match sentencepiece 0.1.97 (testdata/sp0197_cases.jsonl, both models)", async () => {
  const lines = (await Deno.readTextFile(new URL("testdata/sp0197_cases.jsonl", import.meta.url))).split(
    "\n",
  );
  const recs = lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  const toks = new Map<string, IceTokenizer>();
  for (const r of recs) {
    let t = toks.get(r.model);
    if (!t) toks.set(r.model, t = await IceTokenizer.fromFile(new URL(`icetk/${r.model}`, ROOT).pathname));
    const what = `${r.model} ${JSON.stringify(r.text)}`;
    assert.deepEqual(t.encode(r.text, { ignoreLinebreak: r.ignore_linebreak }), r.ids, `ids of ${what}`);
    assert.deepEqual(t.tokenize(r.text), r.tokenize, `tokenize of ${what}`);
    assert.equal(t.decode(r.ids), r.decoded, `decode of ${what}`);
  }
  assert.equal(toks.size, 2);
  assert.ok(recs.length >= 400);
});
