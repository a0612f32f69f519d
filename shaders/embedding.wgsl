// Embedding gather: O[r, c] = W[ids[id_off + r] − row0, c] (+ Pt[pos(r), c]), one invocation per output element.
// Rows come in batches of rpb: row r takes id id_off + ⌊r/rpb⌋·id_bs + r mod rpb and position pos_off + r mod rpb.
// W is one row block of a (possibly row-chunked) table: rows with ids outside [row0, row0 + w_rows) take no word
// row (ACCUM: left untouched, so later blocks add theirs). Defines: W_F16 / P_F16 (packed f16 tables),
// POS (position ids from a tensor), POS_CONST (every row at position pos0), ACCUM (O += word row).
#include "common.wgsl"

struct Params { rows: u32, cols: u32, row0: u32, w_rows: u32, id_off: u32, pos0: u32, pos_off: u32, rpb: u32, id_bs: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<u32>;
fn w_at(i: u32) -> f32 { return f16_at(W[i >> 1u], i); }
#else
@group(0) @binding(2) var<storage, read> W: array<f32>;
fn w_at(i: u32) -> f32 { return W[i]; }
#endif
#if POS
@group(0) @binding(3) var<storage, read> pos_ids: array<i32>;
#if P_F16
@group(0) @binding(4) var<storage, read> Pt: array<u32>;
fn p_at(i: u32) -> f32 { return f16_at(Pt[i >> 1u], i); }
#else
@group(0) @binding(4) var<storage, read> Pt: array<f32>;
fn p_at(i: u32) -> f32 { return Pt[i]; }
#endif
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
fn pos_of(r: u32) -> u32 { return u32(pos_ids[P.pos_off + r % P.rpb]); }
#elif POS_CONST
#if P_F16
@group(0) @binding(3) var<storage, read> Pt: array<u32>;
fn p_at(i: u32) -> f32 { return f16_at(Pt[i >> 1u], i); }
#else
@group(0) @binding(3) var<storage, read> Pt: array<f32>;
fn p_at(i: u32) -> f32 { return Pt[i]; }
#endif
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
fn pos_of(r: u32) -> u32 { return P.pos0; }
#else
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.rows * P.cols) { return; }
  let r = i / P.cols;
  let c = i - r * P.cols;
  let local = ids[P.id_off + (r / P.rpb) * P.id_bs + r % P.rpb] - i32(P.row0);
  let hit = local >= 0 && u32(local) < P.w_rows;
#if ACCUM
  if (hit) { O[i] += w_at(u32(local) * P.cols + c); }
#else
  var v = 0.0;
  if (hit) { v = w_at(u32(local) * P.cols + c); }
#if POS
  v += p_at(pos_of(r) * P.cols + c);
#elif POS_CONST
  v += p_at(pos_of(r) * P.cols + c);
#endif
  O[i] = v;
#endif
}
