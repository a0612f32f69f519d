// Strided batched matmul: C[b] = alpha · A[b] · op(W[b]) (+ bias) (GELU) (+ R), op = transpose when TRANS_W.
// A: f32 [M,K] rows of stride lda; W: f32, packed f16 (W_F16) or int8 with per-group f32 scales (W_I8, TRANS_W only,
// dequantised in registers), [N,K] (TRANS_W, PyTorch Linear layout) or [K,N];
// batch b = workgroup z, with per-operand batch strides (0 shares W across the batch; head offsets work too).
// Epilogue defines: BIAS (BIAS_F16: packed f16), RESID (C = R + result), GELU; binding numbers come from the launcher.
// Two schedules (see shaders/README.md for why and the measured numbers):
//   default: 64x64 output tile per 16x16 workgroup, 4x4 per invocation, A/W tiles staged in workgroup memory
//            (GPUs: threads of a workgroup share each loaded element).
//   DIRECT:  no workgroup memory, no barriers; each invocation owns a (4·MB)x(4·NB) register tile of mat4x4
//            accumulators and reads A and W straight from storage, 4 K-elements at a time (CPU adapters such as
//            lavapipe, where every per-invocation load costs the same wherever it comes from, so the only lever is
//            multiply-adds per load). MB2/MB4 give 8/16 rows, NB2/NB4 8/16 columns; WGX x WGY invocations.
//            VEC4 loads vec4 (f32) / vec2<u32> (f16) words: needs K, lda, ldw, offsets and batch strides
//            multiple of 4 (the launcher checks); without it, guarded scalar loads handle any size.
//            SPLITK (GEMV, M <= 8 on GPUs): lid.x splits K (adjacent invocations read adjacent K chunks),
//            lid.y picks the column block, partial tiles are summed in workgroup memory.
#include "common.wgsl"

struct Params {
  M: u32, N: u32, K: u32,
  lda: u32, ldw: u32, ldc: u32,
  a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32,
  alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32,
  m_base: u32, // UBO_A only: first output row of the A window
}
@group(0) @binding(0) var<uniform> P: Params;
// Bindings after W are numbered by the launcher (defines B_WS for the W_I8 scales, B_BIAS, B_R, B_C).
#if UBO_A
// A rows staged in a 64 KiB uniform window (dynamic offset per window of rows from P.m_base).
@group(0) @binding(1) var<uniform> Au: array<vec4<f32>, 4096>;
#elif VEC4
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> A: array<f32>;
#endif
#if W_I8
// int8 weights, four per word (element i in byte i & 3 of word i >> 2), dequantised in registers:
// w[i] = q[i] · WS[i / QG] (groups of QG consecutive elements along K).
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding({{B_WS}}) var<storage, read> WS: array<f32>;
const QG: u32 = {{QG}}u;
#elif VEC4
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
#endif
#else
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<u32>;
#else
@group(0) @binding(2) var<storage, read> W: array<f32>;
#endif
#endif
#include "matmul_epilogue.wgsl"

#if W_I8
// The four signed bytes of a word as floats (byte 0 first).
fn i8x4(p: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(p << 24u, p << 16u, p << 8u, p)) >> vec4<u32>(24u));
}

// One dequantised element at flat index i.
fn w_i8(i: u32) -> f32 {
  let q = bitcast<i32>(W[i >> 2u] << ((3u - (i & 3u)) * 8u)) >> 24u;
  return f32(q) * WS[i / QG];
}
#endif


#if UBO_A
// A rows staged in a 64 KiB uniform window (binding 1, dynamic offset per window of rows from P.m_base).
// lavapipe (Mesa 22) loads storage buffers with a per-lane loop of branches; uniform-buffer loads are a branchless
// gather and an address that is the same in every lane costs one load, so only W is read per lane: each
// invocation owns 16 rows x 4 columns, 8 invocations per workgroup along N, W read as vec4 along K (K % 4 == 0).
fn wv(i: u32) -> vec4<f32> {
#if W_I8
  return i8x4(W[i]) * WS[(4u * i) / QG];
#elif W_F16
  let p = W[i];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
#else
  return W[i];
#endif
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let K4 = P.K / 4u;
  let r0 = wg.y * 16u;
  let n0 = (wg.x * 8u + lid.x) * 4u;
  let last_n = P.N - 1u;
  let ldw4 = P.ldw / 4u;
  let wb = P.w_off / 4u;
  let w0 = wb + min(n0, last_n) * ldw4;
  let w1 = wb + min(n0 + 1u, last_n) * ldw4;
  let w2 = wb + min(n0 + 2u, last_n) * ldw4;
  let w3 = wb + min(n0 + 3u, last_n) * ldw4;
  var acc: array<vec4<f32>, 16>;
  for (var k4 = 0u; k4 < K4; k4++) {
    let wm = mat4x4<f32>(wv(w0 + k4), wv(w1 + k4), wv(w2 + k4), wv(w3 + k4));
    let ab = r0 * K4 + k4;
    acc[0u] += Au[ab + 0u * K4] * wm;
    acc[1u] += Au[ab + 1u * K4] * wm;
    acc[2u] += Au[ab + 2u * K4] * wm;
    acc[3u] += Au[ab + 3u * K4] * wm;
    acc[4u] += Au[ab + 4u * K4] * wm;
    acc[5u] += Au[ab + 5u * K4] * wm;
    acc[6u] += Au[ab + 6u * K4] * wm;
    acc[7u] += Au[ab + 7u * K4] * wm;
    acc[8u] += Au[ab + 8u * K4] * wm;
    acc[9u] += Au[ab + 9u * K4] * wm;
    acc[10u] += Au[ab + 10u * K4] * wm;
    acc[11u] += Au[ab + 11u * K4] * wm;
    acc[12u] += Au[ab + 12u * K4] * wm;
    acc[13u] += Au[ab + 13u * K4] * wm;
    acc[14u] += Au[ab + 14u * K4] * wm;
    acc[15u] += Au[ab + 15u * K4] * wm;
  }
  for (var r = 0u; r < 16u; r++) {
    let m = P.m_base + r0 + r;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n < P.N) { store_c(0u, m, n, acc[r][j]); }
    }
  }
}
#elif DIRECT
const WGX: u32 = {{WGX}}u;
const WGY: u32 = {{WGY}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

// 4 consecutive elements of A from element index i; `rem` = K - k (the scalar path zeroes k >= K).
fn a4(i: u32, rem: u32) -> vec4<f32> {
#if VEC4
  return A[i >> 2u];
#else
  return vec4<f32>(A[i], select(0.0, A[i + 1u], rem > 1u), select(0.0, A[i + 2u], rem > 2u),
                   select(0.0, A[i + 3u], rem > 3u));
#endif
}

#if !VEC4
fn w1(i: u32) -> f32 {
#if W_I8
  return w_i8(i);
#elif W_F16
  return f16_at(W[i >> 1u], i);
#else
  return W[i];
#endif
}
#endif

// 4 consecutive elements of W from element index i (along K when TRANS_W, along N otherwise).
fn w4(i: u32, rem: u32) -> vec4<f32> {
#if VEC4
#if W_I8
  return i8x4(W[i >> 2u]) * WS[i / QG];
#elif W_F16
  let p = W[i >> 2u];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
#else
  return W[i >> 2u];
#endif
#else
#if TRANS_W
  return vec4<f32>(w1(i), select(0.0, w1(i + 1u), rem > 1u), select(0.0, w1(i + 2u), rem > 2u),
                   select(0.0, w1(i + 3u), rem > 3u));
#else
  return vec4<f32>(w1(i), w1(i + 1u), w1(i + 2u), w1(i + 3u));
#endif
#endif
}

// Column r of the result = A row rows[r], elements k..k+3.
fn a_tile(rows: vec4<u32>, k: u32, rem: u32) -> mat4x4<f32> {
  return mat4x4<f32>(a4(rows.x + k, rem), a4(rows.y + k, rem), a4(rows.z + k, rem), a4(rows.w + k, rem));
}

// The 4x4 block of op(W) for K-elements k..k+3: w * a_tile gives column r = output row r (4 columns).
#if TRANS_W
fn w_tile(rows: vec4<u32>, k: u32, rem: u32) -> mat4x4<f32> {
  return transpose(mat4x4<f32>(w4(rows.x + k, rem), w4(rows.y + k, rem), w4(rows.z + k, rem), w4(rows.w + k, rem)));
}
#else
fn w_tile(col: u32, k: u32, rem: u32) -> mat4x4<f32> {
  let i = col + k * P.ldw;
#if VEC4
  return mat4x4<f32>(w4(i, rem), w4(i + P.ldw, rem), w4(i + 2u * P.ldw, rem), w4(i + 3u * P.ldw, rem));
#else
  let z = vec4<f32>(0.0);
  return mat4x4<f32>(w4(i, rem), select(z, w4(i + P.ldw, rem), rem > 1u),
                     select(z, w4(i + 2u * P.ldw, rem), rem > 2u), select(z, w4(i + 3u * P.ldw, rem), rem > 3u));
#endif
}
#endif

fn store_tile(b: u32, c: mat4x4<f32>, m0: u32, n0: u32) {
  for (var r = 0u; r < 4u; r++) {
    let m = m0 + r;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n < P.N) { store_c(b, m, n, c[r][j]); }
    }
  }
}

#if SPLITK
var<workgroup> red: array<mat4x4<f32>, {{WGX}} * {{WGY}}>;

// Sums tile c over the K-slices (lid.x) of this column block; the sum is valid in lid.x == 0.
fn reduce_tile(c: mat4x4<f32>, lid: vec3<u32>) -> mat4x4<f32> {
  let li = lid.y * WGX + lid.x;
  red[li] = c;
  workgroupBarrier();
  for (var s = WGX / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let sum = red[li];
  workgroupBarrier();
  return sum;
}
#endif

@compute @workgroup_size({{WGX}}, {{WGY}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wg.z;
#if SPLITK
  let n0 = (wg.x * WGY + lid.y) * TN;
  let m0 = wg.y * TM;
  let k_first = lid.x * 4u;
  let k_step = 4u * WGX;
#else
  let n0 = (wg.x * WGX + lid.x) * TN;
  let m0 = (wg.y * WGY + lid.y) * TM;
  let k_first = 0u;
  let k_step = 4u;
#endif
  let a_base = P.a_off + b * P.a_bs;
  let w_base = P.w_off + b * P.w_bs;
  let i4 = vec4<u32>(0u, 1u, 2u, 3u);
  // Rows past M / columns past N are clamped (computed, never stored) so the loop has no branches.
  let last_m = vec4<u32>(P.M - 1u);
  let ar0 = a_base + min(m0 + i4, last_m) * P.lda;
#if MB2
  let ar1 = a_base + min(m0 + 4u + i4, last_m) * P.lda;
#endif
#if MB4
  let ar2 = a_base + min(m0 + 8u + i4, last_m) * P.lda;
  let ar3 = a_base + min(m0 + 12u + i4, last_m) * P.lda;
#endif
#if TRANS_W
  let last_n = vec4<u32>(P.N - 1u);
  let wr0 = w_base + min(n0 + i4, last_n) * P.ldw;
#if NB2
  let wr1 = w_base + min(n0 + 4u + i4, last_n) * P.ldw;
#endif
#if NB4
  let wr2 = w_base + min(n0 + 8u + i4, last_n) * P.ldw;
  let wr3 = w_base + min(n0 + 12u + i4, last_n) * P.ldw;
#endif
#else
  // [K,N]: 4 adjacent columns per block; columns past N read neighbouring memory and are never stored.
  let wr0 = w_base + n0;
#if NB2
  let wr1 = w_base + n0 + 4u;
#endif
#if NB4
  let wr2 = w_base + n0 + 8u;
  let wr3 = w_base + n0 + 12u;
#endif
#endif
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c02 = mat4x4<f32>();
  var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  var c12 = mat4x4<f32>();
  var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>();
  var c21 = mat4x4<f32>();
  var c30 = mat4x4<f32>();
  var c31 = mat4x4<f32>();
  for (var k = k_first; k < P.K; k += k_step) {
    let rem = P.K - k;
    let w0 = w_tile(wr0, k, rem);
#if NB2
    let w1 = w_tile(wr1, k, rem);
#endif
#if NB4
    let w2 = w_tile(wr2, k, rem);
    let w3 = w_tile(wr3, k, rem);
#endif
    let a0 = a_tile(ar0, k, rem);
    c00 += w0 * a0;
#if NB2
    c01 += w1 * a0;
#endif
#if NB4
    c02 += w2 * a0;
    c03 += w3 * a0;
#endif
#if MB2
    let a1 = a_tile(ar1, k, rem);
    c10 += w0 * a1;
#if NB2
    c11 += w1 * a1;
#endif
#if NB4
    c12 += w2 * a1;
    c13 += w3 * a1;
#endif
#endif
#if MB4
    let a2 = a_tile(ar2, k, rem);
    c20 += w0 * a2;
    c21 += w1 * a2;
    let a3 = a_tile(ar3, k, rem);
    c30 += w0 * a3;
    c31 += w1 * a3;
#endif
  }
#if SPLITK
  c00 = reduce_tile(c00, lid);
#if NB2
  c01 = reduce_tile(c01, lid);
#endif
#if NB4
  c02 = reduce_tile(c02, lid);
  c03 = reduce_tile(c03, lid);
#endif
#if MB2
  c10 = reduce_tile(c10, lid);
#if NB2
  c11 = reduce_tile(c11, lid);
#endif
#if NB4
  c12 = reduce_tile(c12, lid);
  c13 = reduce_tile(c13, lid);
#endif
#endif
  if (lid.x != 0u) { return; }
#endif
  store_tile(b, c00, m0, n0);
#if NB2
  store_tile(b, c01, m0, n0 + 4u);
#endif
#if NB4
  store_tile(b, c02, m0, n0 + 8u);
  store_tile(b, c03, m0, n0 + 12u);
#endif
#if MB2
  store_tile(b, c10, m0 + 4u, n0);
#if NB2
  store_tile(b, c11, m0 + 4u, n0 + 4u);
#endif
#if NB4
  store_tile(b, c12, m0 + 4u, n0 + 8u);
  store_tile(b, c13, m0 + 4u, n0 + 12u);
#endif
#endif
#if MB4
  store_tile(b, c20, m0 + 8u, n0);
  store_tile(b, c21, m0 + 8u, n0 + 4u);
  store_tile(b, c30, m0 + 12u, n0);
  store_tile(b, c31, m0 + 12u, n0 + 4u);
#endif
}
#else
const TM: u32 = 4u;
const TN: u32 = 4u;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Ws: array<f32, 1024>; // [BK][BN]

fn load_w(idx: u32) -> f32 {
#if W_I8
  return w_i8(idx);
#elif W_F16
  return f16_at(W[idx >> 1u], idx);
#else
  return W[idx];
#endif
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let a_base = P.a_off + b * P.a_bs;
  let w_base = P.w_off + b * P.w_bs;
  // acc, a and w are indexed by #unroll literals only (naga's rolled loops would leave them in local memory on
  // NVIDIA, shaders/README.md; the #unroll bounds are TM and TN); the epilogue indexes a copy.
  var acc: array<f32, 16>; // zeros (WGSL initializes function variables)

  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    // 256 threads load a 64x16 tile of A and a 16x64 tile of W, 4 elements each.
    for (var r = 0u; r < 4u; r++) {
      let e = li + r * 256u;          // 0..1023
      // A tile: element (m = e / BK, k = e % BK) -> As[k][m]
      let am = e / BK;
      let ak = e % BK;
      let gm = row0 + am;
      let gk = k0 + ak;
      var av = 0.0;
      if (gm < P.M && gk < P.K) { av = A[a_base + gm * P.lda + gk]; }
      As[ak * BM + am] = av;
#if TRANS_W
      // W is [N,K]: element (n = e / BK, k = e % BK)
      let wn = e / BK;
      let wk = e % BK;
      let gn = col0 + wn;
      let gkw = k0 + wk;
      var wv = 0.0;
      if (gn < P.N && gkw < P.K) { wv = load_w(w_base + gn * P.ldw + gkw); }
      Ws[wk * BN + wn] = wv;
#else
      // W is [K,N]: element (k = e / BN, n = e % BN)
      let wk = e / BN;
      let wn = e % BN;
      let gn = col0 + wn;
      let gkw = k0 + wk;
      var wv = 0.0;
      if (gn < P.N && gkw < P.K) { wv = load_w(w_base + gkw * P.ldw + gn); }
      Ws[wk * BN + wn] = wv;
#endif
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var w: array<f32, 4>;
#unroll i 0 4
      a[i] = As[kk * BM + lid.y * TM + i];
#endunroll
#unroll j 0 4
      w[j] = Ws[kk * BN + lid.x * TN + j];
#endunroll
#unroll i 0 4
#unroll j 0 4
      acc[i * TN + j] = fma(a[i], w[j], acc[i * TN + j]);
#endunroll
#endunroll
    }
    workgroupBarrier();
  }

  var c = acc;
  for (var i = 0u; i < TM; i++) {
    let m = row0 + lid.y * TM + i;
    if (m >= P.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let n = col0 + lid.x * TN + j;
      if (n >= P.N) { continue; }
      store_c(b, m, n, c[i * TN + j]);
    }
  }
}
#endif
