// 2-D convolution of one NCHW f32 image as an implicit GEMM: out[co, p] = Σ_k W[co, k] · im2col(x)[k, p] (+ bias) (+ R).
// k = ci·KS·KS + ky·KS + kx; p = oy·OW + ox; input pixel (oy·stride + ky − pad, ox·stride + kx − pad), zero outside
// [0, LH) × [0, LW) (so the encoder's right/bottom zero pad is just a larger LH/LW than the stored image needs).
// Defines: W_F16 (weights and bias packed f16), BIAS, RESID (out = R + conv, R laid out like out),
// UPSAMPLE (the input is read as its nearest ×2 upsampling: logical LH = 2H), CHANNELS_LAST (out is [p, co]),
// SMALL_COUT (one thread per output pixel computing all ≤ 4 output channels: for conv_out with 3 channels);
// KS (kernel size) and STRIDE are substituted constants. DIRECT: register-tiled schedule for CPU adapters.
#include "common.wgsl"

// Row bands (src/kernels/conv2d.ts, maps above the max storage binding): X may hold only stored rows [r, r + h) of
// each channel and O/R only output rows [s, s + oh); x_off = −r·w and out_off = −s·ow (·cout channels-last) place
// absolute rows into them (u32 arithmetic wraps, so the negative offsets are exact).
struct Params {
  cin: u32, h: u32, w: u32,       // X is [cin, h, w]: h stored rows per channel
  lh: u32, lw: u32,               // logical input size (2·stored height/width when UPSAMPLE)
  cout: u32, oh: u32, ow: u32,    // O is [cout, oh, ow]: oh output rows per channel
  ks: u32, stride: u32, pad: u32,
  x_off: u32, out_off: u32,
  oh0: u32, oh1: u32,             // output rows [oh0, oh1) of this launch (absolute)
  w_off: u32, b_off: u32,         // first weight / bias element of this launch's output channels (channel blocks)
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

fn load_w(i: u32) -> f32 {
  let idx = P.w_off + i;
#if W_F16
  return f16_at(W[idx >> 1u], idx);
#else
  return W[idx];
#endif
}

fn load_bias(i: u32) -> f32 {
#if BIAS
  let idx = P.b_off + i;
#if W_F16
  return f16_at(Bias[idx >> 1u], idx);
#else
  return Bias[idx];
#endif
#else
  return 0.0;
#endif
}

const KS: u32 = {{KS}}u;
const STRIDE: u32 = {{STRIDE}}u;

// Top-left input coordinate of output pixel p's window (p counted from row oh0); KS/STRIDE are compile-time.
fn window(p: u32) -> vec2<i32> {
  let oy = p / P.ow + P.oh0;
  let ox = p - (p / P.ow) * P.ow;
  return vec2<i32>(i32(oy * STRIDE) - i32(P.pad), i32(ox * STRIDE) - i32(P.pad));
}

// Input value for reduction index k (= ci·KS² + ky·KS + kx) in the window at `o`, 0 outside the logical image.
fn load_x(k: u32, o: vec2<i32>) -> f32 {
  let ci = k / (KS * KS);
  let r = k - ci * (KS * KS);
  let ky = r / KS;
  let kx = r - ky * KS;
  let iy = o.x + i32(ky);
  let ix = o.y + i32(kx);
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

#if DIRECT
// CPU adapters (lavapipe): no workgroup memory or barriers. A workgroup of 64 invocations shares one block of TCO
// output channels (weight loads are uniform); each invocation owns a segment of 8 consecutive pixels of one output
// row, so one input row span (SPAN = 7·STRIDE + KS values) serves all KS taps of a kernel row.
const TCO: u32 = {{TCO}}u;
const SPAN: u32 = 7u * STRIDE + KS;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let K = P.cin * KS * KS;
  let segs = (P.ow + 7u) / 8u;
  let seg = wg.x * 64u + li;
  let rows = P.oh1 - P.oh0;
  let live = seg < rows * segs;
  let sr = min(seg, rows * segs - 1u);
  let oy = sr / segs + P.oh0;
  let ox0 = (sr % segs) * 8u;
  let co0 = wg.y * TCO;
  let iy0 = i32(oy * STRIDE) - i32(P.pad);
  let ix0 = i32(ox0 * STRIDE) - i32(P.pad);
  var acc: array<vec4<f32>, 2u * TCO>; // [channel][pixel half]
  for (var i = 0u; i < 2u * TCO; i++) { acc[i] = vec4<f32>(0.0); }
  for (var ci = 0u; ci < P.cin; ci++) {
    for (var ky = 0u; ky < KS; ky++) {
      let iy = iy0 + i32(ky);
      let rowok = iy >= 0 && iy < i32(P.lh);
#if UPSAMPLE
      let rbase = P.x_off + (ci * P.h + (u32(max(iy, 0)) >> 1u)) * P.w;
#else
      let rbase = P.x_off + (ci * P.h + u32(max(iy, 0))) * P.w;
#endif
      var xr: array<f32, SPAN>;
      for (var t = 0u; t < SPAN; t++) {
        let ix = ix0 + i32(t);
        var v = 0.0;
        if (rowok && ix >= 0 && ix < i32(P.lw)) {
#if UPSAMPLE
          v = X[rbase + (u32(ix) >> 1u)];
#else
          v = X[rbase + u32(ix)];
#endif
        }
        xr[t] = v;
      }
      for (var kx = 0u; kx < KS; kx++) {
        let xa = vec4<f32>(xr[kx], xr[STRIDE + kx], xr[2u * STRIDE + kx], xr[3u * STRIDE + kx]);
        let xb = vec4<f32>(xr[4u * STRIDE + kx], xr[5u * STRIDE + kx], xr[6u * STRIDE + kx], xr[7u * STRIDE + kx]);
        let k = (ci * KS + ky) * KS + kx;
        for (var i = 0u; i < TCO; i++) {
          let wv = vec4<f32>(load_w(min(co0 + i, P.cout - 1u) * K + k));
          acc[2u * i] = fma(wv, xa, acc[2u * i]);
          acc[2u * i + 1u] = fma(wv, xb, acc[2u * i + 1u]);
        }
      }
    }
  }
  if (!live) { return; }
  let pbase = (oy - P.oh0) * P.ow + ox0;
  for (var i = 0u; i < TCO; i++) {
    let co = co0 + i;
    if (co >= P.cout) { break; }
    for (var j = 0u; j < 8u; j++) {
      if (ox0 + j < P.ow) { store(co, pbase + j, acc[2u * i + j / 4u][j % 4u]); }
    }
  }
}
#elif SMALL_COUT
// One thread per output pixel, up to 4 output channels.
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = gid.x + gid.y * nwg.x * 256u;
  let rows = P.oh1 - P.oh0;
  if (p >= rows * P.ow) { return; }
  let K = P.cin * KS * KS;
  let o = window(p);
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let x = load_x(k, o);
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
  let K = P.cin * KS * KS;
  let NP = (P.oh1 - P.oh0) * P.ow;
  let co0 = wg.y * BM;
  let p0 = wg.x * BN;
  // Each thread loads the same tile column (pixel) of the input for every k: its window is computed once.
  let xn = li % BN;
  let xvalid = p0 + xn < NP;
  let o = window(p0 + xn);
  // The register tile acc, a, b is indexed by #unroll literals only (naga's rolled loops would spill it on wgpu).
  var acc: array<f32, 16>;
#unroll i 0 16
  acc[i] = 0.0;
#endunroll
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
      var xv = 0.0;
      if (xvalid && k0 + xk < K) { xv = load_x(k0 + xk, o); }
      Xs[xk * BN + xn] = xv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
#unroll i 0 4
      a[i] = Ws[kk * BM + lid.y * 4u + i];
#endunroll
#unroll j 0 4
      b[j] = Xs[kk * BN + lid.x * 4u + j];
#endunroll
#unroll i 0 4
#unroll j 0 4
      acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
#endunroll
#endunroll
    }
    workgroupBarrier();
  }
#unroll i 0 4
  let co = co0 + lid.y * 4u + i;
  if (co < P.cout) {
#unroll j 0 4
    let p = p0 + lid.x * 4u + j;
    if (p < NP) { store(co, p, acc[i * 4u + j]); }
#endunroll
  }
#endunroll
}
#endif
