// SwissArmyTransformer's standard_attention for one (query row, head, batch) per workgroup, with the CogLM mask
// family given by two numbers: row i sees keys j < max(ctx_cols, i + causal_off + 1) (a prefix; rows that see
// everything use ctx_cols = keys). Scores are (q·scale)·k + (logw on keys j < logw_cols), as SAT scales q before
// the product and adds log_attention_weights before masking; masked keys (score −10000 in SAT, exp → 0) are skipped.
// Define VEC4: keys read as vec4 (head size, key offsets and strides multiples of 4). Define VIS: row i sees the first VIS[i] keys instead (any per-row prefix mask, e.g. completion's).
// Softmax is online over chunks of CHUNK keys kept in workgroup memory. Q/K/V/O are rows of heads·d values at
// off + b·bs + row·ld + head·d. Entry kv_store (define KV_STORE) copies K and V rows of a QKV buffer into caches.
// Define KV_NEW (one query row, KV_ACCESS read_write): each workgroup first writes its head's slice of the step's new
// K/V row (f32 in the Q buffer at kn_off / vn_off + b·q_bs + head·d) into the caches at position t_new, as kv_store
// does (f16 rounding included), then attends over the caches: kv_store and attention in one dispatch.
// Define KV_F16: K and V (and kv_store's caches) are packed f16, two per word (offsets, strides and widths even);
// scores, softmax and the weighted sum accumulate in f32.
// Define SPLIT (one query row; flash-decoding): workgroup (s, head, batch) of a grid of P.splits × heads × batch
// attends over its own key range [⌊s·kv/S⌋, ⌊(s+1)·kv/S⌋) of the row's kv visible keys and writes its partial
// softmax state — unnormalised acc[d], running max m, sum l — to PART[((b·heads + h)·S + s)·(d + 2) + ..] (acc at
// 0..d−1, m at d, l at d+1) instead of O; entry `combine` (define COMBINE, a second dispatch of heads × batch
// workgroups) merges the S partials in f32: M = max m_s, O = Σ exp(m_s − M)·acc_s / Σ exp(m_s − M)·l_s. An empty
// range (kv < S) leaves m = NEG_INF, l = 0, acc = 0, weight 0. With KV_NEW only the last split (s = S − 1, never empty,
// the only one whose range can hold key t_new = keys − 1) stores the new row, so it is written once and read only by
// the workgroup that wrote it, after its storageBarrier; no other split reads row t_new.
#include "common.wgsl"

#if KV_STORE
struct Params {
  rows: u32, width: u32, batch: u32, t0: u32, ld_src: u32, src_bs: u32, k_src_off: u32, v_src_off: u32,
  cache_bs: u32, ldc: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> S: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read_write> Kc: array<u32>;
@group(0) @binding(3) var<storage, read_write> Vc: array<u32>;
#else
@group(0) @binding(2) var<storage, read_write> Kc: array<f32>;
@group(0) @binding(3) var<storage, read_write> Vc: array<f32>;
#endif

// cache[b, t0 + r, c] = S[off + b·src_bs + r·ld_src + c] for K and V (src_bs = 0 broadcasts one prompt).
@compute @workgroup_size(256)
fn kv_store(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
#if KV_F16
  // One invocation per pair of elements (one f16 word); P.width counts pairs here.
  if (i >= P.batch * P.rows * P.width) { return; }
  let c = 2u * (i % P.width);
  let br = i / P.width;
  let r = br % P.rows;
  let b = br / P.rows;
  let src = b * P.src_bs + r * P.ld_src + c;
  let dst = (b * P.cache_bs + (P.t0 + r) * P.ldc + c) / 2u;
  Kc[dst] = pack2x16float(vec2<f32>(S[P.k_src_off + src], S[P.k_src_off + src + 1u]));
  Vc[dst] = pack2x16float(vec2<f32>(S[P.v_src_off + src], S[P.v_src_off + src + 1u]));
#else
  if (i >= P.batch * P.rows * P.width) { return; }
  let c = i % P.width;
  let br = i / P.width;
  let r = br % P.rows;
  let b = br / P.rows;
  let src = b * P.src_bs + r * P.ld_src + c;
  let dst = b * P.cache_bs + (P.t0 + r) * P.ldc + c;
  Kc[dst] = S[P.k_src_off + src];
  Vc[dst] = S[P.v_src_off + src];
#endif
}
#elif COMBINE
struct Params { d: u32, heads: u32, splits: u32, o_off: u32, ldo: u32, o_bs: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> PART: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

// One workgroup per (head, batch): invocation c owns output dims c, c + 64, ...; every invocation reads the S
// maxima and sums (a few dozen floats, shared through the cache).
var<workgroup> dims: vec2<u32>;

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  // d and S through workgroup memory, as in main: lavapipe (Mesa 22.3) inlines uniform loop bounds and recompiles the
  // shader per dispatch (~30 ms per combine dispatch with its shader cache off)
  if (li == 0u) { dims = vec2<u32>(P.d, P.splits); }
  let sz = workgroupUniformLoad(&dims);
  let d = sz.x;
  let ns = sz.y;
  let h = wg.x;
  let b = wg.y;
  let pb = (b * P.heads + h) * ns * (d + 2u);
  var mx = NEG_INF;
  for (var s = 0u; s < ns; s++) { mx = max(mx, PART[pb + s * (d + 2u) + d]); }
  var l = 0.0;
  for (var s = 0u; s < ns; s++) {
    let ps = pb + s * (d + 2u);
    l = fma(exp(PART[ps + d] - mx), PART[ps + d + 1u], l);
  }
  let inv = 1.0 / l;
  let ob = P.o_off + b * P.o_bs + h * d;
  for (var c = li; c < d; c += 64u) {
    var a = 0.0;
    for (var s = 0u; s < ns; s++) {
      let ps = pb + s * (d + 2u);
      a = fma(exp(PART[ps + d] - mx), PART[ps + c], a);
    }
    O[ob + c] = a * inv;
  }
}
#else
struct Params {
  d: u32, rows: u32, keys: u32, ctx_cols: u32, causal_off: u32, scale: f32, logw_cols: u32, logw: f32,
  q_off: u32, ldq: u32, q_bs: u32, k_off: u32, ldk: u32, k_bs: u32,
  v_off: u32, ldv: u32, v_bs: u32, o_off: u32, ldo: u32, o_bs: u32,
  t_new: u32, kn_off: u32, vn_off: u32, splits: u32, heads: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
#if KV_F16
#if VEC4
@group(0) @binding(2) var<storage, {{KV_ACCESS}}> K: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, {{KV_ACCESS}}> K: array<u32>;
#endif
@group(0) @binding(3) var<storage, {{KV_ACCESS}}> V: array<u32>;
fn v1(i: u32) -> f32 { return f16_at(V[i >> 1u], i); }
#if VEC4
fn k4(i: u32) -> vec4<f32> { let p = K[i]; return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)); }
#else
fn k1(i: u32) -> f32 { return f16_at(K[i >> 1u], i); }
#endif
#else
#if VEC4
@group(0) @binding(2) var<storage, {{KV_ACCESS}}> K: array<vec4<f32>>;
fn k4(i: u32) -> vec4<f32> { return K[i]; }
#else
@group(0) @binding(2) var<storage, {{KV_ACCESS}}> K: array<f32>;
fn k1(i: u32) -> f32 { return K[i]; }
#endif
@group(0) @binding(3) var<storage, {{KV_ACCESS}}> V: array<f32>;
fn v1(i: u32) -> f32 { return V[i]; }
#endif
#if VIS
@group(0) @binding(4) var<storage, read> VISIBLE: array<i32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
#endif
// SPLIT: O is the partials buffer PART (see the header).

const WG: u32 = {{WG}}u;
const CHUNK: u32 = {{CHUNK}}u;
#define MAXD 256
const MAXD: u32 = {{MAXD}}u;
var<workgroup> qs: array<f32, MAXD>;
var<workgroup> qs4: array<vec4<f32>, 64>;
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG>;
var<workgroup> bounds: vec3<u32>; // (d, k_lo, k_hi)

fn reduce(li: u32, v: f32, is_max: bool) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = select(red[li] + red[li + s], max(red[li], red[li + s]), is_max); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
#if SPLIT
  let row = 0u;
  let split = wg.x;
#else
  let row = wg.x;
#endif
  let h = wg.y;
  let b = wg.z;
  // The loop bounds (head size, this workgroup's key range) through workgroup memory rather than straight from the
  // uniform: lavapipe (Mesa 22.3, Deno's wgpu here) inlines uniform loop bounds and recompiles the shader on each
  // dispatch when it does (head size 64: ~20 ms per dispatch from its shader cache, ~300 ms without), which made the
  // published-width decode attention ~15x slower on wgpu than on Dawn (Mesa 25).
  if (li == 0u) {
#if VIS
    let kv = min(P.keys, u32(max(VISIBLE[row], 1)));
#else
    let kv = min(P.keys, max(P.ctx_cols, row + P.causal_off + 1u));
#endif
#if SPLIT
    // This split's keys [k_lo, k_hi): the last one is never empty (kv >= 1) and ends at kv.
    // (the host keeps splits <= 256 and keys below 2^24, so s·kv fits u32)
    bounds = vec3<u32>(P.d, split * kv / P.splits, (split + 1u) * kv / P.splits);
#else
    bounds = vec3<u32>(P.d, 0u, kv);
#endif
  }
  let bd = workgroupUniformLoad(&bounds);
  let d = bd.x;
  let k_lo = bd.y;
  let k_hi = bd.z;
  let qb = P.q_off + b * P.q_bs + row * P.ldq + h * d;
#if KV_NEW
#if SPLIT
  if (split == P.splits - 1u) // workgroup-uniform; the storageBarrier below stays in uniform control flow
#endif
  {
    // This (head, batch)'s slice of the new row: no other workgroup reads or writes it.
    let kn = P.kn_off + b * P.q_bs + h * d;
    let vn = P.vn_off + b * P.q_bs + h * d;
    let kd = P.k_off + b * P.k_bs + P.t_new * P.ldk + h * d;
    let vd = P.v_off + b * P.v_bs + P.t_new * P.ldv + h * d;
#if KV_F16
#if VEC4
    for (var c = li; c < d / 4u; c += WG) {
      let s = kn + 4u * c;
      K[kd / 4u + c] = vec2<u32>(pack2x16float(vec2<f32>(Q[s], Q[s + 1u])), pack2x16float(vec2<f32>(Q[s + 2u], Q[s + 3u])));
    }
#else
    for (var c = li; c < d / 2u; c += WG) { K[kd / 2u + c] = pack2x16float(vec2<f32>(Q[kn + 2u * c], Q[kn + 2u * c + 1u])); }
#endif
    for (var c = li; c < d / 2u; c += WG) { V[vd / 2u + c] = pack2x16float(vec2<f32>(Q[vn + 2u * c], Q[vn + 2u * c + 1u])); }
#else
#if VEC4
    for (var c = li; c < d / 4u; c += WG) {
      let s = kn + 4u * c;
      K[kd / 4u + c] = vec4<f32>(Q[s], Q[s + 1u], Q[s + 2u], Q[s + 3u]);
    }
#else
    for (var c = li; c < d; c += WG) { K[kd + c] = Q[kn + c]; }
#endif
    for (var c = li; c < d; c += WG) { V[vd + c] = Q[vn + c]; }
#endif
  }
  storageBarrier(); // the row's values visible to every invocation of this workgroup before the keys are read
#endif
  for (var c = li; c < d; c += WG) { qs[c] = Q[qb + c] * P.scale; }
  workgroupBarrier();
#if VEC4
  for (var c = li; c < d / 4u; c += WG) { qs4[c] = vec4<f32>(qs[4u * c], qs[4u * c + 1u], qs[4u * c + 2u], qs[4u * c + 3u]); }
  workgroupBarrier();
#endif
  let kb = P.k_off + b * P.k_bs + h * d;
  let vb = P.v_off + b * P.v_bs + h * d;
  // Output ownership: with d dividing WG, ng groups of d invocations split the keys (partials summed at the end);
  // otherwise invocation li owns dims li, li + WG, ... (at most MAXD / WG of them). WG and CHUNK are defines.
  let ng = select(1u, WG / d, d <= WG && WG % d == 0u);
  let g = li / select(WG, d, ng > 1u);
  var acc: array<f32, MAXD / WG>; // zero-initialised
  var m = NEG_INF;
  var l = 0.0;
  for (var t0 = k_lo; t0 < k_hi; t0 += CHUNK) {
    let n = min(CHUNK, k_hi - t0);
    var lm = NEG_INF;
    for (var t = li; t < n; t += WG) {
      let kr = kb + (t0 + t) * P.ldk;
      var s = 0.0;
#if VEC4
      // Dot in vec4 steps, then the four lanes summed (d, offsets and strides are multiples of 4).
      var s4 = vec4<f32>(0.0);
      let kr4 = kr / 4u;
      for (var c = 0u; c < d / 4u; c++) { s4 = fma(qs4[c], k4(kr4 + c), s4); }
      s = (s4.x + s4.y) + (s4.z + s4.w);
#else
      for (var c = 0u; c < d; c++) { s = fma(qs[c], k1(kr + c), s); }
#endif
      s += select(0.0, P.logw, t0 + t < P.logw_cols);
      sc[t] = s;
      lm = max(lm, s);
    }
    let mn = max(m, reduce(li, lm, true));
    let corr = exp(m - mn);
    var ls = 0.0;
    for (var t = li; t < n; t += WG) {
      let e = exp(sc[t] - mn);
      sc[t] = e;
      ls += e;
    }
    l = l * corr + reduce(li, ls, false);
    m = mn;
    if (ng > 1u) {
      let c = li % d;
      var a = acc[0] * corr;
      for (var t = g; t < n; t += ng) { a = fma(sc[t], v1(vb + (t0 + t) * P.ldv + c), a); }
      acc[0] = a;
    } else {
#unroll r 0 MAXD/WG if UNROLL
      let c = li + r * WG;
      if (c < d) {
        var a = acc[r] * corr;
        for (var t = 0u; t < n; t++) { a = fma(sc[t], v1(vb + (t0 + t) * P.ldv + c), a); }
        acc[r] = a;
      }
#endunroll
    }
    workgroupBarrier();
  }
#if SPLIT
  // The partial state, unnormalised: acc at ob.., m and l after it.
  let ob = ((b * P.heads + h) * P.splits + split) * (d + 2u);
  let inv = 1.0;
  if (li == 0u) {
    O[ob + d] = m;
    O[ob + d + 1u] = l;
  }
#else
  let ob = P.o_off + b * P.o_bs + row * P.ldo + h * d;
  let inv = 1.0 / l;
#endif
  if (ng > 1u) {
    sc[li] = acc[0];
    workgroupBarrier();
    if (li < d) {
      var a = 0.0;
      for (var j = 0u; j < ng; j++) { a += sc[li + j * d]; }
      O[ob + li] = a * inv;
    }
  } else {
#unroll r 0 MAXD/WG if UNROLL
    let c = li + r * WG;
    if (c < d) { O[ob + c] = acc[r] * inv; }
#endunroll
  }
}
#endif
