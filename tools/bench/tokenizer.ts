// Text tokenizer benchmark: icetk encode throughput (tokens/s, prompts/s) for the unigram model CogView2 uses and
// the BPE model beside it, the normalizer alone (MB/s of UTF-8 in) and decode. CPU only, the GPU context is unused.
// Inputs: the fixture's golden strings (prompts, templates, mixed Chinese/English); not a C++ sentencepiece run.

import type { GpuContext } from "../../src/gpu/context.ts";
import { IceTokenizer } from "../../src/tokenizer/icetk.ts";
import type { BenchResult, BenchSuite } from "./_types.ts";

const FIXTURE = new URL("../../tests/testdata/cogview2-tiny/", import.meta.url);

const FALLBACK_TEXTS = [
  "a tiger wearing VR glasses",
  "一只戴着VR眼镜的老虎",
  "Portrait of a cat, oil painting, highly detailed 高清摄影<start_of_image>",
  "The quick brown fox jumps over the lazy dog. ＡＢＣ１２３ ﬁne ½ ™",
];

async function loadTexts(): Promise<string[]> {
  try {
    const g = JSON.parse(await Deno.readTextFile(new URL("golden/icetk_text.json", FIXTURE)));
    const texts = (g.expected.encode as { text: string }[]).map((r) => r.text).filter((t) => t.length > 0);
    if (texts.length > 0) return texts;
  } catch {
    // fixture absent: fall back to a few built-in strings
  }
  return FALLBACK_TEXTS;
}

/** Runs `body` over all texts until at least `minMs` have passed; returns [seconds, rounds]. */
function timeRounds(body: () => void, minMs: number): [number, number] {
  const w0 = performance.now(); // warm-up, long enough for the optimizing JIT tier
  do body(); while (performance.now() - w0 < minMs / 3);
  let rounds = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    body();
    rounds++;
    t = performance.now();
  }
  return [(t - t0) / 1000, rounds];
}

export const tokenizerSuite: BenchSuite = {
  name: "tokenizer",
  description: "icetk text encode tokens/s (unigram, BPE), normalizer MB/s, decode tokens/s; CPU TypeScript",
  async run(_ctx: GpuContext, report: (r: BenchResult) => void, { quick }) {
    const texts = await loadTexts();
    const minMs = quick ? 150 : 1500;
    const bytes = texts.reduce((n, t) => n + new TextEncoder().encode(t).length, 0);
    for (const [model, file] of [["unigram", "ice_text.model"], ["bpe", "ice_text_bpe.model"]]) {
      let modelBytes: Uint8Array;
      try {
        modelBytes = await Deno.readFile(new URL(`icetk/${file}`, FIXTURE));
      } catch {
        if (model !== "unigram") continue;
        modelBytes = await Deno.readFile(new URL("../../assets/demo/ice_text.model", import.meta.url));
      }
      const t0 = performance.now();
      const tok = IceTokenizer.fromBytes(modelBytes);
      report({ name: "tokenizer_load", params: { model }, value: performance.now() - t0, unit: "ms" });
      let tokens = 0;
      const all: number[][] = [];
      for (const t of texts) {
        const ids = tok.encode(t);
        tokens += ids.length;
        all.push(ids);
      }
      const [s, rounds] = timeRounds(() => {
        for (const t of texts) tok.encode(t);
      }, minMs);
      const params = { model, texts: texts.length, tokens_per_round: tokens };
      report({ name: "encode", params, value: (tokens * rounds) / s, unit: "tokens/s" });
      report({ name: "encode_prompts", params, value: (texts.length * rounds) / s, unit: "prompts/s" });
      const [sn, rn] = timeRounds(() => {
        for (const t of texts) tok.processor.normalize(t);
      }, minMs);
      report({
        name: "normalize_only",
        params: { model, bytes_per_round: bytes },
        value: (bytes * rn) / sn / 1e6,
        unit: "MB/s",
        baseline: "encode",
      });
      const [sd, rd] = timeRounds(() => {
        for (const ids of all) tok.decode(ids);
      }, minMs);
      report({ name: "decode", params, value: (tokens * rd) / sd, unit: "tokens/s" });
    }
  },
};
