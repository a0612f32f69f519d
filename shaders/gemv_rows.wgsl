// Decode GEMV / skinny GEMM for GPUs: C[m, n] = alpha·Σ_k A[m, k]·W[n, k] (+bias[n]) (GELU) (+R[m, n]) for M ≤ 8
// rows, W [N, K] (nn.Linear) f32, f16 (packed two per u32, W_F16) or int8 (four per u32, W_I8) with f32 scales per
// group of QG consecutive elements along K. Each weight is read once. A workgroup is GPW groups of LPR lanes; a group
// computes CPL adjacent output columns for all MR rows of A. Its lanes read the columns' W rows in 16-byte vec4 loads
// (8 f16, 4 f32 or 16 int8 per load; adjacent lanes adjacent addresses), U loads per column issued before any is used
// (the loops over them copied out by #unroll: U·CPL loads in flight per lane), and each A slice is loaded once
// per step and held in registers across the CPL columns. The partial sums are reduced across the LPR lanes either by
// subgroupAdd (SUBGROUPS, subgroup size SG dividing LPR; more than one subgroup per group adds one workgroup-memory
// pass) or by a log-tree in workgroup memory. Variants (names, defaults per backend): src/kernels/gemv.ts; with
// LPR 32, GPW 8, CPL 1, U 1 and the tree it is the original kernel. Needs K, lda, ldw and the offsets multiples of the
// load (8 f16, 4 f32, 16 int8; int8 also QG a multiple of 16). Subgroups: assumes invocations are packed into
// subgroups by local_invocation_index (1-D workgroup), as every Vulkan/D3D12/Metal driver we know does.
// LNPRO: the A rows are not read from memory but made in a prologue, SAT's sandwich chain of a decode step (what
// layernorm.wgsl RESID+POST computes in a dispatch of its own): O = R + LN1(X), A = LN2(O), X the A binding [MR, K]
// (lda K, offset 0), R [MR, K], the four affine vectors packed in LP [4, K] (g1, b1, g2, b2; f16 with LP_F16).
// Every workgroup recomputes the rows into workgroup memory (MR·K f32: the launcher checks the limit); workgroup 0
// also writes O to LO. Row statistics as layernorm.wgsl: mean, then the centred (biased) variance, eps inside sqrt.
#if SUBGROUPS
enable subgroups;
#endif
#include "common.wgsl"

// The matmul kernels' common layout (src/kernels/_epilogue.ts layoutParams; one batch: the batch strides unused).
struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldw: u32, ldc: u32, a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32, alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32, cols_x: u32,
  ln_eps: f32, // LNPRO only
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
#if LNPRO
@group(0) @binding({{B_LR}}) var<storage, read> LR: array<vec4<f32>>;
#if LP_F16
@group(0) @binding({{B_LP}}) var<storage, read> LP: array<vec2<u32>>;
// The four affine values of vector `sec` (0 g1, 1 b1, 2 g2, 3 b2) at elements 4q..4q+3.
fn lnp(sec: u32, q: u32) -> vec4<f32> {
  let p = LP[sec * KV + q];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}
#else
@group(0) @binding({{B_LP}}) var<storage, read> LP: array<vec4<f32>>;
fn lnp(sec: u32, q: u32) -> vec4<f32> { return LP[sec * KV + q]; }
#endif
@group(0) @binding({{B_LO}}) var<storage, read_write> LO: array<vec4<f32>>;
#endif

const MR: u32 = {{MR}}u;
const LPR: u32 = {{LPR}}u;
const GPW: u32 = {{GPW}}u;
const CPL: u32 = {{CPL}}u;
const U: u32 = {{U}}u;
const WG: u32 = LPR * GPW;
const NV: u32 = MR * CPL;
const EPL: u32 = 4u * Q; // W elements per 16-byte load
// Trip counts for #unroll (the consts of the same names): every index into the register arrays wb, ab, acc, wv, sc,
// av, mine (and the LN prologue's x, r, v: U_PV) is an #unroll literal (naga's rolled loops would leave them in local
// memory on NVIDIA, shaders/README.md); the K loop and the loops over workgroup memory stay rolled.
#define U_NV MR*CPL
#define U_NR (MR*CPL+LPR-1)/LPR
#if W_F32
#define U_Q 1
#elif W_I8
#define U_Q 4
#else
#define U_Q 2
#endif


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

#if LNPRO
const KV: u32 = {{KV}}u; // K / 4: vec4 per row
const PV: u32 = (KV + WG - 1u) / WG; // vec4 of a row per invocation
#define U_PV (KV+LPR*GPW-1)/(LPR*GPW)
var<workgroup> xs: array<vec4<f32>, MR * KV>; // the A rows the prologue makes
#if SUBGROUPS
var<workgroup> lnr: array<f32, WG / SG>;
#else
var<workgroup> lnr: array<f32, WG>;
#endif

// The workgroup's sum of v (every invocation gets it; uniform control flow).
fn wg_sum(li: u32, v: f32) -> f32 {
#if SUBGROUPS
  let s = subgroupAdd(v);
  if (li % SG == 0u) { lnr[li / SG] = s; }
  workgroupBarrier();
  var t = 0.0;
  for (var i = 0u; i < WG / SG; i++) { t += lnr[i]; }
  workgroupBarrier();
  return t;
#else
  lnr[li] = v;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (li < stride) { lnr[li] += lnr[li + stride]; }
  }
  workgroupBarrier();
  let t = lnr[0];
  workgroupBarrier();
  return t;
#endif
}

// Mean and 1/sqrt(var + eps) of a row held as PV vec4 per invocation (entries past the row hold 0).
fn ln_stats(li: u32, v: array<vec4<f32>, PV>) -> vec2<f32> {
  var s = 0.0;
#unroll i 0 U_PV
  s += dot(v[i], vec4<f32>(1.0));
#endunroll
  let n = f32(4u * KV);
  let mean = wg_sum(li, s) / n;
  var q = 0.0;
#unroll i 0 U_PV
  let d = select(vec4<f32>(0.0), v[i] - vec4<f32>(mean), li + i * WG < KV);
  q += dot(d, d);
#endunroll
  return vec2<f32>(mean, 1.0 / sqrt(wg_sum(li, q) / n + P.ln_eps));
}

// xs = LN2(R + LN1(X)) for every row; workgroup 0 writes R + LN1(X) to LO.
fn ln_prologue(li: u32, first: bool) {
  for (var m = 0u; m < MR; m++) {
    var x: array<vec4<f32>, PV>;
    var r: array<vec4<f32>, PV>;
#unroll i 0 U_PV
    let q = min(li + i * WG, KV - 1u);
    x[i] = A[m * KV + q];
    r[i] = LR[m * KV + q];
#endunroll
#unroll i 0 U_PV
    x[i] = select(vec4<f32>(0.0), x[i], li + i * WG < KV);
#endunroll
    let s1 = ln_stats(li, x);
#unroll i 0 U_PV
    let q = min(li + i * WG, KV - 1u);
    let o = r[i] + ((x[i] - vec4<f32>(s1.x)) * s1.y * lnp(0u, q) + lnp(1u, q));
    x[i] = select(vec4<f32>(0.0), o, li + i * WG < KV);
    if (first && li + i * WG < KV) { LO[m * KV + q] = o; }
#endunroll
    let s2 = ln_stats(li, x);
#unroll i 0 U_PV
    let q = li + i * WG;
    if (q < KV) { xs[m * KV + q] = (x[i] - vec4<f32>(s2.x)) * s2.y * lnp(2u, q) + lnp(3u, q); }
#endunroll
  }
  workgroupBarrier();
}

// The A vec4 at index i (of the A binding, or of the prologue's rows: a_off 0, lda K).
fn a_at(i: u32) -> vec4<f32> { return xs[i]; }
#else
fn a_at(i: u32) -> vec4<f32> { return A[i]; }
#endif

@compute @workgroup_size({{LPR}} * {{GPW}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x % LPR;
  let grp = lid.x / LPR;
  let col0 = ((wg.x + wg.y * P.cols_x) * GPW + grp) * CPL;
#if LNPRO
  ln_prologue(lid.x, wg.x == 0u && wg.y == 0u);
#endif
  // W row starts in loads (columns past N re-read the last row; their results are not stored).
  var wb: array<u32, CPL>;
#unroll c 0 CPL
  wb[c] = (P.w_off + min(col0 + c, P.N - 1u) * P.ldw) / EPL;
#endunroll
  var ab: array<u32, MR>;
#unroll m 0 MR
  ab[m] = (P.a_off + m * P.lda) / 4u;
#endunroll
  var acc: array<f32, NV>; // zeros (WGSL initializes function variables)
  let steps = P.K / EPL;
  for (var s = lane; s < steps; s += U * LPR) {
    // Every W load of this step first (U per column), then the arithmetic. Loads past the row re-read its last
    // load and meet a zero A slice.
    var wv: array<WT, CPL * U>;
#if W_I8
    var sc: array<f32, CPL * U>;
#endif
#unroll u 0 U
    let su = min(s + u * LPR, steps - 1u);
#unroll c 0 CPL
    wv[c * U + u] = W[wb[c] + su];
#if W_I8
    sc[c * U + u] = WS[((wb[c] + su) * EPL) / QG];
#endif
#endunroll
#endunroll
#unroll u 0 U
    let ok = s + u * LPR < steps;
    let su = min(s + u * LPR, steps - 1u);
#unroll m 0 MR
    var av: array<vec4<f32>, Q>;
#unroll j 0 U_Q
    av[j] = select(vec4<f32>(0.0), a_at(ab[m] + su * Q + j), ok);
#endunroll
#unroll c 0 CPL
    var d = 0.0;
#unroll j 0 U_Q
    d += dot(av[j], wpart(wv[c * U + u], j));
#endunroll
#if W_I8
    d *= sc[c * U + u];
#endif
    acc[m * CPL + c] += d;
#endunroll
#endunroll
#endunroll
  }
#if SUBGROUPS
  // subgroupAdd per value. One subgroup per group of lanes: lane j % LPR keeps value j (row m = j / CPL, column
  // c = j % CPL) as its (j / LPR)-th, mine[j / LPR], and stores it; more: the subgroups' sums through workgroup memory.
  var mine: array<f32, {{U_NR}}>;
  let sgi = lane / SG;
#unroll j 0 U_NV
  let t = subgroupAdd(acc[j]);
  if (NSG == 1u) {
    if (lane == j % LPR) { mine[j / LPR] = t; }
  } else if (lane % SG == 0u) {
    part[(grp * NSG + sgi) * NV + j] = t;
  }
#endunroll
  if (NSG == 1u) {
#unroll r 0 U_NR
    let j = r * LPR + lane;
    let m = j / CPL;
    let n = col0 + j % CPL;
    if (j < NV && m < P.M && n < P.N) { store_c(0u, m, n, mine[r]); }
#endunroll
  } else {
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
#unroll c 0 CPL
#unroll m 0 MR
  red[m * WG + lid.x] = acc[m * CPL + c];
#endunroll
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
#endunroll
#endif
}
