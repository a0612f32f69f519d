// 2-D local attention of Sleepychord/Image-Local-Attention and CogView2's SR models (src/kernels/local_attention.ts).
// Entry points: `similar` (f_similar), `weighting` (f_weighting) on NCHW grids, and `fused` (one SR attention row per
// invocation: window scores + low-res window or text scores, one online softmax, weighted values; no score matrix).
// Variants by define: SIMILAR | WEIGHTING | FUSED; with FUSED: LOWRES | TEXT (+ HAS_MASK, HAS_LOGW), D = head_dim.

const OUT_OF_GRID: f32 = -10000.0;

#if SIMILAR
// q [B,C,H,W], k [Bk,C,h,w] → s [B,H,W,P]; one invocation per score.
struct Params { B: u32, C: u32, H: u32, W: u32, Bk: u32, h: u32, w: u32, kH: u32, kW: u32, P: u32, n: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= P.n) { return; }
  let p = idx % P.P;
  let pix = idx / P.P;             // (b, i, j)
  let j = pix % P.W;
  let i = (pix / P.W) % P.H;
  let b = pix / (P.W * P.H);
  let kb = b * P.Bk / P.B;
  let y = i32(i / (P.H / P.h)) - i32(P.kH >> 1u) + i32(p / P.kW);
  let x = i32(j / (P.W / P.w)) - i32(P.kW >> 1u) + i32(p % P.kW);
  var s = OUT_OF_GRID;
  if (y >= 0 && y < i32(P.h) && x >= 0 && x < i32(P.w)) {
    s = 0.0;
    let hw = P.H * P.W;
    let khw = P.h * P.w;
    var qi = b * P.C * hw + i * P.W + j;
    var ki = kb * P.C * khw + u32(y) * P.w + u32(x);
    for (var c = 0u; c < P.C; c++) {
      s += Q[qi] * K[ki];
      qi += hw;
      ki += khw;
    }
  }
  S[idx] = s;
}
#endif

#if WEIGHTING
// v [Bv,C,h,w], probs [B,H,W,P] → out [B,C,H,W]; one invocation per output element.
struct Params { B: u32, C: u32, H: u32, W: u32, Bv: u32, h: u32, w: u32, kH: u32, kW: u32, P: u32, n: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> V: array<f32>;
@group(0) @binding(2) var<storage, read> W8: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= P.n) { return; }
  let j = idx % P.W;
  let i = (idx / P.W) % P.H;
  let c = (idx / (P.W * P.H)) % P.C;
  let b = idx / (P.W * P.H * P.C);
  let vb = b * P.Bv / P.B;
  let cy = i32(i / (P.H / P.h)) - i32(P.kH >> 1u);
  let cx = i32(j / (P.W / P.w)) - i32(P.kW >> 1u);
  let vbase = (vb * P.C + c) * P.h * P.w;
  let wbase = ((b * P.H + i) * P.W + j) * P.P;
  var s = 0.0;
  for (var p = 0u; p < P.P; p++) {
    let y = cy + i32(p / P.kW);
    let x = cx + i32(p % P.kW);
    if (y >= 0 && y < i32(P.h) && x >= 0 && x < i32(P.w)) {
      s += V[vbase + u32(y) * P.w + u32(x)] * W8[wbase + p];
    }
  }
  O[idx] = s;
}
#endif

#if FUSED
// Rows views: element (batch b, token t, channel c) at off + b·bat + t·row + c (c = head·D + channel in head).
struct Params {
  batch: u32, heads: u32, side: u32, ksz: u32,
  q_off: u32, q_row: u32, q_bat: u32,
  k_off: u32, k_row: u32, k_bat: u32,
  v_off: u32, v_row: u32, v_bat: u32,
  o_off: u32, o_row: u32, o_bat: u32,
  k2_off: u32, k2_row: u32, k2_bat: u32,
  v2_off: u32, v2_row: u32, v2_bat: u32,
  side2: u32,   // LOWRES: low-res grid side; TEXT: number of text keys
  ksz2: u32,    // LOWRES: low-res window side
  m_bat: u32,   // TEXT: mask / log-weight batch stride (0 = broadcast)
  scale: f32,
  add_scalar: f32,
}
const D: u32 = {{D}}u;
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
#if LOWRES
@group(0) @binding(4) var<storage, read> K2: array<f32>;
@group(0) @binding(5) var<storage, read> V2: array<f32>;
#elif TEXT
@group(0) @binding(4) var<storage, read> K2: array<f32>;
@group(0) @binding(5) var<storage, read> V2: array<f32>;
#if HAS_MASK
@group(0) @binding({{B_MASK}}) var<storage, read> MASK: array<f32>;
#endif
#if HAS_LOGW
@group(0) @binding({{B_LOGW}}) var<storage, read> LOGW: array<f32>;
#endif
#endif
@group(0) @binding({{B_OUT}}) var<storage, read_write> O: array<f32>;

var<private> q: array<f32, D>;
var<private> acc: array<f32, D>;
var<private> mx: f32;
var<private> den: f32;

// Online softmax: folds score s in; returns the weight its value row gets (the accumulator already rescaled).
fn fold(s: f32) -> f32 {
  if (s > mx) {
    let r = exp(mx - s);
    den *= r;
    for (var c = 0u; c < D; c++) { acc[c] *= r; }
    mx = s;
  }
  let e = exp(s - mx);
  den += e;
  return e;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let S = P.side * P.side;
  if (idx >= P.batch * P.heads * S) { return; }
  let t = idx % S;
  let hd = (idx / S) % P.heads;
  let b = idx / (S * P.heads);
  let i = t / P.side;
  let j = t % P.side;
  let ho = hd * D;
  let qb = P.q_off + b * P.q_bat + t * P.q_row + ho;
  for (var c = 0u; c < D; c++) {
    q[c] = Q[qb + c] * P.scale;
    acc[c] = 0.0;
  }
  mx = -3.402823e38;
  den = 0.0;

#if LOWRES
  // scores_1_to_0: ksz2 × ksz2 window on the low-res grid centred on cell (i/a, j/a), plus add_scalar.
  {
    let L = P.side2;
    let a = P.side / L;
    let cy = i32(i / a) - i32(P.ksz2 >> 1u);
    let cx = i32(j / a) - i32(P.ksz2 >> 1u);
    let kb = P.k2_off + b * P.k2_bat + ho;
    let vb = P.v2_off + b * P.v2_bat + ho;
    for (var p = 0u; p < P.ksz2 * P.ksz2; p++) {
      let y = cy + i32(p / P.ksz2);
      let x = cx + i32(p % P.ksz2);
      if (y >= 0 && y < i32(L) && x >= 0 && x < i32(L)) {
        let cell = u32(y) * L + u32(x);
        let ki = kb + cell * P.k2_row;
        var s = 0.0;
        for (var c = 0u; c < D; c++) { s += q[c] * K2[ki + c]; }
        let e = fold(s + P.add_scalar);
        let vi = vb + cell * P.v2_row;
        for (var c = 0u; c < D; c++) { acc[c] += e * V2[vi + c]; }
      } else {
        _ = fold(OUT_OF_GRID + P.add_scalar);
      }
    }
  }
#elif TEXT
  // scores_1_to_0: every text key, (s + log_w)·mask − 10000·(1 − mask).
  {
    let kb = P.k2_off + b * P.k2_bat + ho;
    let vb = P.v2_off + b * P.v2_bat + ho;
    for (var u = 0u; u < P.side2; u++) {
      let ki = kb + u * P.k2_row;
      var s = 0.0;
      for (var c = 0u; c < D; c++) { s += q[c] * K2[ki + c]; }
#if HAS_LOGW
      s += LOGW[b * P.m_bat + u];
#endif
#if HAS_MASK
      let m = MASK[b * P.m_bat + u];
      s = s * m - 10000.0 * (1.0 - m);
#endif
      let e = fold(s);
      let vi = vb + u * P.v2_row;
      for (var c = 0u; c < D; c++) { acc[c] += e * V2[vi + c]; }
    }
  }
#endif

  // scores_1_to_1: (2·ksz−1) × ksz window on the high-res grid centred on (i, j).
  {
    let kW = P.ksz;
    let kH = 2u * P.ksz - 1u;
    let cy = i32(i) - i32(kH >> 1u);
    let cx = i32(j) - i32(kW >> 1u);
    let kb = P.k_off + b * P.k_bat + ho;
    let vb = P.v_off + b * P.v_bat + ho;
    for (var p = 0u; p < kH * kW; p++) {
      let y = cy + i32(p / kW);
      let x = cx + i32(p % kW);
      if (y >= 0 && y < i32(P.side) && x >= 0 && x < i32(P.side)) {
        let cell = u32(y) * P.side + u32(x);
        let ki = kb + cell * P.k_row;
        var s = 0.0;
        for (var c = 0u; c < D; c++) { s += q[c] * K[ki + c]; }
        let e = fold(s);
        let vi = vb + cell * P.v_row;
        for (var c = 0u; c < D; c++) { acc[c] += e * V[vi + c]; }
      } else {
        _ = fold(OUT_OF_GRID);
      }
    }
  }

  let inv = 1.0 / den;
  let ob = P.o_off + b * P.o_bat + t * P.o_row + ho;
  for (var c = 0u; c < D; c++) { O[ob + c] = acc[c] * inv; }
}
#endif
