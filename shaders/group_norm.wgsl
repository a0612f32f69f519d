// GroupNorm over one NCHW f32 image (the groups' channels are contiguous): `stats` writes mean and 1/sqrt(var + eps)
// per group (two passes over the group: mean, then centred variance); `main` normalises, applies the affine and SiLU.
// Defines: W_F16 (gamma/beta packed f16), SILU (fused x·sigmoid(x) after the affine). Biased variance, as PyTorch.
#include "common.wgsl"

// A map above the max storage binding is normalised in pieces (src/kernels/group_norm.ts): `stats` over groups
// [g0, g0 + workgroups) bound from element x_off; `main` over elements [e0, e0 + ne) of the map, X and O bound from
// x_off and o_off (whole maps: all 0, ne = c·hw).
struct Params { c: u32, hw: u32, groups: u32, eps: f32, x_off: u32, o_off: u32, g0: u32, e0: u32, ne: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
#if STATS
@group(0) @binding(2) var<storage, read_write> S: array<f32>; // [groups, 2] = mean, rstd

var<workgroup> red: array<f32, 256>;

fn reduce_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// One workgroup per group.
@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = P.g0 + wg.x;
  let n = (P.c / P.groups) * P.hw;
  let base = P.x_off + wg.x * n;
  var s = 0.0;
  for (var i = li; i < n; i += 256u) { s += X[base + i]; }
  let mean = reduce_sum(li, s) / f32(n);
  var q = 0.0;
  for (var i = li; i < n; i += 256u) {
    let d = X[base + i] - mean;
    q = fma(d, d, q);
  }
  let v = reduce_sum(li, q) / f32(n);
  if (li == 0u) {
    S[2u * g] = mean;
    S[2u * g + 1u] = 1.0 / sqrt(v + P.eps);
  }
}

// A group above the max storage binding (src/kernels/group_norm.ts): its pieces, each bound from x_off with ne
// elements, one workgroup per dispatch. S is then the [pieces, 2] partial buffer, o_off pieces per group, g0 the
// group, e0 the piece's index: piece_sum writes its sum, piece_sq its centred sum of squares about the group mean
// (the group's partial sums / n), piece_final (X = the partial buffer, S = the stats) one thread per group.
@compute @workgroup_size(256)
fn piece_sum(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < P.ne; i += 256u) { s += X[P.x_off + i]; }
  let t = reduce_sum(li, s);
  if (li == 0u) { S[2u * P.e0] = t; }
}

@compute @workgroup_size(256)
fn piece_sq(@builtin(local_invocation_index) li: u32) {
  let n = (P.c / P.groups) * P.hw;
  var tot = 0.0;
  for (var j = 0u; j < P.o_off; j++) { tot += S[2u * (P.g0 * P.o_off + j)]; }
  let mean = tot / f32(n);
  var q = 0.0;
  for (var i = li; i < P.ne; i += 256u) {
    let d = X[P.x_off + i] - mean;
    q = fma(d, d, q);
  }
  let t = reduce_sum(li, q);
  if (li == 0u) { S[2u * P.e0 + 1u] = t; }
}

@compute @workgroup_size(64)
fn piece_final(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.x;
  if (g >= P.groups) { return; }
  let n = f32((P.c / P.groups) * P.hw);
  var tot = 0.0;
  var q = 0.0;
  for (var j = 0u; j < P.o_off; j++) {
    tot += X[2u * (g * P.o_off + j)];
    q += X[2u * (g * P.o_off + j) + 1u];
  }
  S[2u * g] = tot / n;
  S[2u * g + 1u] = 1.0 / sqrt(q / n + P.eps);
}
#else
@group(0) @binding(2) var<storage, read> S: array<f32>;
#if W_F16
@group(0) @binding(3) var<storage, read> G: array<u32>;
@group(0) @binding(4) var<storage, read> B: array<u32>;
fn gamma(c: u32) -> f32 { return f16_at(G[c >> 1u], c); }
fn beta(c: u32) -> f32 { return f16_at(B[c >> 1u], c); }
#else
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read> B: array<f32>;
fn gamma(c: u32) -> f32 { return G[c]; }
fn beta(c: u32) -> f32 { return B[c]; }
#endif
@group(0) @binding(5) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.ne) { return; }
  let c = (P.e0 + i) / P.hw;
  let g = c / (P.c / P.groups);
  var y = (X[P.x_off + i] - S[2u * g]) * S[2u * g + 1u] * gamma(c) + beta(c);
#if SILU
  y = silu(y);
#endif
  O[P.o_off + i] = y;
}
#endif
