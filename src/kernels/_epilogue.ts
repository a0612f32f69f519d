// What every matmul kernel (matmul.wgsl's schedules, windows, ubo, gemm_tiles, gemv_rows) shares on the host side:
// the strided layout with its epilogue (alpha, bias, GELU, residual), the checks of the output operands, and the
// binding numbers of bias / residual / C. Not a launcher: each kernel file keeps its own plan, params and grid.
import { type Access, type F32, f32, type GpuContext } from "../gpu/context.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { check } from "./_grid.ts";

/** C = alpha·A·op(W) (+bias) (GELU) (+resid) over strided, batched rows (MatmulOptions adds the schedule). */
export interface MatmulLayout {
  M: number;
  N: number;
  K: number;
  batch?: number;
  /** Row strides in elements (default: K for A, K or N for W, N for C). */
  lda?: number;
  ldw?: number;
  ldc?: number;
  /** Element offsets of the first matrix. */
  aOff?: number;
  wOff?: number;
  cOff?: number;
  /** Batch strides in elements (default: dense; W defaults to 0 = shared across the batch). */
  aBatchStride?: number;
  wBatchStride?: number;
  cBatchStride?: number;
  alpha?: number;
  bias?: Tensor;
  biasOff?: number;
  gelu?: boolean;
  /** Residual: C = R + result, R laid out like C (same ldc/batch stride unless given). */
  resid?: Tensor;
  rOff?: number;
  ldr?: number;
  rBatchStride?: number;
  out?: Tensor;
}

/**
 * Checks that A (f32, [rows, K] runs) and W ([N, K] runs) hold every element the layout addresses for W stored
 * [N, K] (the GPU kernels; matmul's own resolveMatmul also takes [K, N]).
 */
export function checkInputsNK(name: string, a: Tensor, w: Tensor, o: MatmulLayout): void {
  const { M, N, K } = o;
  const batch = o.batch ?? 1, lda = o.lda ?? K, ldw = o.ldw ?? K;
  const last = (off: number, bs: number, rows: number, ld: number) =>
    off + (batch - 1) * bs + (rows - 1) * ld + K;
  check(a.dtype === "f32", name, () => `A must be f32, got ${a.dtype}`);
  check(
    last(o.aOff ?? 0, o.aBatchStride ?? M * lda, M, lda) <= a.size,
    name,
    () => `A [${a.shape}] too small for M=${M} K=${K}`,
  );
  check(
    last(o.wOff ?? 0, o.wBatchStride ?? 0, N, ldw) <= w.size,
    name,
    () => `W [${w.shape}] too small for N=${N} K=${K}`,
  );
}

/**
 * The layout part of the kernels' uniform params, in the order their Params structs start with: M, N, K, lda, ldw,
 * ldc, a_off, w_off, c_off, a_bs, w_bs, c_bs, alpha, bias_off, r_off, ldr, r_bs (`ldw` defaults to K: W [N, K]).
 */
export function layoutParams(o: MatmulLayout): (number | F32)[] {
  const { M, N, K } = o;
  const lda = o.lda ?? K, ldw = o.ldw ?? K, ldc = o.ldc ?? N, cBs = o.cBatchStride ?? M * ldc;
  return [
    M,
    N,
    K,
    lda,
    ldw,
    ldc,
    o.aOff ?? 0,
    o.wOff ?? 0,
    o.cOff ?? 0,
    o.aBatchStride ?? M * lda,
    o.wBatchStride ?? 0,
    cBs,
    f32(o.alpha ?? 1),
    o.biasOff ?? 0,
    o.rOff ?? 0,
    o.ldr ?? ldc,
    o.rBatchStride ?? cBs,
  ];
}

/**
 * The output C (o.out, or a new f32 [batch·M, N]) once C, the residual and the bias are checked to hold every element
 * the layout addresses; `name` prefixes the errors.
 */
export function matmulOutput(ctx: GpuContext, name: string, o: MatmulLayout): Tensor {
  const { M, N } = o;
  const batch = o.batch ?? 1, ldc = o.ldc ?? N, cBs = o.cBatchStride ?? M * ldc;
  const ldr = o.ldr ?? ldc, rBs = o.rBatchStride ?? cBs;
  const last = (off: number, bs: number, ld: number) => off + (batch - 1) * bs + (M - 1) * ld + N;
  const c = o.out ?? ctx.empty([batch * M, N], "f32");
  check(c.dtype === "f32", name, () => `C must be f32, got ${c.dtype}`);
  check(last(o.cOff ?? 0, cBs, ldc) <= c.size, name, () => `C [${c.shape}] too small for M=${M} N=${N}`);
  if (o.resid) {
    check(
      last(o.rOff ?? 0, rBs, ldr) <= o.resid.size,
      name,
      () => `resid [${o.resid!.shape}] too small for M=${M} N=${N}`,
    );
  }
  if (o.bias) {
    check(
      o.bias.dtype === "f32" || o.bias.dtype === "f16",
      name,
      () => `bias must be f32 or f16, got ${o.bias!.dtype}`,
    );
    check((o.biasOff ?? 0) + N <= o.bias.size, name, () => `bias [${o.bias!.shape}] too small for N=${N}`);
  }
  return c;
}

/**
 * Defines, accesses and tensors of the epilogue operands, bound after A (1), W (2) and `extra` more read bindings:
 * bias (B_BIAS, BIAS_F16), residual (B_R), then C (B_C), as the matmul shaders declare them.
 */
export function epilogueBindings(
  o: MatmulLayout,
  extra: Tensor[] = [],
): {
  defines: Record<string, boolean | number>;
  access: Access[];
  tensors: (a: Tensor, w: Tensor, c: Tensor) => Tensor[];
} {
  let b = 3 + extra.length;
  const defines: Record<string, boolean | number> = {
    BIAS: !!o.bias,
    BIAS_F16: o.bias?.dtype === "f16",
    GELU: !!o.gelu,
    RESID: !!o.resid,
  };
  if (o.bias) defines.B_BIAS = b++;
  if (o.resid) defines.B_R = b++;
  defines.B_C = b;
  const reads = [...extra, ...(o.bias ? [o.bias] : []), ...(o.resid ? [o.resid] : [])];
  return {
    defines,
    access: ["read", "read", ...reads.map(() => "read" as const), "write"],
    tensors: (a, w, c) => [a, w, ...reads, c],
  };
}
