// Registry of golden-case kinds the conformance runner knows. Add a kind: write src/conformance/<area>.ts
// exporting handlers and register them here. A kind missing from this map is reported as not implemented.
import type { KindHandler } from "./types.ts";
import { icetkText } from "./icetk_text.ts";
import { localAttentionCase } from "./local_attention.ts";
import { coglmForward, coglmGenerateGreedy, coglmPerplexity } from "./coglm.ts";

export const kinds: Record<string, KindHandler> = {
  icetk_text: icetkText,
  local_attention: localAttentionCase,
  coglm_forward: coglmForward,
  coglm_generate_greedy: coglmGenerateGreedy,
  coglm_perplexity: coglmPerplexity,
};
