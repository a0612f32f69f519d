// tools/pick_variants.ts: the variants it names from bench records (what tools/device_bench.sh runs the published
// bench with on a lent GPU).
import assert from "node:assert/strict";
import {
  pickDecodeAttention,
  pickGemm,
  pickGemv,
  pickRowReduce,
  pickSrAttention,
} from "../../tools/pick_variants.ts";

const r = (name: string, params: Record<string, string | number>, value: number) => ({ name, params, value });

Deno.test("pick_variants: GEMV by decode-step time at the asked rows, f16 weights only", () => {
  const rs = [
    r("gemv_step_best_ms", { M: 1, w: "f16", variant: "l64u4" }, 5.0),
    r("gemv_step_best_ms", { M: 1, w: "int8", variant: "c8u2" }, 3.0),
    r("gemv_step_best_ms", { M: 8, w: "f16", variant: "c8u2" }, 7.0),
  ];
  assert.equal(pickGemv(rs, 1), "l64u4");
  assert.equal(pickGemv(rs, 8), "c8u2");
  assert.equal(pickGemv(rs, 4), null);
});

Deno.test("pick_variants: GEMM by summed time over the SR shapes; 4096³ and variants missing a shape left out", () => {
  const s1 = { shape: "qkv", M: 1000, N: 3000, K: 2000 }, s2 = { shape: "mlp", M: 1000, N: 8000, K: 2000 };
  const rs = [
    // a: fast on the small shape, slow on the big one; b: the reverse; the big one dominates the sum
    r("gemm_variant_gflops", { ...s1, kernel: "a" }, 20000),
    r("gemm_variant_gflops", { ...s2, kernel: "a" }, 10000),
    r("gemm_variant_gflops", { ...s1, kernel: "b" }, 10000),
    r("gemm_variant_gflops", { ...s2, kernel: "b" }, 20000),
    // c: fastest where measured, but did not run the big shape
    r("gemm_variant_gflops", { ...s1, kernel: "c" }, 90000),
    // d: wins 4096³ only, which is not an SR shape
    r("gemm_variant_gflops", { shape: "4096^3", M: 4096, N: 4096, K: 4096, kernel: "d" }, 99000),
  ];
  assert.equal(pickGemm(rs), "b");
  assert.equal(pickGemm([]), null);
});

Deno.test("pick_variants: SR attention path by summed time over the published-width calls", () => {
  const rs = [
    r("sr_local_attention_ms", { config: "published_b8", mode: "dsr", path: "query" }, 10),
    r("sr_local_attention_ms", { config: "published_b8", mode: "itersr", path: "query" }, 10),
    r("sr_local_attention_ms", { config: "published_b8", mode: "dsr", path: "tiles" }, 4),
    r("sr_local_attention_ms", { config: "published_b8", mode: "itersr", path: "tiles" }, 12),
    r("sr_local_attention_ms", { config: "tiny", mode: "dsr" }, 0.1),
  ];
  assert.equal(pickSrAttention(rs), "tiles");
});

Deno.test("pick_variants: row reduction by summed time over the decode-shaped rows only", () => {
  const rs = [
    r("row_reduce_ms", { op: "layernorm", rows: 8, n: 3072, reduce: "workgroup" }, 0.07),
    r("row_reduce_ms", { op: "layernorm", rows: 8, n: 3072, reduce: "wide" }, 0.01),
    r("row_reduce_ms", { op: "layernorm", rows: 4096, n: 64, reduce: "wide" }, 9),
    r("row_reduce_ms", { op: "layernorm", rows: 4096, n: 64, reduce: "workgroup" }, 1),
  ];
  assert.equal(pickRowReduce(rs), "wide");
  assert.equal(pickRowReduce([]), null);
});

Deno.test("pick_variants: decode attention (width, split) by summed time over the key counts at the asked batch; pairs missing a key count left out", () => {
  const a = (batch: number, keys: number, wg: number, split: number, us: number) =>
    r("decode_attention_us", { batch, keys, heads: 48, head_dim: 64, wg, split }, us);
  const rs = [
    // batch 1: split 4 at 256 loses at 64 keys but wins the sum; 16 at 64 is fastest where measured but was skipped
    // at 420; split 4 at width 64 is slower than at 256
    a(1, 64, 256, 1, 10),
    a(1, 420, 256, 1, 60),
    a(1, 64, 256, 4, 14),
    a(1, 420, 256, 4, 20),
    a(1, 64, 64, 4, 15),
    a(1, 420, 64, 4, 25),
    a(1, 64, 64, 16, 5),
    // batch 8: one workgroup per (head, batch) at width 64 is fastest
    a(8, 64, 256, 1, 30),
    a(8, 420, 256, 1, 90),
    a(8, 64, 64, 1, 20),
    a(8, 420, 64, 1, 80),
    a(8, 64, 256, 4, 40),
    a(8, 420, 256, 4, 95),
    r("decode_attention_skipped", { batch: 1, keys: 420, wg: 64, split: 16 }, 0),
  ];
  assert.deepEqual(pickDecodeAttention(rs, 1), { split: 4, wg: 256 });
  assert.deepEqual(pickDecodeAttention(rs, 8), { split: 1, wg: 64 });
  assert.equal(pickDecodeAttention(rs, 2), null);
  // records of one width (no wg param): the split alone
  const one = [r("decode_attention_us", { batch: 1, keys: 64, split: 2 }, 3)];
  assert.deepEqual(pickDecodeAttention(one, 1), { split: 2, wg: null });
});
