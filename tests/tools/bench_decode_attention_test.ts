// bench --only decode_attention: every split is checked against the CPU twin before it is timed; one that fails (here
// an invalid split count, the same path as a wrong result) is reported as decode_attention_skipped and never timed,
// so tools/pick_variants.ts cannot pick it. Run small (2 heads of 16, 37 keys, widths 32 and 64).
import assert from "node:assert/strict";
import { benchDecodeAttention } from "../../tools/bench/decode_attention.ts";
import type { BenchResult } from "../../tools/bench/_types.ts";
import { pickDecodeAttention } from "../../tools/pick_variants.ts";
import { sharedContext } from "../_util.ts";

Deno.test("bench decode_attention: each split checked vs the CPU twin, then timed side by side; a failing one skipped", async () => {
  const ctx = await sharedContext();
  const rs: BenchResult[] = [];
  await benchDecodeAttention(ctx, (r) => rs.push(r), {
    batch: 2,
    keys: 37,
    heads: 2,
    headDim: 16,
    splits: [1, 3, 300],
    wgs: [32, 64],
    rounds: 1,
  });
  const timed = rs.filter((r) => r.name === "decode_attention_us");
  assert.deepEqual(timed.map((r) => `${r.params.wg}/${r.params.split}`), ["32/1", "32/3", "64/1", "64/3"]);
  for (const r of timed) {
    assert.ok(r.value > 0 && r.params.keys === 37 && r.params.batch === 2, JSON.stringify(r));
  }
  const skipped = rs.filter((r) => r.name === "decode_attention_skipped");
  assert.deepEqual(skipped.map((r) => `${r.params.wg}/${r.params.split}`), ["32/300", "64/300"]);
  assert.match(String(skipped[0].params.why), /split 300 must be an integer from 1 to 256/);
  assert.equal(rs.find((r) => r.name === "decode_attention_table_split")?.value, 1, "CPU adapters: 1");
  const pick = pickDecodeAttention(rs, 2)!;
  assert.ok(
    [1, 3].includes(pick.split) && [32, 64].includes(pick.wg!),
    "the pick is one of the checked variants",
  );
});
