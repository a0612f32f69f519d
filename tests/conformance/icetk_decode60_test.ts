// icetk_decode_60 (60×60 codes → 480×480) through the conformance runner: the full-size CogView2 decode.
import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: icetk_decode_60 of cogview2-tiny passes (60x60 codes, 480x480 image)",
  ["icetk_decode"],
  { filter: /^icetk_decode_60$/, count: 1 },
);
