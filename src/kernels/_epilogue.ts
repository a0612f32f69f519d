// What every matmul kernel (matmul.wgsl's schedules, windows, ubo, gemm_tiles, gemv_rows) shares on the host side:
// the strided layout with its epilogue (alpha, bias, GELU, residual), the checks of the output operands, and the
// binding numbers of bias / residual / C. Not a launcher: each kernel file keeps its own plan, params and grid.
import type { Access, GpuContext } from "../gpu/context.ts";
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
 * The output C (o.out, or a new f32 [batch·M, N]) once C, the residual and the bias are checked to hold every element
 * the layout addresses; `name` prefixes the errors.
 */
export function matmulOutput(ctx: GpuContext, name: string, o: MatmulLayout): Tensor {
  const { M, N } = o;
  const batch = o.batch ?? 1, ldc = o.ldc ?? N, cBs = o.cBatchStride ?? M * ldc;
  const ldr = o.ldr ?? ldc, rBs = o.rBatchStride ?? cBs;
  const last = (off: number, bs: number, ld: number) => off + (batch - 1) * bs + (M - 1) * ld + N;
  const c = o.out ?? ctx.empty([batch * M, N], "f32");
  check(c.dtype === "f32", name, `C must be f32, got ${c.dtype}`);
  check(last(o.cOff ?? 0, cBs, ldc) <= c.size, name, `C [${c.shape}] too small for M=${M} N=${N}`);
  if (o.resid) {
    check(
      last(o.rOff ?? 0, rBs, ldr) <= o.resid.size,
      name,
      `resid [${o.resid.shape}] too small for M=${M} N=${N}`,
    );
  }
  if (o.bias) {
    check(
      o.bias.dtype === "f32" || o.bias.dtype === "f16",
      name,
      `bias must be f32 or f16, got ${o.bias.dtype}`,
    );
    check((o.biasOff ?? 0) + N <= o.bias.size, name, `bias [${o.bias.shape}] too small for N=${N}`);
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
