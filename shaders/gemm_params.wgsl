// The parameters and A binding of the weight-product GEMMs (gemm_tiles.wgsl, gemm_sgmat.wgsl): C = alpha·A·Wᵀ
// (+bias)(GELU)(+R) over strided batches, A [M, K] f32 read as vec4; the launcher is src/kernels/gemm.ts
// (layoutParams in src/kernels/_epilogue.ts writes these words in this order).
struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldw: u32, ldc: u32, a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32, alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
