// Decode GEMV / skinny GEMM for GPUs: C[m, n] = alpha·Σ_k A[m, k]·W[n, k] (+bias[n]) (GELU) (+R[m, n]) for M ≤ 8
// rows, W [N, K] (nn.Linear) f32, f16 (packed two per u32, W_F16) or int8 (four per u32, W_I8) with f32 scales per
// group of QG consecutive elements along K. Each weight is read once. A workgroup is GPW groups of LPR lanes; a group
// computes CPL adjacent output columns for all MR rows of A. Its lanes read the columns' W rows in 16-byte vec4 loads
// (8 f16, 4 f32 or 16 int8 per load; adjacent lanes adjacent addresses), U loads per column issued before any is used
// (the loop is unrolled by compile-time constants: U·CPL loads in flight per lane), and each A slice is loaded once
// per step and held in registers across the CPL columns. The partial sums are reduced across the LPR lanes either by
// subgroupAdd (SUBGROUPS, subgroup size SG dividing LPR; more than one subgroup per group adds one workgroup-memory
// pass) or by a log-tree in workgroup memory. Variants (names, defaults per backend): src/kernels/gemv.ts; with
// LPR 32, GPW 8, CPL 1, U 1 and the tree it is the original kernel. Needs K, lda, ldw and the offsets multiples of the
// load (8 f16, 4 f32, 16 int8; int8 also QG a multiple of 16). Subgroups: assumes invocations are packed into
// subgroups by local_invocation_index (1-D workgroup), as every Vulkan/D3D12/Metal driver we know does.
#if SUBGROUPS
enable subgroups;
#endif
#include "common.wgsl"

// The matmul kernels' common layout (src/kernels/_epilogue.ts layoutParams; one batch: the batch strides unused).
struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldw: u32, ldc: u32, a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32, alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32, cols_x: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
#if W_F32
alias WT = vec4<f32>;
const Q: u32 = 1u; // vec4<f32> of A per W load
#else
alias WT = vec4<u32>;
#if W_I8
const Q: u32 = 4u;
#else
const Q: u32 = 2u;
#endif
#endif
@group(0) @binding(2) var<storage, read> W: array<WT>;
#if W_I8
@group(0) @binding({{B_WS}}) var<storage, read> WS: array<f32>;
const QG: u32 = {{QG}}u;
#endif
#include "matmul_epilogue.wgsl"

const MR: u32 = {{MR}}u;
const LPR: u32 = {{LPR}}u;
const GPW: u32 = {{GPW}}u;
const CPL: u32 = {{CPL}}u;
const U: u32 = {{U}}u;
const WG: u32 = LPR * GPW;
const NV: u32 = MR * CPL;
const EPL: u32 = 4u * Q; // W elements per 16-byte load

// The j-th vec4<f32> of one W load.
fn wpart(p: WT, j: u32) -> vec4<f32> {
#if W_F32
  return p;
#elif W_I8
  let q = p[j];
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(q << 24u, q << 16u, q << 8u, q)) >> vec4<u32>(24u));
#else
  if (j == 0u) { return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)); }
  return vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w));
#endif
}

#if SUBGROUPS
const SG: u32 = {{SG}}u;
const NSG: u32 = LPR / SG; // subgroups per group of lanes
var<workgroup> part: array<f32, GPW * NSG * NV>;
#else
var<workgroup> red: array<f32, WG * MR>;
#endif

@compute @workgroup_size({{LPR}} * {{GPW}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x % LPR;
  let grp = lid.x / LPR;
  let col0 = ((wg.x + wg.y * P.cols_x) * GPW + grp) * CPL;
  // W row starts in loads (columns past N re-read the last row; their results are not stored).
  var wb: array<u32, CPL>;
  for (var c = 0u; c < CPL; c++) { wb[c] = (P.w_off + min(col0 + c, P.N - 1u) * P.ldw) / EPL; }
  var ab: array<u32, MR>;
  for (var m = 0u; m < MR; m++) { ab[m] = (P.a_off + m * P.lda) / 4u; }
  var acc: array<f32, NV>;
  for (var j = 0u; j < NV; j++) { acc[j] = 0.0; }
  let steps = P.K / EPL;
  for (var s = lane; s < steps; s += U * LPR) {
    // Every W load of this step first (U per column), then the arithmetic. Loads past the row re-read its last
    // load and meet a zero A slice.
    var wv: array<WT, CPL * U>;
#if W_I8
    var sc: array<f32, CPL * U>;
#endif
    for (var u = 0u; u < U; u++) {
      let su = min(s + u * LPR, steps - 1u);
      for (var c = 0u; c < CPL; c++) {
        wv[c * U + u] = W[wb[c] + su];
#if W_I8
        sc[c * U + u] = WS[((wb[c] + su) * EPL) / QG];
#endif
      }
    }
    for (var u = 0u; u < U; u++) {
      let ok = s + u * LPR < steps;
      let su = min(s + u * LPR, steps - 1u);
      for (var m = 0u; m < MR; m++) {
        var av: array<vec4<f32>, Q>;
        for (var j = 0u; j < Q; j++) { av[j] = select(vec4<f32>(0.0), A[ab[m] + su * Q + j], ok); }
        for (var c = 0u; c < CPL; c++) {
          var d = 0.0;
          for (var j = 0u; j < Q; j++) { d += dot(av[j], wpart(wv[c * U + u], j)); }
#if W_I8
          d *= sc[c * U + u];
#endif
          acc[m * CPL + c] += d;
        }
      }
    }
  }
#if SUBGROUPS
  // subgroupAdd per value; lane j % LPR of the group stores value j (row m = j / CPL, column c = j % CPL).
  if (NSG == 1u) {
    for (var j = 0u; j < NV; j++) {
      let t = subgroupAdd(acc[j]);
      let m = j / CPL;
      let n = col0 + j % CPL;
      if (lane == j % LPR && m < P.M && n < P.N) { store_c(0u, m, n, t); }
    }
  } else {
    let sgi = lane / SG;
    for (var j = 0u; j < NV; j++) {
      let t = subgroupAdd(acc[j]);
      if (lane % SG == 0u) { part[(grp * NSG + sgi) * NV + j] = t; }
    }
    workgroupBarrier();
    for (var j = 0u; j < NV; j++) {
      let m = j / CPL;
      let n = col0 + j % CPL;
      if (lane == j % LPR && m < P.M && n < P.N) {
        var t = 0.0;
        for (var i = 0u; i < NSG; i++) { t += part[(grp * NSG + i) * NV + j]; }
        store_c(0u, m, n, t);
      }
    }
  }
#else
  // One column at a time: the MR partials of every lane in workgroup memory, a log-tree over the group's lanes.
  for (var c = 0u; c < CPL; c++) {
    for (var m = 0u; m < MR; m++) { red[m * WG + lid.x] = acc[m * CPL + c]; }
    for (var stride = LPR / 2u; stride > 0u; stride /= 2u) {
      workgroupBarrier();
      if (lane < stride) {
        for (var m = 0u; m < MR; m++) { red[m * WG + lid.x] += red[m * WG + lid.x + stride]; }
      }
    }
    workgroupBarrier();
    let n = col0 + c;
    if (lane < MR && lane < P.M && n < P.N) {
      store_c(0u, lane, n, red[lane * WG + grp * LPR]);
    }
    workgroupBarrier();
  }
#endif
}
