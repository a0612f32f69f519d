// Vector-quantiser kernels of icetk's VectorQuantizeEMA. SEARCH: for each row z of Z [np, D] (channels last), the code
// minimising |z|² − 2 z·e + |e|² over the codebook E [n, D] (first index on exact ties), plus the runner-up and the gap;
// else (lookup): Out [D, np] (NCHW) = E[codes[p]]ᵀ. Define W_F16: E packed f16. Not a k-means or EMA update.
#include "common.wgsl"

// eoff: E's first element in its binding (a row block of a codebook above the max storage binding); lookup: codes
// outside [c0, c0 + n) are left to the other blocks' dispatches.
struct Params { np: u32, n: u32, d: u32, c0: u32, eoff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
#if W_F16
@group(0) @binding(1) var<storage, read> E: array<u32>;
fn e_at(i: u32) -> f32 { let j = i + P.eoff; return f16_at(E[j >> 1u], j); }
#else
@group(0) @binding(1) var<storage, read> E: array<f32>;
fn e_at(i: u32) -> f32 { return E[i + P.eoff]; }
#endif

#if SEARCH
@group(0) @binding(2) var<storage, read> Z: array<f32>;
// Out [np, 4] words: best index, second index, bitcast(best distance), bitcast(second distance − best distance).
@group(0) @binding(3) var<storage, read_write> Out: array<u32>;

const MAX_D: u32 = 1024u;
var<workgroup> zs: array<f32, MAX_D>;
var<workgroup> r_d1: array<f32, 256>;
var<workgroup> r_i1: array<u32, 256>;
var<workgroup> r_d2: array<f32, 256>;
var<workgroup> r_i2: array<u32, 256>;

fn before(d: f32, i: u32, e: f32, j: u32) -> bool {
  return d < e || (d == e && i < j);
}

// One workgroup per row of Z; 256 threads stride over the codebook, then merge their top-2 lists.
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= P.np) { return; } // uniform per workgroup
  for (var k = li; k < P.d; k += 256u) { zs[k] = Z[row * P.d + k]; }
  workgroupBarrier();
  var zz = 0.0;
  for (var k = 0u; k < P.d; k++) { zz = fma(zs[k], zs[k], zz); }
  var d1 = 3.4e38;
  var i1 = 0xffffffffu;
  var d2 = 3.4e38;
  var i2 = 0xffffffffu;
  for (var c = li; c < P.n; c += 256u) {
    var dot = 0.0;
    var ee = 0.0;
    let base = c * P.d;
    for (var k = 0u; k < P.d; k++) {
      let e = e_at(base + k);
      dot = fma(zs[k], e, dot);
      ee = fma(e, e, ee);
    }
    let dist = (zz - 2.0 * dot) + ee;
    if (before(dist, c, d1, i1)) {
      d2 = d1; i2 = i1; d1 = dist; i1 = c;
    } else if (before(dist, c, d2, i2)) {
      d2 = dist; i2 = c;
    }
  }
  r_d1[li] = d1; r_i1[li] = i1; r_d2[li] = d2; r_i2[li] = i2;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) {
      let ad1 = r_d1[li]; let ai1 = r_i1[li]; let ad2 = r_d2[li]; let ai2 = r_i2[li];
      let bd1 = r_d1[li + s]; let bi1 = r_i1[li + s]; let bd2 = r_d2[li + s]; let bi2 = r_i2[li + s];
      if (before(ad1, ai1, bd1, bi1)) {
        r_d1[li] = ad1; r_i1[li] = ai1;
        if (before(bd1, bi1, ad2, ai2)) { r_d2[li] = bd1; r_i2[li] = bi1; } else { r_d2[li] = ad2; r_i2[li] = ai2; }
      } else {
        r_d1[li] = bd1; r_i1[li] = bi1;
        if (before(ad1, ai1, bd2, bi2)) { r_d2[li] = ad1; r_i2[li] = ai1; } else { r_d2[li] = bd2; r_i2[li] = bi2; }
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    Out[4u * row] = r_i1[0];
    Out[4u * row + 1u] = r_i2[0];
    Out[4u * row + 2u] = bitcast<u32>(r_d1[0]);
    Out[4u * row + 3u] = bitcast<u32>(r_d2[0] - r_d1[0]);
  }
}
#else
@group(0) @binding(2) var<storage, read> Codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.np * P.d) { return; }
  let k = i / P.np;
  let p = i - k * P.np;
  let c = Codes[p];
  if (c < P.c0 || c - P.c0 >= P.n) { return; }
  Out[i] = e_at((c - P.c0) * P.d + k);
}
#endif
