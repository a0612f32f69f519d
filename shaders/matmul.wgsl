// Strided batched matmul: C[b] = alpha · A[b] · op(W[b]) (+ bias) (+ R), op = transpose when TRANS_W.
// A: f32 [M,K] rows of stride lda; W: f32 or packed f16 (W_F16), [N,K] (TRANS_W, PyTorch Linear layout) or [K,N];
// batch b = workgroup z, with per-operand batch strides (0 shares W across the batch; head offsets work too).
// Defines: W_F16, TRANS_W, BIAS (binding after W), RESID (C = R + result, binding after bias), GELU epilogue.
#include "common.wgsl"

struct Params {
  M: u32, N: u32, K: u32,
  lda: u32, ldw: u32, ldc: u32,
  a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32,
  alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<u32>;
#else
@group(0) @binding(2) var<storage, read> W: array<f32>;
#endif
#if BIAS
#if W_F16
@group(0) @binding(3) var<storage, read> Bias: array<u32>;
#else
@group(0) @binding(3) var<storage, read> Bias: array<f32>;
#endif
#if RESID
@group(0) @binding(4) var<storage, read> R: array<f32>;
@group(0) @binding(5) var<storage, read_write> C: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
#endif
#else
#if RESID
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
#endif
#endif

const TM: u32 = 4u;
const TN: u32 = 4u;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Ws: array<f32, 1024>; // [BK][BN]

fn load_w(idx: u32) -> f32 {
#if W_F16
  return f16_at(W[idx >> 1u], idx);
#else
  return W[idx];
#endif
}

#if BIAS
fn load_bias(idx: u32) -> f32 {
#if W_F16
  return f16_at(Bias[idx >> 1u], idx);
#else
  return Bias[idx];
#endif
}
#endif

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let a_base = P.a_off + b * P.a_bs;
  let w_base = P.w_off + b * P.w_bs;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

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
      for (var i = 0u; i < TM; i++) { a[i] = As[kk * BM + lid.y * TM + i]; }
      for (var j = 0u; j < TN; j++) { w[j] = Ws[kk * BN + lid.x * TN + j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i * TN + j] = fma(a[i], w[j], acc[i * TN + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let m = row0 + lid.y * TM + i;
    if (m >= P.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let n = col0 + lid.x * TN + j;
      if (n >= P.N) { continue; }
      var v = acc[i * TN + j] * P.alpha;
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
  }
}
