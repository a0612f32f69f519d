// Attention without a score matrix (FlashAttention-style tiles, online softmax), for GPUs and long sequences: a
// workgroup of BR invocations takes BR query rows of one (head, batch); each tile of BC key/value rows is loaded
// into workgroup memory once for all BR rows; each invocation keeps its query row, its running max / sum and its
// output row (D4 vec4s) in registers and rescales them once per tile. Scores: (q·scale)·k + log weights + ADD[i, j]
// on visible keys (prefix mask j < max(ctx_cols, i + causal_off + 1), or j < VISIBLE[i] with VIS); masked keys
// contribute nothing. Same semantics as attention.wgsl; layout as its HeadsView (off, ld, batch stride).
#include "common.wgsl"

struct Params {
  d: u32, rows: u32, keys: u32, ctx_cols: u32, causal_off: u32, scale: f32, lw_cols: u32, lw_value: f32,
  q_off: u32, q_ld: u32, q_bs: u32, k_off: u32, k_ld: u32, k_bs: u32, v_off: u32, v_ld: u32, v_bs: u32,
  o_off: u32, o_ld: u32, o_bs: u32, add_off: u32, add_ld: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
#if ADD
@group(0) @binding(4) var<storage, read> ADDM: array<f32>;
#if VIS
@group(0) @binding(5) var<storage, read> VISIBLE: array<i32>;
@group(0) @binding(6) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
#endif
#else
#if VIS
@group(0) @binding(4) var<storage, read> VISIBLE: array<i32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
#endif
#endif

const BR: u32 = {{BR}}u;
const BC: u32 = {{BC}}u;
const D4: u32 = {{D4}}u;
const MASKED: f32 = -1.0e38;

var<workgroup> Ks: array<vec4<f32>, BC * D4>;
var<workgroup> Vs: array<vec4<f32>, BC * D4>;

fn q4(base: u32, c4: u32) -> vec4<f32> {
  let c = 4u * c4;
  var r = vec4<f32>(0.0);
  if (c < P.d) { r.x = Q[base + c]; }
  if (c + 1u < P.d) { r.y = Q[base + c + 1u]; }
  if (c + 2u < P.d) { r.z = Q[base + c + 2u]; }
  if (c + 3u < P.d) { r.w = Q[base + c + 3u]; }
  return r;
}
fn k4(base: u32, c4: u32) -> vec4<f32> {
  let c = 4u * c4;
  var r = vec4<f32>(0.0);
  if (c < P.d) { r.x = K[base + c]; }
  if (c + 1u < P.d) { r.y = K[base + c + 1u]; }
  if (c + 2u < P.d) { r.z = K[base + c + 2u]; }
  if (c + 3u < P.d) { r.w = K[base + c + 3u]; }
  return r;
}
fn v4(base: u32, c4: u32) -> vec4<f32> {
  let c = 4u * c4;
  var r = vec4<f32>(0.0);
  if (c < P.d) { r.x = V[base + c]; }
  if (c + 1u < P.d) { r.y = V[base + c + 1u]; }
  if (c + 2u < P.d) { r.z = V[base + c + 2u]; }
  if (c + 3u < P.d) { r.w = V[base + c + 3u]; }
  return r;
}

@compute @workgroup_size({{BR}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wg.y;
  let b = wg.z;
  let i = wg.x * BR + lid.x;
  let valid = i < P.rows;
  var q: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>; // zeros (WGSL initializes function variables)
  var m = MASKED;
  var l = 0.0;
  var vis_end = P.keys;
  if (valid) {
    let qb = P.q_off + b * P.q_bs + i * P.q_ld + h * P.d;
    // Loaded through a copy in rolled loops (as the store below): q itself is only ever indexed by literals, and q4's
    // guarded loads are compiled once, not D4 times (lavapipe's LLVM time).
    var qt: array<vec4<f32>, D4>;
    for (var c = 0u; c < D4; c++) { qt[c] = q4(qb, c) * P.scale; }
    q = qt;
#if VIS
    vis_end = min(P.keys, u32(max(VISIBLE[i], 0)));
#else
    vis_end = min(P.keys, max(P.ctx_cols, i + P.causal_off + 1u));
#endif
  }
  // Keys any row of the block can see (uniform: from the params and the block index only).
#if VIS
  let kend = P.keys;
#else
  let last = min(P.rows, wg.x * BR + BR) - 1u;
  let kend = min(P.keys, max(P.ctx_cols, last + P.causal_off + 1u));
#endif
  for (var j0 = 0u; j0 < kend; j0 += BC) {
    workgroupBarrier();
    for (var t = lid.x; t < BC * D4; t += BR) {
      let j = j0 + t / D4;
      let c = t % D4;
      if (j < P.keys) {
        Ks[t] = k4(P.k_off + b * P.k_bs + j * P.k_ld + h * P.d, c);
        Vs[t] = v4(P.v_off + b * P.v_bs + j * P.v_ld + h * P.d, c);
      } else {
        Ks[t] = vec4<f32>(0.0);
        Vs[t] = vec4<f32>(0.0);
      }
    }
    workgroupBarrier();
    if (valid && j0 < vis_end) {
      // s: this tile's scores, indexed by the rolled key loop (local memory on NVIDIA with wgpu: BC floats written
      // and read once per tile); q and acc, read per key, are indexed by #unroll literals only where UNROLL (choices.ts).
      // The key loops stay rolled: '#unroll jj 0 BC if UNROLL' on both (BC x D4 copies of each multiply-add) made
      // lavapipe (wgpu, cache off) compile the UNROLL pipelines in 10-22 s at d = 64 (0.9 s) and 72-77 s at d = 128
      // (2.1 s), for 16 stores and 32 loads of s per tile against 2 x 16 x D4 vec4 multiply-adds.
      var s: array<f32, BC>;
      var tmax = MASKED;
      for (var jj = 0u; jj < BC; jj++) {
        let j = j0 + jj;
        var x = MASKED;
        if (j < vis_end) {
          var dot4 = vec4<f32>(0.0);
#unroll c 0 D4 if UNROLL
          dot4 += q[c] * Ks[jj * D4 + c];
#endunroll
          x = dot4.x + dot4.y + dot4.z + dot4.w;
          if (j < P.lw_cols) { x += P.lw_value; }
#if ADD
          x += ADDM[P.add_off + i * P.add_ld + j];
#endif
          tmax = max(tmax, x);
        }
        s[jj] = x;
      }
      let mn = max(m, tmax);
      let corr = exp(m - mn);
      l *= corr;
#unroll c 0 D4 if UNROLL
      acc[c] *= corr;
#endunroll
      for (var jj = 0u; jj < BC; jj++) {
        if (s[jj] > MASKED) {
          let p = exp(s[jj] - mn);
          l += p;
#unroll c 0 D4 if UNROLL
          acc[c] += p * Vs[jj * D4 + c];
#endunroll
        }
      }
      m = mn;
    }
  }
  if (valid) {
    let ob = P.o_off + b * P.o_bs + i * P.o_ld + h * P.d;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    var o = acc;
    for (var c = 0u; c < D4; c++) {
      let r = o[c] * inv;
      let e = 4u * c;
      if (e < P.d) { O[ob + e] = r.x; }
      if (e + 1u < P.d) { O[ob + e + 1u] = r.y; }
      if (e + 2u < P.d) { O[ob + e + 2u] = r.z; }
      if (e + 3u < P.d) { O[ob + e + 3u] = r.w; }
    }
  }
}
