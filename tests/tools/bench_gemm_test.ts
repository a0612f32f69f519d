// bench --only gemm: its SR shapes are the products the published SR stages run at batch 8 (the MLP in the row
// blocks src/models/transformer.ts picks at a 2 GiB binding, as on the H200), and their classes are the ones
// choices.ts gpuGemm distinguishes.
import assert from "node:assert/strict";
import { GEMM_SHAPES } from "../../tools/bench/gemm.ts";
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
