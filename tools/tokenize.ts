// `deno task tokenize [--model PATH] [--keep-linebreaks] [--json] "text" ...`: icetk ids (image offset included)
// and pieces of each text; `--decode 20034,20006,...` decodes ids instead. PATH is a `.model` file or a converted
// model directory (its config.json names the tokenizer file); default COGVIEW2_MODEL, then the demo tokenizer,
// then the test fixture's. Not a batch tool: for throughput see `deno task bench --only tokenizer`.

import { IceTokenizer } from "../src/tokenizer/icetk.ts";

const USAGE = `usage: deno task tokenize [--model PATH] [--keep-linebreaks] [--no-special] [--json] "text" ...
       deno task tokenize [--model PATH] --decode ID,ID,...`;

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A `.model` file from a flag, a converted model directory, or the defaults. */
async function resolveModel(flag: string | undefined): Promise<string> {
  const candidates: string[] = [];
  const given = flag ?? Deno.env.get("COGVIEW2_MODEL");
  if (given) candidates.push(given);
  candidates.push(
    new URL("../assets/demo/ice_text.model", import.meta.url).pathname,
    new URL("../tests/testdata/cogview2-tiny/icetk/ice_text.model", import.meta.url).pathname,
  );
  for (const c of candidates) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(c);
    } catch {
      if (c === given) throw new Error(`Model path ${c} does not exist`);
      continue;
    }
    if (info.isFile) return c;
    const cfg = `${c}/config.json`;
    if (await exists(cfg)) {
      const file = JSON.parse(await Deno.readTextFile(cfg))?.tokenizer?.file;
      if (typeof file !== "string") throw new Error(`${cfg} has no tokenizer.file`);
      return `${c}/${file}`;
    }
    if (await exists(`${c}/ice_text.model`)) return `${c}/ice_text.model`;
    if (c === given) throw new Error(`Model directory ${c} has neither config.json nor ice_text.model`);
  }
  throw new Error("No tokenizer model found: pass --model PATH");
}

export async function main(argv: string[]): Promise<number> {
  const texts: string[] = [];
  let model: string | undefined, decode: string | undefined;
  let keepLinebreaks = false, json = false, special = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--model" || a === "--decode") {
      const v = argv[++i];
      if (v === undefined) {
        console.error(`${a} needs a value\n${USAGE}`);
        return 2;
      }
      if (a === "--model") model = v;
      else decode = v;
    } else if (a === "--keep-linebreaks") keepLinebreaks = true;
    else if (a === "--json") json = true;
    else if (a === "--no-special") special = false;
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith("--")) {
      console.error(`Unknown flag ${a}\n${USAGE}`);
      return 2;
    } else texts.push(a);
  }
  if (texts.length === 0 && decode === undefined) {
    console.error(USAGE);
    return 2;
  }
  const path = await resolveModel(model);
  const tok = await IceTokenizer.fromFile(path, special ? {} : { specialTokens: [] });
  if (decode !== undefined) {
    const ids = decode.split(/[\s,]+/).filter((s) => s !== "").map(Number);
    if (ids.some((x) => !Number.isInteger(x))) {
      console.error(`--decode: not a list of integer ids: ${decode}`);
      return 2;
    }
    const text = tok.decode(ids);
    console.log(json ? JSON.stringify({ ids, text }) : text);
    return 0;
  }
  if (!json) console.log(`# ${path} (${tok.numTokens} tokens)`);
  for (const text of texts) {
    const ids = tok.encode(text, { ignoreLinebreak: !keepLinebreaks });
    const pieces = ids.map((id) => tok.idToToken(id));
    if (json) {
      console.log(
        JSON.stringify({ text, ids, pieces, tokenize: tok.tokenize(text), decoded: tok.decode(ids) }),
      );
      continue;
    }
    console.log(`text: ${JSON.stringify(text)}`);
    console.log(`ids: ${ids.join(" ")}`);
    console.log(`pieces: ${pieces.map((p) => JSON.stringify(p)).join(" ")}`);
    console.log(`decoded: ${JSON.stringify(tok.decode(ids))}`);
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`tokenize: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
