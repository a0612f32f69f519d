// The icetk image cases of cogview2-tiny through the conformance runner. icetk_decode_60 (480×480, the slow one on
// lavapipe) runs in tests/conformance/icetk_decode60_test.ts so each file stays short.
import { conformanceTest } from "./_run.ts";

conformanceTest(
  "conformance: icetk image cases of cogview2-tiny pass (decode 20x20, encode, resize, PIL, roundtrip)",
  ["icetk_decode", "icetk_encode", "icetk_roundtrip"],
  { filter: /^(?!icetk_decode_60$)/, count: { atLeast: 5 } },
);
