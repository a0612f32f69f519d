// LayerNorm over the last dimension of f32 rows (PyTorch semantics: biased variance, eps inside the sqrt),
// one workgroup per row, two passes (mean, then centred variance). Defines: W_F16 (gamma/beta packed f16),
// RESID (Ro = R + LN1(X): SAT's sandwich "third/fourth" LN fused with the residual add), POST (with RESID:
// also Y = LN2(Ro), the next LayerNorm of the same row), REGS (with row_reduce.wgsl's WIDE: invocation li holds row
// elements li, li + WG, ... (PER = ceil(n / WG) of them) in registers, so X and R are read once and every pass
// after the loads works on registers; all loads are issued before the first reduction: a decode step's rows, where
// a GPU runs one workgroup per row and the row kernel's cost is load latency, not bandwidth).
#if SUBGROUPS
enable subgroups;
#endif
#include "common.wgsl"
#include "row_reduce.wgsl"

struct Params { n: u32, rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
#if W_F16
@group(0) @binding(2) var<storage, read> G1: array<u32>;
@group(0) @binding(3) var<storage, read> B1: array<u32>;
fn g1(c: u32) -> f32 { return f16_at(G1[c >> 1u], c); }
fn b1(c: u32) -> f32 { return f16_at(B1[c >> 1u], c); }
#else
@group(0) @binding(2) var<storage, read> G1: array<f32>;
@group(0) @binding(3) var<storage, read> B1: array<f32>;
fn g1(c: u32) -> f32 { return G1[c]; }
fn b1(c: u32) -> f32 { return B1[c]; }
#endif

#if RESID
@group(0) @binding(4) var<storage, read> R: array<f32>;
#if POST
#if W_F16
@group(0) @binding(5) var<storage, read> G2: array<u32>;
@group(0) @binding(6) var<storage, read> B2: array<u32>;
fn g2(c: u32) -> f32 { return f16_at(G2[c >> 1u], c); }
fn b2(c: u32) -> f32 { return f16_at(B2[c >> 1u], c); }
#else
@group(0) @binding(5) var<storage, read> G2: array<f32>;
@group(0) @binding(6) var<storage, read> B2: array<f32>;
fn g2(c: u32) -> f32 { return G2[c]; }
fn b2(c: u32) -> f32 { return B2[c]; }
#endif
@group(0) @binding(7) var<storage, read_write> O: array<f32>;
@group(0) @binding(8) var<storage, read_write> Y: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
#endif
#else
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
#endif

// Mean and 1/sqrt(var + eps) of the X row starting at `base`.
fn stats_x(li: u32, base: u32) -> vec2<f32> {
  var s = 0.0;
  for (var i = li; i < P.n; i += WG) { s += X[base + i]; }
  let mean = reduce_sum(li, s) / f32(P.n);
  var q = 0.0;
  for (var i = li; i < P.n; i += WG) {
    let d = X[base + i] - mean;
    q = fma(d, d, q);
  }
  let v = reduce_sum(li, q) / f32(P.n);
  return vec2<f32>(mean, 1.0 / sqrt(v + P.eps));
}

#if REGS
const PER: u32 = {{PER}}u;

// The sum over the row of the values an invocation holds (elements past n hold 0).
fn row_sum(li: u32, v: array<f32, PER>) -> f32 {
  var s = 0.0;
#unroll k 0 PER if UNROLL
  s += v[k];
#endunroll
  return reduce_sum(li, s);
}

// Mean and 1/sqrt(var + eps) of the held values (two-pass: the centred variance, as stats_x).
fn row_stats(li: u32, v: array<f32, PER>) -> vec2<f32> {
  let mean = row_sum(li, v) / f32(P.n);
  var q = 0.0;
#unroll k 0 PER if UNROLL
  let d = select(0.0, v[k] - mean, li + k * WG < P.n);
  q = fma(d, d, q);
#endunroll
  return vec2<f32>(mean, 1.0 / sqrt(reduce_sum(li, q) / f32(P.n) + P.eps));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= P.rows) { return; } // the same for the whole workgroup: the reductions' barriers stay uniform
  let base = row * P.n;
  let last = P.n - 1u;
  // Every load first (indices clamped to the row, values past it zeroed): PER independent loads per array in flight.
  var x: array<f32, PER>;
#if RESID
  var r: array<f32, PER>;
#endif
#unroll k 0 PER if UNROLL
  let i = min(li + k * WG, last);
  x[k] = X[base + i];
#if RESID
  r[k] = R[base + i];
#endif
#endunroll
#unroll k 0 PER if UNROLL
  x[k] = select(0.0, x[k], li + k * WG < P.n);
#endunroll
  let st = row_stats(li, x);
#if RESID
  var o: array<f32, PER>;
#unroll k 0 PER if UNROLL
  let i = li + k * WG;
  let v = r[k] + ((x[k] - st.x) * st.y * g1(min(i, last)) + b1(min(i, last)));
  o[k] = select(0.0, v, i < P.n);
  if (i < P.n) { O[base + i] = v; }
#endunroll
#if POST
  let st2 = row_stats(li, o);
#unroll k 0 PER if UNROLL
  let i = li + k * WG;
  if (i < P.n) { Y[base + i] = (o[k] - st2.x) * st2.y * g2(i) + b2(i); }
#endunroll
#endif
#else
#unroll k 0 PER if UNROLL
  let i = li + k * WG;
  if (i < P.n) { O[base + i] = (x[k] - st.x) * st.y * g1(i) + b1(i); }
#endunroll
#endif
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= P.rows) { return; }
  let base = row * P.n;
  let st = stats_x(li, base);
#if RESID
  for (var i = li; i < P.n; i += WG) {
    O[base + i] = R[base + i] + ((X[base + i] - st.x) * st.y * g1(i) + b1(i));
  }
#if POST
  // Each invocation re-reads only the elements it wrote: no barrier needed between the write and these reads.
  var s = 0.0;
  for (var i = li; i < P.n; i += WG) { s += O[base + i]; }
  let mean = reduce_sum(li, s) / f32(P.n);
  var q = 0.0;
  for (var i = li; i < P.n; i += WG) {
    let d = O[base + i] - mean;
    q = fma(d, d, q);
  }
  let rstd = 1.0 / sqrt(reduce_sum(li, q) / f32(P.n) + P.eps);
  for (var i = li; i < P.n; i += WG) {
    Y[base + i] = (O[base + i] - mean) * rstd * g2(i) + b2(i);
  }
#endif
#else
  for (var i = li; i < P.n; i += WG) {
    O[base + i] = (X[base + i] - st.x) * st.y * g1(i) + b1(i);
  }
#endif
}
#endif
