// `deno task tokenize` as a user runs it: a subprocess on the fixture's unigram model, JSON output checked.
import assert from "node:assert/strict";

const TOOL = new URL("../../tools/tokenize.ts", import.meta.url).pathname;
const MODEL = new URL("../testdata/cogview2-tiny/icetk/ice_text.model", import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", TOOL, "--model", MODEL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

Deno.test("tools/tokenize: ids, pieces and decode of a text, and --decode", async () => {
  const r = await run("--json", "x<start_of_image>y");
  assert.equal(r.code, 0, r.err);
  const rec = JSON.parse(r.out.trim());
  assert.deepEqual(rec.ids, [20006, 20078, 26000, 20063]);
  assert.deepEqual(rec.pieces, ["▁", "x", "<start_of_image>", "y"]);
  assert.equal(rec.decoded, "x<start_of_image>y");
  const d = await run("--decode", "26002,24371,20340,20171,24339,22356,25365");
  assert.equal(d.code, 0, d.err);
  assert.equal(d.out.trim(), "<start_of_chinese> 一只戴着VR眼镜的老虎");
  const bad = await run("--bogus");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /Unknown flag --bogus/);
});
