// Shared operands of the CPU-schedule matmul tests (tests/kernels/matmul_ubo_test.ts, matmul_windows_test.ts):
// strided A (row copies when lda > K), W with an offset and a padded row stride, f32 or f16 W and bias, a strided
// C with an initial value, and the epilogue (alpha, bias, GELU, residual) when `epi`. `want` is the CPU twin.
import { f16BitsToF32, f32ToF16Bits } from "../../src/gpu/f16.ts";
import type { GpuContext } from "../../src/gpu/context.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import type { MatmulOptions } from "../../src/kernels/matmul.ts";
import { matmulStridedRef } from "../../src/reference/matmul.ts";
import { randn } from "../_util.ts";

export interface MatmulCase {
  a: Tensor;
  w: Tensor;
  c: Tensor;
  /** Options without variant; `run` adds the epilogue tensors and `out`. */
  o: MatmulOptions;
  run: MatmulOptions;
  want: Float32Array;
  tol: { atol: number; rtol: number };
  label: string;
  release(): void;
}

export function matmulCase(
  ctx: GpuContext,
  s: { M: number; N: number; K: number; lda: number; epi: boolean; f16: boolean; aOff: number; wPad: number },
): MatmulCase {
  const { M, N, K, lda, epi, f16 } = s;
  const dt = f16 ? "f16" : "f32";
  const aOff = lda === K ? 0 : s.aOff, wOff = s.wPad, ldw = K + s.wPad;
  const a = randn(aOff + M * lda, M + K), wRaw = randn(wOff + N * ldw, N + 3 * K, 0.3);
  const biasRaw = randn(N + 3, 7);
  const w = f16 ? f16BitsToF32(f32ToF16Bits(wRaw)) : wRaw;
  const bias = f16 ? f16BitsToF32(f32ToF16Bits(biasRaw)) : biasRaw;
  const ldc = N + 5, cOff = 2 * ldc + 1, ldr = N + 2, rOff = 3;
  const resid = randn(rOff + M * ldr, 11);
  const cInit = randn(cOff + M * ldc, 13);
  const ta = ctx.upload(a, [a.length]), tw = ctx.upload(wRaw, [wRaw.length], dt);
  const tb = ctx.upload(biasRaw, [N + 3], dt), tr = ctx.upload(resid, [resid.length]);
  const tc = ctx.upload(cInit, [cInit.length]);
  const o = {
    M,
    N,
    K,
    lda,
    aOff,
    ldw,
    wOff,
    ldc,
    cOff,
    ...(epi ? { alpha: 0.75, biasOff: 3, gelu: true, rOff, ldr } : {}),
  };
  const want = matmulStridedRef(a, w, cInit.slice(), { ...o, ...(epi ? { bias, resid } : {}) });
  return {
    a: ta,
    w: tw,
    c: tc,
    o,
    run: { ...o, out: tc, ...(epi ? { bias: tb, resid: tr } : {}) },
    want,
    tol: { atol: 2e-5 * Math.sqrt(K) + (epi ? 1e-4 : 0), rtol: 1e-5 },
    label: `${M}x${N}x${K} lda=${lda} ${dt} epilogue=${epi}`,
    release: () => [ta, tw, tb, tr, tc].forEach((t) => t.release()),
  };
}
