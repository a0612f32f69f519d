// The list of benchmark suites `deno task bench` runs, in order. Add a suite: import it and append it here.
import type { BenchSuite } from "./_types.ts";
import { matmulSuite } from "./matmul.ts";
import { gemmSuite } from "./gemm.ts";
import { gemvSuite } from "./gemv.ts";
import { localAttentionSuite } from "./local_attention.ts";
import { tokenizerSuite } from "./tokenizer.ts";
import { vqvaeSuite } from "./vqvae.ts";
import { coglmSuite } from "./coglm.ts";
import { srSuite } from "./sr.ts";
import { e2eSuite } from "./e2e.ts";
import { samplingSuite } from "./sampling.ts";
import { choicesSuite } from "./choices.ts";
import { decodeAttentionSuite } from "./decode_attention.ts";
import { hostSuite } from "./host.ts";

export const suites: BenchSuite[] = [
  matmulSuite,
  gemmSuite,
  gemvSuite,
  choicesSuite,
  decodeAttentionSuite,
  localAttentionSuite,
  tokenizerSuite,
  vqvaeSuite,
  coglmSuite,
  srSuite,
  samplingSuite,
  e2eSuite,
  hostSuite,
];
