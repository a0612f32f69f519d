// Row reductions over f32 rows of `n` values, one workgroup per row:
//   main    O = softmax(X·scale (+ A[row % a_rows])) — defines ADD (additive mask / log-weights rows), IN_PLACE
//           (O is X, dense rows: the VQ-VAE's spatial attention scores);
//   logprob O[2r] = logsumexp(X[r]), O[2r+1] = X[r, T[r]] − logsumexp (T: i32 targets; < 0 gives 0);
//   argmax  I[o_off + r·o_stride] = first index of the row maximum (torch.argmax tie rule).
// Rows start at x_off + r·ld. Not the attention softmax: attention.wgsl fuses its own.
#if SUBGROUPS
enable subgroups;
#endif
#include "common.wgsl"
#include "row_reduce.wgsl"

struct Params { n: u32, rows: u32, ld: u32, x_off: u32, a_rows: u32, scale: f32, o_off: u32, o_stride: u32 }
@group(0) @binding(0) var<uniform> P: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(1) var<storage, read> X: array<f32>;
#endif
#if ADD
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
#elif LOGPROB
@group(0) @binding(2) var<storage, read> T: array<i32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
#elif ARGMAX
@group(0) @binding(2) var<storage, read_write> I: array<i32>;
#elif !IN_PLACE
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
#endif

var<workgroup> redi: array<u32, 64>;

fn row_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

#if ARGMAX
@compute @workgroup_size(64)
fn argmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let r = row_index(wg, nwg);
  if (r >= P.rows) { return; }
  let base = P.x_off + r * P.ld;
  var best = NEG_INF;
  var bi = 0xffffffffu;
  for (var i = li; i < P.n; i += WG) {
    let v = X[base + i];
    if (v > best || bi == 0xffffffffu) { best = v; bi = i; }
  }
  red[li] = best;
  redi[li] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      let v = red[li + s];
      let j = redi[li + s];
      if (j != 0xffffffffu && (redi[li] == 0xffffffffu || v > red[li] || (v == red[li] && j < redi[li]))) {
        red[li] = v;
        redi[li] = j;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) { I[P.o_off + r * P.o_stride] = i32(redi[0]); }
}
#elif LOGPROB
@compute @workgroup_size(WG)
fn logprob(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let r = row_index(wg, nwg);
  if (r >= P.rows) { return; }
  let base = P.x_off + r * P.ld;
  var m = NEG_INF;
  for (var i = li; i < P.n; i += WG) { m = max(m, X[base + i]); }
  m = reduce_max(li, m);
  var s = 0.0;
  for (var i = li; i < P.n; i += WG) { s += exp(X[base + i] - m); }
  let lse = m + log(reduce_sum(li, s));
  if (li == 0u) {
    O[2u * r] = lse;
    let t = T[r];
    O[2u * r + 1u] = select(0.0, X[base + u32(max(t, 0))] - lse, t >= 0 && u32(t) < P.n);
  }
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let r = row_index(wg, nwg);
  if (r >= P.rows) { return; }
  let base = P.x_off + r * P.ld;
  let ob = r * P.n;
#if ADD
  let ab = (r % P.a_rows) * P.n;
#endif
  var m = NEG_INF;
  for (var i = li; i < P.n; i += WG) {
#if IN_PLACE
    var v = O[base + i] * P.scale;
#else
    var v = X[base + i] * P.scale;
#endif
#if ADD
    v += A[ab + i];
#endif
    O[ob + i] = v;
    m = max(m, v);
  }
  m = reduce_max(li, m);
  var s = 0.0;
  for (var i = li; i < P.n; i += WG) {
    let e = exp(O[ob + i] - m);
    O[ob + i] = e;
    s += e;
  }
  let inv = 1.0 / reduce_sum(li, s);
  for (var i = li; i < P.n; i += WG) { O[ob + i] *= inv; }
}
#endif
