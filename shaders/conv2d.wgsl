// 2-D convolution of one NCHW f32 image as an implicit GEMM: out[co, p] = Σ_k W[co, k] · im2col(x)[k, p] (+ bias) (+ R).
// k = ci·KS·KS + ky·KS + kx; p = oy·OW + ox; input pixel (oy·stride + ky − pad, ox·stride + kx − pad), zero outside
// [0, LH) × [0, LW) (so the encoder's right/bottom zero pad is just a larger LH/LW than the stored image needs).
// Defines: W_F16 (weights and bias packed f16), BIAS, RESID (out = R + conv, R laid out like out),
// UPSAMPLE (the input is read as its nearest ×2 upsampling: logical LH = 2H), CHANNELS_LAST (out is [p, co]),
// SMALL_COUT (one thread per output pixel computing all ≤ 4 output channels: for conv_out with 3 channels).
#include "common.wgsl"

struct Params {
  cin: u32, h: u32, w: u32,       // stored input [cin, h, w]
  lh: u32, lw: u32,               // logical input size (2h/2w when UPSAMPLE, else h/w)
  cout: u32, oh: u32, ow: u32,
  ks: u32, stride: u32, pad: u32,
  x_off: u32, out_off: u32,
  oh0: u32, oh1: u32,             // output rows [oh0, oh1) of this launch (row-split launches)
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
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
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
#endif
#else
#if RESID
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
#endif
#endif

fn load_w(idx: u32) -> f32 {
#if W_F16
  return f16_at(W[idx >> 1u], idx);
#else
  return W[idx];
#endif
}

fn load_bias(idx: u32) -> f32 {
#if BIAS
#if W_F16
  return f16_at(Bias[idx >> 1u], idx);
#else
  return Bias[idx];
#endif
#else
  return 0.0;
#endif
}

// Input value for reduction index k at output pixel p (p counted from row oh0), 0 outside the logical image.
fn load_x(k: u32, p: u32) -> f32 {
  let kk = P.ks * P.ks;
  let ci = k / kk;
  let r = k - ci * kk;
  let ky = r / P.ks;
  let kx = r - ky * P.ks;
  let oy = p / P.ow + P.oh0;
  let ox = p % P.ow;
  let iy = i32(oy * P.stride + ky) - i32(P.pad);
  let ix = i32(ox * P.stride + kx) - i32(P.pad);
  if (iy < 0 || ix < 0 || iy >= i32(P.lh) || ix >= i32(P.lw)) { return 0.0; }
#if UPSAMPLE
  let sy = u32(iy) >> 1u;
  let sx = u32(ix) >> 1u;
#else
  let sy = u32(iy);
  let sx = u32(ix);
#endif
  return X[P.x_off + (ci * P.h + sy) * P.w + sx];
}

fn store(co: u32, p: u32, acc: f32) {
  let np = P.oh * P.ow;
#if CHANNELS_LAST
  let idx = P.out_off + (p + P.oh0 * P.ow) * P.cout + co;
#else
  let idx = P.out_off + co * np + P.oh0 * P.ow + p;
#endif
  var v = acc + load_bias(co);
#if RESID
  v += R[idx];
#endif
  O[idx] = v;
}

#if SMALL_COUT
// One thread per output pixel, up to 4 output channels.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * 256u;
  let rows = P.oh1 - P.oh0;
  if (p >= rows * P.ow) { return; }
  let K = P.cin * P.ks * P.ks;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let x = load_x(k, p);
    for (var c = 0u; c < P.cout; c++) {
      acc[c] = fma(load_w(c * K + k), x, acc[c]);
    }
  }
  for (var c = 0u; c < P.cout; c++) { store(c, p, acc[c]); }
}
#else
const BM: u32 = 64u; // output channels per tile
const BN: u32 = 64u; // output pixels per tile
const BK: u32 = 16u;
var<workgroup> Ws: array<f32, 1024>; // [BK][BM]
var<workgroup> Xs: array<f32, 1024>; // [BK][BN]

// Grid: x = pixel tiles, y = channel tiles. Rows [oh0, oh1) of the output (P.oh is its full height).
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let K = P.cin * P.ks * P.ks;
  let NP = (P.oh1 - P.oh0) * P.ow;
  let co0 = wg.y * BM;
  let p0 = wg.x * BN;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < K; k0 += BK) {
    for (var r = 0u; r < 4u; r++) {
      let e = li + r * 256u;
      // weight tile element (m = e / BK, k = e % BK)
      let wm = e / BK;
      let wk = e % BK;
      var wv = 0.0;
      if (co0 + wm < P.cout && k0 + wk < K) { wv = load_w((co0 + wm) * K + k0 + wk); }
      Ws[wk * BM + wm] = wv;
      // input tile element (k = e / BN, n = e % BN)
      let xk = e / BN;
      let xn = e % BN;
      var xv = 0.0;
      if (p0 + xn < NP && k0 + xk < K) { xv = load_x(k0 + xk, p0 + xn); }
      Xs[xk * BN + xn] = xv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = Ws[kk * BM + lid.y * 4u + i]; }
      for (var j = 0u; j < 4u; j++) { b[j] = Xs[kk * BN + lid.x * 4u + j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let co = co0 + lid.y * 4u + i;
    if (co >= P.cout) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let p = p0 + lid.x * 4u + j;
      if (p >= NP) { continue; }
      store(co, p, acc[i * 4u + j]);
    }
  }
}
#endif
