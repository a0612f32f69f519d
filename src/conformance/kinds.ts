// Registry of golden-case kinds the conformance runner knows. Add a kind: write src/conformance/<area>.ts
// exporting handlers and register them here. A kind missing from this map is reported as not implemented.
import type { KindHandler } from "./types.ts";
import { icetkText } from "./icetk_text.ts";
import { icetkDecode, icetkEncode, icetkRoundtrip } from "./icetk_image.ts";
import { localAttentionCase } from "./local_attention.ts";
import { coglmForward, coglmGenerateGreedy, coglmPerplexity } from "./coglm.ts";
import { dsrForward, dsrStepGreedy, itersrForward, itersrLoparGreedy } from "./sr.ts";
import { coglmStrategy, dsrStrategy } from "./sampling.ts";

export const kinds: Record<string, KindHandler> = {
  icetk_text: icetkText,
  icetk_decode: icetkDecode,
  icetk_encode: icetkEncode,
  icetk_roundtrip: icetkRoundtrip,
  local_attention: localAttentionCase,
  coglm_forward: coglmForward,
  coglm_generate_greedy: coglmGenerateGreedy,
  coglm_perplexity: coglmPerplexity,
  dsr_forward: dsrForward,
  dsr_step_greedy: dsrStepGreedy,
  itersr_forward: itersrForward,
  itersr_lopar_greedy: itersrLoparGreedy,
  coglm_strategy: coglmStrategy,
  dsr_strategy: dsrStrategy,
};
