// Token samplers over rows of logits, one workgroup per sampled row; only the chosen id is written.
//   cluster_mass → cluster_pick → cluster_token: CoglmStrategy (coglm_strategy.py) and the DSR strategy
//     (sr_pipeline/dsr_sampling.py): x = logits / temperature; p = softmax(x); per-cluster mass of p; top-k clusters
//     (descending mass, lower cluster id first on ties); draw one in proportion to its mass (or take rank
//     `force_rank`); tokens outside it are masked (-65504 in the original: exactly zero probability after the softmax);
//     token ~ softmax(x / temperature2) inside the cluster. Define DEBUG: also write the intermediates.
//   topk_radix ×4 → topk_draw: itersr_sampling.py — x = logits / temperature; keep x ≥ the k-th largest (ties kept);
//     token ~ softmax over the kept entries. On CPU adapters topk_serial (one invocation per row) replaces the four
//     radix passes: it writes the same threshold.
//   argmax_rows: greedy, first index of the maximum.
// Several small passes rather than one kernel: lavapipe (LLVM coroutines per barrier) takes minutes to compile a
// kernel with many barriers, and passes of ≤ 3 barriers compile in seconds.
// Draws come from Philox4x32-10 keyed by the seed, counter (row_base + r, step, stream, 0) — see src/sampling/rng.ts.
// Draw rule everywhere: with weights w over an ordered index list and u ∈ [0,1), pick the first index whose running
// sum exceeds u·Σw (the last positive one if rounding leaves none). Not torch's multinomial (its bits differ).
#include "common.wgsl"
#include "sampling_rng.wgsl"

struct Params {
  rows: u32,
  width: u32,
  nclusters: u32,
  k: u32,
  temperature: f32,
  temperature2: f32,
  seed0: u32,
  seed1: u32,
  step: u32,
  stream: u32,
  row_base: u32,
  row_offset: u32,
  group_size: u32,
  group_stride: u32,
  force_rank: u32,
  out_offset: u32,
  out_stride: u32,
  // WG, SQ and 256 again, as runtime values: serial loops bounded by constants get fully unrolled by
  // lavapipe's LLVM (minutes of compile time).
  wg: u32,
  sq: u32,
  nbins: u32,
  ps: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> L: array<f32>;

const WG: u32 = {{WG}}u;
// WG = SQ·SQ: reductions go through SQ partial sums (two barriers instead of log2(WG)).
const SQ: u32 = {{SQ}}u;
const NONE: u32 = 0xffffffffu;

var<workgroup> red_f: array<f32, {{WG}}>;
var<workgroup> red_g: array<f32, {{WG}}>;
var<workgroup> red_u: array<u32, {{WG}}>;
var<workgroup> sq_f: array<f32, {{SQ}}>;
var<workgroup> sq_g: array<f32, {{SQ}}>;
var<workgroup> sh_u: array<u32, 4>;
var<workgroup> sh_f: array<f32, 4>;

fn logits_row(r: u32) -> u32 {
  return P.row_offset + (r / P.group_size) * P.group_stride + r % P.group_size;
}

fn draws(r: u32) -> vec4<u32> {
  return philox4x32(vec2<u32>(P.seed0, P.seed1), vec4<u32>(P.row_base + r, P.step, P.stream, 0u));
}

// Online-softmax pair (running max m, Σ exp(x − m)) merged with another.
fn ms_merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  if (m == -3.402823e38) { return vec2<f32>(m, 0.0); }
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

fn ms_push(a: vec2<f32>, x: f32) -> vec2<f32> {
  if (x > a.x) { return vec2<f32>(x, a.y * exp(a.x - x) + 1.0); }
  return vec2<f32>(a.x, a.y + exp(x - a.x));
}

// Workgroup merge of every thread's (max, Σexp) pair; all threads get the result.
fn wg_ms(v: vec2<f32>, li: u32) -> vec2<f32> {
  red_f[li] = v.x;
  red_g[li] = v.y;
  workgroupBarrier();
  if (li < SQ) {
    var a = vec2<f32>(-3.402823e38, 0.0);
    for (var t = li * P.sq; t < li * P.sq + P.sq; t++) { a = ms_merge(a, vec2<f32>(red_f[t], red_g[t])); }
    sq_f[li] = a.x;
    sq_g[li] = a.y;
  }
  workgroupBarrier();
  var a = vec2<f32>(-3.402823e38, 0.0);
  for (var t = 0u; t < P.sq; t++) { a = ms_merge(a, vec2<f32>(sq_f[t], sq_g[t])); }
  return a;
}

fn wg_max(v: f32, li: u32) -> f32 {
  red_f[li] = v;
  workgroupBarrier();
  if (li < SQ) {
    var a = -3.402823e38;
    for (var t = li * P.sq; t < li * P.sq + P.sq; t++) { a = max(a, red_f[t]); }
    sq_f[li] = a;
  }
  workgroupBarrier();
  var a = -3.402823e38;
  for (var t = 0u; t < P.sq; t++) { a = max(a, sq_f[t]); }
  return a;
}

// Draw among the threads' chunks: thread t's chunk holds Σ exp(x − red_f[t]) = red_g[t] (set by the caller, then a
// barrier inside). Thread 0 rescales to the common max, draws with `u`, and publishes: sh_u[0] = the chunk's thread,
// sh_f[0] = the remaining goal inside that chunk (in exp(x − sh_f[2]) units), sh_f[2] = the max, sh_f[3] = the total.
fn pick_chunk(li: u32, u: f32) {
  workgroupBarrier();
  if (li == 0u) {
    var m = -3.402823e38;
    for (var t = 0u; t < P.wg; t++) { m = max(m, red_f[t]); }
    var tot = 0.0;
    for (var t = 0u; t < P.wg; t++) {
      let w = select(red_g[t] * exp(red_f[t] - m), 0.0, red_g[t] == 0.0);
      red_g[t] = w;
      tot += w;
    }
    let goal = u * tot;
    var cum = 0.0;
    var pick = NONE;
    var last = NONE;
    var rem = 0.0;
    for (var t = 0u; t < P.wg; t++) {
      let w = red_g[t];
      if (w > 0.0) {
        last = t;
        if (cum + w > goal) { pick = t; rem = goal - cum; break; }
      }
      cum += w;
    }
    if (pick == NONE) { pick = last; rem = 3.4e38; } // rounding: the last positive entry of the last positive chunk
    sh_u[0] = pick;
    sh_f[0] = rem;
    sh_f[2] = m;
    sh_f[3] = tot;
  }
  workgroupBarrier();
}

// Order-preserving map of f32 to u32 (larger float → larger key).
fn fkey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(~b, b | 0x80000000u, (b & 0x80000000u) == 0u);
}

#if CMASS
// Pass 1 of cluster sampling: per (row, cluster) the online-softmax pair (max, Σ exp(x − max)) of x = logits / T over
// the cluster's tokens. No barriers (lavapipe compiles barrier-heavy kernels very slowly).
// Cluster table CT: [offsets (C+1)] [tokens by cluster, ascending (width)] [label of each token (width)].
@group(0) @binding(2) var<storage, read> CT: array<u32>;
@group(0) @binding(3) var<storage, read_write> Pairs: array<vec2<f32>>;

@compute @workgroup_size({{WG}})
fn cluster_mass(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let C = P.nclusters;
  let base = logits_row(r) * P.width;
  let tok0 = C + 1u;
  for (var c = li; c < C; c += WG) {
    var a = vec2<f32>(-3.402823e38, 0.0);
    let e = CT[c + 1u];
    for (var q = CT[c]; q < e; q++) { a = ms_push(a, L[base + CT[tok0 + q]] / P.temperature); }
    Pairs[r * C + c] = a;
  }
}
#endif

#if CNORM
// Pass 2: cluster mass [rows, C] = per-cluster softmax mass, from the pairs of pass 1 (all in global memory: large
// workgroup arrays make lavapipe's compile take minutes, as naga zero-initialises them).
@group(0) @binding(2) var<storage, read> Pairs: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> Mass: array<f32>;

@compute @workgroup_size({{WG}})
fn cluster_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let C = P.nclusters;
  var a = vec2<f32>(-3.402823e38, 0.0);
  for (var c = li; c < C; c += WG) { a = ms_merge(a, Pairs[r * C + c]); }
  let t = wg_ms(a, li);
  for (var c = li; c < C; c += WG) {
    let p = Pairs[r * C + c];
    Mass[r * C + c] = select(p.y * exp(p.x - t.x) / t.y, 0.0, p.y == 0.0);
  }
}
#endif

#if CRANK
// Pass 3: the top k clusters by mass (descending, lower id first on ties): Top[r, rank] = (id, mass) for rank < k.
@group(0) @binding(2) var<storage, read> Mass: array<f32>;
@group(0) @binding(3) var<storage, read_write> Top: array<vec2<f32>>;
// The row's masses, read once: the O(C²) scan then reads workgroup memory instead of C dependent storage loads per
// cluster (latency-bound on GPUs: ~99 µs per dispatch in the H200 b8 profile). 512 = MAX_CLUSTERS, which
// clusterTable (src/kernels/sampling.ts) enforces.
var<workgroup> cmass: array<f32, 512>;

@compute @workgroup_size({{WG}})
fn cluster_rank(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; } // the same for the whole workgroup: the barrier below stays uniform
  let C = min(P.nclusters, 512u);
  let row = r * P.nclusters;
  for (var c = li; c < C; c += WG) { cmass[c] = Mass[row + c]; }
  workgroupBarrier();
  for (var c = li; c < C; c += WG) {
    let v = cmass[c];
    var rank = 0u;
    for (var d = 0u; d < C; d++) {
      let w = cmass[d];
      if (w > v || (w == v && d < c)) {
        rank++;
        if (rank >= P.k) { break; } // not in the top k: most clusters stop early
      }
    }
    if (rank < P.k) { Top[r * P.k + rank] = vec2<f32>(f32(c), v); }
  }
}
#endif

#if CRANK_SERIAL
// Pass 3 for CPU adapters (same result as cluster_rank): one invocation per row keeps its top k in private arrays,
// scanning the masses once in id order and inserting by strict comparison (so ties keep the lower id first).
// cluster_rank's O(C²) scan reads each mass through a same-address storage load, a per-lane loop on llvmpipe.
@group(0) @binding(2) var<storage, read> Mass: array<f32>;
@group(0) @binding(3) var<storage, read_write> Top: array<vec2<f32>>;

@compute @workgroup_size(64)
fn cluster_rank_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= P.rows) { return; }
  let C = P.nclusters;
  let K = P.k;
  let row = r * C;
  var ids: array<u32, {{KMAX}}>;
  var vals: array<f32, {{KMAX}}>;
  var n = 0u;
  for (var c = 0u; c < C; c++) {
    let v = Mass[row + c];
    if (n < K || v > vals[K - 1u]) {
      var j = min(n, K - 1u);
      loop {
        if (j == 0u) { break; }
        if (!(vals[j - 1u] < v)) { break; }
        vals[j] = vals[j - 1u];
        ids[j] = ids[j - 1u];
        j--;
      }
      vals[j] = v;
      ids[j] = c;
      n = min(n + 1u, K);
    }
  }
  for (var i = 0u; i < K; i++) { Top[r * K + i] = vec2<f32>(f32(ids[i]), vals[i]); }
}
#endif

#if CDRAW
// Pass 4 (one thread per row): draw one of the top k clusters in proportion to its mass, or take rank force_rank.
@group(0) @binding(2) var<storage, read> Top: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> Sel: array<u32>;
#include "sampling_cluster.wgsl"
#if DEBUG
// [rows, k] the top masses normalised to sum 1 (the distribution the cluster is drawn from)
@group(0) @binding(4) var<storage, read_write> Dbg: array<f32>;
#endif

@compute @workgroup_size(64)
fn cluster_draw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= P.rows) { return; }
  let K = P.k;
  let base = r * K;
  var tot = 0.0;
  for (var j = 0u; j < K; j++) { tot += Top[base + j].y; }
  Sel[r] = u32(Top[base + draw_cluster_rank(r, base, K, tot)].x);
#if DEBUG
  for (var j = 0u; j < K; j++) { Dbg[base + j] = Top[base + j].y / tot; }
#endif
}
#endif

#if CTOKEN
// Pass 3: token ~ softmax(x / T2) over the chosen cluster's tokens (the original masks the others with -65504:
// exactly zero probability after its softmax). Each thread takes a contiguous chunk of the ascending token list.
@group(0) @binding(2) var<storage, read> CT: array<u32>;
@group(0) @binding(3) var<storage, read> Sel: array<u32>;
@group(0) @binding(4) var<storage, read_write> Ids: array<i32>;
#include "sampling_token.wgsl"
#if DEBUG
// [rows, width] final probabilities
@group(0) @binding(5) var<storage, read_write> Dbg: array<f32>;
#endif

@compute @workgroup_size({{WG}})
fn cluster_token(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let W = P.width;
  let C = P.nclusters;
  let T = P.temperature;
  let T2 = P.temperature2;
  let base = logits_row(r) * W;
  let tok0 = C + 1u;
  let cl = Sel[r];
  draw_in_cluster(r, li, cl, base, tok0, T, T2);
#if DEBUG
  let m2 = sh_f[2];
#endif
#if DEBUG
  let S2 = sh_f[3];
  let lab0 = C + 1u + W;
  for (var j = li; j < W; j += WG) {
    var p = 0.0;
    if (CT[lab0 + j] == cl) { p = exp((L[base + j] / T) / T2 - m2) / S2; }
    Dbg[r * W + j] = p;
  }
#endif
}
#endif

#if CFUSED
// The five cluster passes in one dispatch, a workgroup per row (GPUs: a decode step's sampler is 1 dispatch instead
// of 5): cluster_mass → cluster_norm → cluster_rank → cluster_draw → cluster_token, the same arithmetic in the same
// order (so the same ids). Pairs: each invocation reads back only the pairs it wrote; the masses go through
// workgroup memory, the top k through Top (storageBarrier), the drawn cluster through workgroup memory.
@group(0) @binding(2) var<storage, read> CT: array<u32>;
@group(0) @binding(3) var<storage, read_write> Pairs: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> Top: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> Ids: array<i32>;
#include "sampling_token.wgsl"
#include "sampling_cluster.wgsl"
var<workgroup> fmass: array<f32, 512>; // MAX_CLUSTERS, as cluster_rank
var<workgroup> fsel: u32;

@compute @workgroup_size({{WG}})
fn cluster_fused(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; } // the same for the whole workgroup: the barriers below stay uniform
  let C = min(P.nclusters, 512u);
  let W = P.width;
  let T = P.temperature;
  let T2 = P.temperature2;
  let K = P.k;
  let base = logits_row(r) * W;
  let tok0 = P.nclusters + 1u;
  // cluster_mass
  for (var c = li; c < C; c += WG) {
    var a = vec2<f32>(-3.402823e38, 0.0);
    let e = CT[c + 1u];
    for (var q = CT[c]; q < e; q++) { a = ms_push(a, L[base + CT[tok0 + q]] / T); }
    Pairs[r * C + c] = a;
  }
  // cluster_norm
  var m = vec2<f32>(-3.402823e38, 0.0);
  for (var c = li; c < C; c += WG) { m = ms_merge(m, Pairs[r * C + c]); }
  let t = wg_ms(m, li);
  for (var c = li; c < C; c += WG) {
    let p = Pairs[r * C + c];
    fmass[c] = select(p.y * exp(p.x - t.x) / t.y, 0.0, p.y == 0.0);
  }
  workgroupBarrier();
  // cluster_rank
  for (var c = li; c < C; c += WG) {
    let v = fmass[c];
    var rank = 0u;
    for (var d = 0u; d < C; d++) {
      let w = fmass[d];
      if (w > v || (w == v && d < c)) {
        rank++;
        if (rank >= K) { break; }
      }
    }
    if (rank < K) { Top[r * K + rank] = vec2<f32>(f32(c), v); }
  }
  storageBarrier();
  // cluster_draw
  if (li == 0u) {
    let tb = r * K;
    var tot = 0.0;
    for (var j = 0u; j < K; j++) { tot += Top[tb + j].y; }
    fsel = u32(Top[tb + draw_cluster_rank(r, tb, K, tot)].x);
  }
  // cluster_token
  let cl = workgroupUniformLoad(&fsel);
  draw_in_cluster(r, li, cl, base, tok0, T, T2);
}
#endif

#if TRADIX
// Top-k pass ps (0..3) of the radix select of the k-th largest key of x = logits / T, 8 bits at a time from the top.
// State[r] = (prefix, remaining count); pass 0 starts from (0, k). One dispatch per pass.
@group(0) @binding(2) var<storage, read_write> State: array<vec2<u32>>;
var<workgroup> hist: array<atomic<u32>, 256>;

@compute @workgroup_size({{WG}})
fn topk_radix(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let W = P.width;
  let base = logits_row(r) * W;
  let ps = P.ps;
  let shift = 24u - 8u * ps;
  var st = vec2<u32>(0u, P.k);
  if (ps > 0u) { st = State[r]; }
  // remaining = NONE: an earlier pass found the threshold (its bin held exactly the entries still needed)
  if (li == 0u) { sh_u[1] = st.y; }
  if (workgroupUniformLoad(&sh_u[1]) == NONE) { return; }
  let mask = select(0u, 0xffffffffu << (shift + 8u), ps > 0u);
  for (var b = li; b < P.nbins; b += WG) { atomicStore(&hist[b], 0u); }
  workgroupBarrier();
  for (var j = li; j < W; j += WG) {
    let key = fkey(L[base + j] / P.temperature);
    if ((key & mask) == st.x) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
  }
  workgroupBarrier();
  if (li == 0u) {
    var cum = 0u;
    var bin = 0u;
    for (var b = i32(P.nbins) - 1i; b >= 0i; b--) {
      let h = atomicLoad(&hist[u32(b)]);
      if (cum + h >= st.y) { bin = u32(b); break; }
      cum += h;
    }
    let h = atomicLoad(&hist[bin]);
    State[r] = vec2<u32>(st.x | (bin << shift), select(st.y - cum, NONE, st.y - cum == h));
  }
}
#endif

#if TSERIAL
// Top-k threshold on CPU adapters, one invocation per row: the k largest keys of x = logits / T kept in descending
// order by insertion (after the first k, most entries fail one compare), then State[r] = (the k-th largest key, NONE):
// the threshold topk_radix's passes reach (the draw keeps fkey(x) ≥ it), from one read of the row instead of four
// passes with workgroup atomics (per-lane loops on lavapipe). k ≤ KMAX.
@group(0) @binding(2) var<storage, read_write> State: array<vec2<u32>>;

@compute @workgroup_size(64)
fn topk_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= P.rows) { return; }
  let W = P.width;
  let K = P.k;
  let base = logits_row(r) * W;
  var keys: array<u32, {{KMAX}}>;
  var n = 0u;
  for (var j = 0u; j < W; j++) {
    let key = fkey(L[base + j] / P.temperature);
    if (n < K || key > keys[K - 1u]) {
      var i = min(n, K - 1u);
      loop {
        if (i == 0u) { break; }
        if (keys[i - 1u] >= key) { break; }
        keys[i] = keys[i - 1u];
        i--;
      }
      keys[i] = key;
      n = min(n + 1u, K);
    }
  }
  State[r] = vec2<u32>(keys[K - 1u], NONE);
}
#endif

#if TDRAW
// Top-k draw: token ~ softmax over x ≥ the k-th largest (ties kept; the original sets the rest to -inf).
@group(0) @binding(2) var<storage, read> State: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> Ids: array<i32>;

@compute @workgroup_size({{WG}})
fn topk_draw(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let W = P.width;
  let T = P.temperature;
  let base = logits_row(r) * W;
  let thr = State[r].x;
  let chunk = (W + WG - 1u) / WG;
  let j0 = min(W, li * chunk);
  let j1 = min(W, j0 + chunk);
  var a = vec2<f32>(-3.402823e38, 0.0);
  for (var j = j0; j < j1; j++) {
    let x = L[base + j] / T;
    if (fkey(x) >= thr) { a = ms_push(a, x); }
  }
  red_f[li] = a.x;
  red_g[li] = a.y;
  pick_chunk(li, to_uniform(draws(r).y));
  let m = sh_f[2];
  if (li == sh_u[0]) {
    let rem = sh_f[0];
    var cum = 0.0;
    var tok = NONE;
    var last = NONE;
    for (var j = j0; j < j1; j++) {
      let x = L[base + j] / T;
      if (fkey(x) >= thr) {
        let w = exp(x - m);
        if (w > 0.0) {
          last = j;
          cum += w;
          if (cum > rem) { tok = j; break; }
        }
      }
    }
    if (tok == NONE) { tok = last; }
    Ids[P.out_offset + r * P.out_stride] = i32(tok);
  }
}
#endif

#if ARGMAX
@group(0) @binding(2) var<storage, read_write> Ids: array<i32>;

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

@compute @workgroup_size({{WG}})
fn argmax_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= P.rows) { return; }
  let W = P.width;
  let base = logits_row(r) * W;
  var bv = -3.402823e38;
  var bi = NONE;
  for (var j = li; j < W; j += WG) {
    let v = L[base + j];
    if (better(v, j, bv, bi)) { bv = v; bi = j; }
  }
  red_f[li] = bv;
  red_u[li] = bi;
  workgroupBarrier();
  if (li == 0u) {
    for (var t = 1u; t < P.wg; t++) {
      if (better(red_f[t], red_u[t], bv, bi)) { bv = red_f[t]; bi = red_u[t]; }
    }
    Ids[P.out_offset + r * P.out_stride] = i32(bi);
  }
}
#endif

#if RNG_TEST
@group(0) @binding(2) var<storage, read_write> Out: array<u32>;

// Out[4i..4i+3] = philox(seed, (row_base + i, step, stream, 0)) for i < rows (tests the RNG twin).
@compute @workgroup_size(64)
fn rng_test(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.rows) { return; }
  let w = draws(i);
  Out[4u * i] = w.x;
  Out[4u * i + 1u] = w.y;
  Out[4u * i + 2u] = w.z;
  Out[4u * i + 3u] = w.w;
}
#endif
