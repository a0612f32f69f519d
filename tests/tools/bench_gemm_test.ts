// bench --only gemm: its SR shapes are the products the published SR stages run at batch 8 (the MLP in the row
// blocks src/models/transformer.ts picks at a 2 GiB binding, as on the H200), and their classes are the ones
// choices.ts gpuGemm distinguishes.
import assert from "node:assert/strict";
import { classChoices, GEMM_SHAPES } from "../../tools/bench/gemm.ts";
import { mlpBlockRows, type TransformerDims } from "../../src/models/transformer.ts";
import { gpuGemmClass } from "../../src/kernels/choices.ts";
import type { GpuContext } from "../../src/gpu/context.ts";

Deno.test("bench gemm shapes: the SR stages' QKV, dense and MLP products at batch 8 and the model's MLP row block", () => {
  const H = 2560, dims = { hidden: H, inner: 4 * H } as TransformerDims;
  const h200 = { maxBinding: 2 ** 31 - 4 } as GpuContext;
  const shape = (s: string) => GEMM_SHAPES.find((x) => x.shape === s)!;
  const itersrRows = 8 * (16 + 3600), dsrRows = 8 * 4096;
  assert.deepEqual(shape("itersr_qkv"), { shape: "itersr_qkv", M: itersrRows, N: 3 * H, K: H });
  assert.deepEqual(shape("itersr_dense"), { shape: "itersr_dense", M: itersrRows, N: H, K: H });
  assert.deepEqual(shape("dsr_qkv"), { shape: "dsr_qkv", M: dsrRows, N: 3 * H, K: H });
  const block = mlpBlockRows(h200, dims, itersrRows);
  assert.equal(mlpBlockRows(h200, dims, dsrRows), block, "DSR's MLP blocks are as large");
  assert.deepEqual(shape("sr_mlp_h_4h"), { shape: "sr_mlp_h_4h", M: block, N: 4 * H, K: H });
  assert.deepEqual(shape("sr_mlp_4h_h"), { shape: "sr_mlp_4h_h", M: block, N: H, K: 4 * H });
  assert.deepEqual(
    GEMM_SHAPES.map((s) => gpuGemmClass(s.M, s.N)),
    ["narrowN", "wide", "narrowN", "wide", "narrowN", "wide", "narrowN"],
  );
});

Deno.test("bench gemm class choice: least summed time over the class's model shapes; 4096³ and f16math left out", () => {
  const shapes = [
    { shape: "4096^3", M: 4096, N: 4096, K: 4096 },
    { shape: "a", M: 1000, N: 2000, K: 100 }, // narrowN, 0.4 GFLOP
    { shape: "b", M: 1000, N: 1000, K: 400 }, // narrowN, 0.8 GFLOP
    { shape: "w", M: 1000, N: 8000, K: 100 }, // wide
  ];
  const res = new Map([
    ["4096^3", new Map([["gemm_tiles", 1], ["gemm_tiles_1buf", 1000]])],
    // x: fastest on a but slower in sum (0.4/800 + 0.8/200 = 4.5 ms); 1buf: 0.4/400 + 0.8/400 = 3 ms; tiles 4 ms.
    [
      "a",
      new Map([["gemm_tiles", 400], ["gemm_tiles_1buf", 400], ["gemm_tiles_il", 800], [
        "gemm_tiles_f16math",
        9e9,
      ]]),
    ],
    [
      "b",
      new Map([["gemm_tiles", 266.667], ["gemm_tiles_1buf", 400], ["gemm_tiles_il", 200], [
        "gemm_tiles_f16math",
        9e9,
      ]]),
    ],
    ["w", new Map([["gemm_tiles", 50], ["gemm_tiles_1buf", 100]])],
  ]);
  const c = classChoices(shapes, res);
  assert.deepEqual(c.map((x) => [x.cls, x.kernel, x.shapes]), [
    ["narrowN", "gemm_tiles_1buf", ["a", "b"]],
    ["wide", "gemm_tiles_1buf", ["w"]],
  ]);
  assert.ok(Math.abs(c[0].ms - 3) < 1e-9 && Math.abs(c[0].speedup - 4 / 3) < 1e-3, JSON.stringify(c[0]));
  assert.equal(c[1].speedup, 2);
});
