// The fuzz cases' worker (tools/fuzz.ts): runs one reader on one input and says how it ended — a value, the reader's
// own named error, or anything else (a crash). Each reader's named errors are recognised by the prefix it gives them.

import { decodeImage } from "../src/formats/image.ts";
import { parseNpy } from "../src/formats/npy.ts";
import { torchPersistentLoad, unpickle } from "../src/formats/pickle.ts";
import { openSafetensors } from "../src/formats/safetensors.ts";
import { BytesAccess, ZipArchive } from "../src/formats/zip.ts";
import { decodeModelProto } from "../src/tokenizer/protobuf.ts";
import { SentencePieceProcessor } from "../src/tokenizer/sentencepiece.ts";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<{ reader: string; input: Uint8Array }>) => void) | null;
  postMessage(message: unknown): void;
};

const tmp = Deno.makeTempFileSync({ prefix: "fuzz-", suffix: ".safetensors" });

/** What a reader's own errors look like (they name the input, or the format when it has no name). */
const NAMED: Record<string, RegExp> = {
  zip: /^fuzz\.zip/,
  pickle: /^fuzz\.pkl/,
  npy: /^fuzz\.npy/,
  safetensors: new RegExp(`^${tmp.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}|^safetensors:`),
  sentencepiece: /^(Protobuf|SentencePiece model):/,
  png: /^decodeImage:/,
  jpeg: /^decodeImage:/,
};

async function read(reader: string, input: Uint8Array): Promise<void> {
  switch (reader) {
    case "zip": {
      const z = await ZipArchive.open(new BytesAccess(input, "fuzz.zip"));
      for (const e of z.entries) await z.read(e.name);
      return;
    }
    case "pickle":
      unpickle(input, { origin: "fuzz.pkl", persistentLoad: torchPersistentLoad("fuzz.pkl") });
      return;
    case "npy":
      parseNpy(input, "fuzz.npy");
      return;
    case "safetensors": {
      Deno.writeFileSync(tmp, input);
      const f = await openSafetensors(tmp);
      try {
        for (const n of f.names()) await f.read(n);
      } finally {
        f.close();
      }
      return;
    }
    case "sentencepiece": {
      const sp = new SentencePieceProcessor(decodeModelProto(input));
      sp.encode("a fuzz test 测试");
      return;
    }
    case "png":
    case "jpeg":
      decodeImage(input);
      return;
  }
  throw new Error(`unknown reader ${reader}`);
}

scope.onmessage = async (e) => {
  const { reader, input } = e.data;
  try {
    await read(reader, input);
    scope.postMessage({ kind: "ok" });
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : `non-Error thrown: ${String(err)}`;
    const named = err instanceof Error && err.name === "Error" && NAMED[reader].test(err.message);
    scope.postMessage({ kind: named ? "named" : "crash", message });
  }
};

scope.postMessage("ready");
