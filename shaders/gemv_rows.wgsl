// Decode GEMV / skinny GEMM for GPUs: C[m, n] = alpha·Σ_k A[m, k]·W[n, k] (+bias[n]) (GELU) (+R[m, n]) for M ≤ 8
// rows, W [N, K] (nn.Linear) f16 (packed) or f32. Each weight is read once: a workgroup of 256 invocations is 8
// groups of 32 lanes, one output column per group; the lanes read the column's W row in 16-byte vec4 loads (8 f16
// or 4 f32 per lane and step, adjacent lanes adjacent addresses) and multiply each load with all M rows of A, whose
// partial sums are reduced across the 32 lanes in workgroup memory. Needs K, lda, ldw and the offsets multiples of
// 8 (f16) or 4 (f32). The launcher is src/kernels/gemv.ts.
#include "common.wgsl"

// The matmul kernels' common layout (src/kernels/_epilogue.ts layoutParams; one batch: the batch strides unused).
struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldw: u32, ldc: u32, a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32, alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32, cols_x: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
#else
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
#endif
#include "matmul_epilogue.wgsl"

const MR: u32 = {{MR}}u;
var<workgroup> red: array<f32, 256 * {{MR}}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x % 32u;
  let grp = lid.x / 32u;
  let n = (wg.x + wg.y * P.cols_x) * 8u + grp;
  let nn = min(n, P.N - 1u);
  var acc: array<f32, MR>;
  for (var m = 0u; m < MR; m++) { acc[m] = 0.0; }
#if W_F16
  // 8 halves per vec4<u32> load
  let steps = P.K / 8u;
  let wb = (P.w_off + nn * P.ldw) / 8u;
  for (var s = lane; s < steps; s += 32u) {
    let p = W[wb + s];
    let w0 = vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
    let w1 = vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w));
    for (var m = 0u; m < MR; m++) {
      let ab = (P.a_off + m * P.lda) / 4u + 2u * s;
      acc[m] += dot(A[ab], w0) + dot(A[ab + 1u], w1);
    }
  }
#else
  let steps = P.K / 4u;
  let wb = (P.w_off + nn * P.ldw) / 4u;
  for (var s = lane; s < steps; s += 32u) {
    let w0 = W[wb + s];
    for (var m = 0u; m < MR; m++) {
      acc[m] += dot(A[(P.a_off + m * P.lda) / 4u + s], w0);
    }
  }
#endif
  for (var m = 0u; m < MR; m++) { red[m * 256u + lid.x] = acc[m]; }
  for (var stride = 16u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lane < stride) {
      for (var m = 0u; m < MR; m++) { red[m * 256u + lid.x] += red[m * 256u + lid.x + stride]; }
    }
  }
  workgroupBarrier();
  if (lane < MR && lane < P.M && n < P.N) {
    store_c(0u, lane, n, red[lane * 256u + grp * 32u]);
  }
}
