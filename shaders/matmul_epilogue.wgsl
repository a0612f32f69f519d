// The epilogue of the matmul kernels (matmul.wgsl, gemm_tiles.wgsl, gemv_rows.wgsl): the bias (f16 or f32), residual
// and C bindings, numbered by the launcher (B_BIAS, B_R, B_C: src/kernels/_epilogue.ts epilogueBindings), and store_c,
// which writes one element of C through alpha, bias, GELU and the residual. Needs P.{alpha, bias_off, r_off, r_bs,
// ldr, c_off, c_bs, ldc} and common.wgsl (f16_at, gelu_sat).
#if BIAS
#if BIAS_F16
@group(0) @binding({{B_BIAS}}) var<storage, read> Bias: array<u32>;
#else
@group(0) @binding({{B_BIAS}}) var<storage, read> Bias: array<f32>;
#endif
#endif
#if RESID
@group(0) @binding({{B_R}}) var<storage, read> R: array<f32>;
#endif
@group(0) @binding({{B_C}}) var<storage, read_write> C: array<f32>;

#if BIAS
fn load_bias(idx: u32) -> f32 {
#if BIAS_F16
  return f16_at(Bias[idx >> 1u], idx);
#else
  return Bias[idx];
#endif
}
#endif

// Writes element (m, n) of batch b: C = acc·alpha (+bias[n]) (GELU) (+R).
fn store_c(b: u32, m: u32, n: u32, acc: f32) {
  var v = acc * P.alpha;
#if BIAS
  v += load_bias(P.bias_off + n);
#endif
#if GELU
  v = gelu_sat(v);
#endif
#if RESID
  v += R[P.r_off + b * P.r_bs + m * P.ldr + n];
#endif
  C[P.c_off + b * P.c_bs + m * P.ldc + n] = v;
}
