// 2-D local attention of Sleepychord/Image-Local-Attention and CogView2's SR models (src/kernels/local_attention.ts).
// Entry points: `similar` (f_similar), `weighting` (f_weighting) on NCHW grids, and `fused` (one SR attention row per
// invocation: window scores + low-res window or text scores, one softmax, weighted values; no score matrix), and
// `pack` (the uniform-window layout of the fused UWIN variant).
// Variants by define: SIMILAR | WEIGHTING | FUSED | PACK; with FUSED: LOWRES | TEXT (+ HAS_MASK, HAS_LOGW), VEC4,
// DV = head_dim / width, MAXP, UWIN (+ NQ2..NQ4).

const OUT_OF_GRID: f32 = -10000.0;

// Key cell of entry (0, 0) of the kH×kW window of query (i, j) of an H×W grid over an h×w key grid: the window is
// centred on key cell (i·h/H, j·w/W); entry p = r·kW + c sits at that corner + (r, c) (src/geometry/sr.ts windows).
fn window_corner(i: u32, j: u32, H: u32, W: u32, h: u32, w: u32, kH: u32, kW: u32) -> vec2<i32> {
  return vec2<i32>(i32(i / (H / h)) - i32(kH >> 1u), i32(j / (W / w)) - i32(kW >> 1u));
}

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
  let corner = window_corner(i, j, P.H, P.W, P.h, P.w, P.kH, P.kW);
  let y = corner.x + i32(p / P.kW);
  let x = corner.y + i32(p % P.kW);
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
  let corner = window_corner(i, j, P.H, P.W, P.h, P.w, P.kH, P.kW);
  let cy = corner.x;
  let cx = corner.y;
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

#if PACK
// Windows layout for the UWIN variant of `fused` (CPU adapters): copies a Rows view of `rows`×`cols` cells (tokens
// t = y·cols + x) of every (b, h) into blocks Dst[(bh − bh0)·bh_block + q·q_block + (y·row_cells + x)·qw4 + c] (vec4
// units): channel part q (of nq, qw4 vec4 each) of head h, rows padded to row_cells cells so that every row starts
// 256-byte aligned (a uniform window's dynamic offset). One invocation per destination vec4.
struct Params {
  n: u32, heads: u32, rows: u32, cols: u32, row_cells: u32, nq: u32, qw4: u32, q_block: u32, bh_block: u32,
  bh0: u32, src_off: u32, src_row: u32, src_bat: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> S: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= P.n) { return; }
  let c = idx % P.qw4;
  let cell = idx / P.qw4;
  let x = cell % P.cols;
  let y = (cell / P.cols) % P.rows;
  let q = (cell / (P.cols * P.rows)) % P.nq;
  let bl = cell / (P.cols * P.rows * P.nq);
  let bh = P.bh0 + bl;
  let b = bh / P.heads;
  let h = bh % P.heads;
  let src = P.src_off + b * P.src_bat + (y * P.cols + x) * P.src_row + (h * P.nq + q) * P.qw4 + c;
  Dst[bl * P.bh_block + q * P.q_block + (y * P.row_cells + x) * P.qw4 + c] = S[src];
}
#endif

#if FUSED
// Rows views: element (batch b, token t, channel c) at off + b·bat + t·row + c (c = head·D + channel in head), all in
// units of VT (vec4 when every offset, stride and D is a multiple of 4: VEC4, else f32).
// UWIN (CPU adapters, VEC4, D a multiple of 16): one dispatch per (b, h, tile of query rows); K and V come from
// 64 KiB uniform windows of the PACK layout (lavapipe gathers uniform words ~16× faster than storage words,
// shaders/README.md): NQ windows of 16 channels each for the high-res grid (rows y0.. of the tile's union window),
// one window each of full-D low-res cells (rows y20..) or text keys. q, mask, log weights and the output stay storage.
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
  m_bat: u32,   // TEXT: mask / log-weight batch stride in f32 (0 = broadcast)
  scale: f32,
  add_scalar: f32,
  // UWIN only: this dispatch's batch item, head, first query row and number of query rows; the first grid row of the
  // high-res and low-res windows; cells per packed row (high-res, low-res).
  tb: u32, th: u32, ti0: u32, trows: u32, y0: u32, y20: u32, row_cells: u32, row_cells2: u32,
}
#if VEC4
alias VT = vec4<f32>;
fn vdot(a: VT, b: VT) -> f32 { return dot(a, b); }
#else
alias VT = f32;
fn vdot(a: VT, b: VT) -> f32 { return a * b; }
#endif
// Head width in VT units; score slots per row (window + low-res window or text keys).
const DV: u32 = {{DV}}u;
const MAXP: u32 = {{MAXP}}u;
// Windows (compile-time): KH × KW on the high-res grid, KSZ2 × KSZ2 on the low-res grid.
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const KSZ2: u32 = {{KSZ2}}u;
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<VT>;
#if UWIN
// 16 channels (4 vec4) of every high-res cell per window; K quarter i at binding B_K + i, V at B_V + i.
alias Win = array<vec4<f32>, 4096>;
@group(0) @binding({{B_K}}) var<uniform> K0: Win;
@group(0) @binding({{B_V}}) var<uniform> V0: Win;
#if NQ2
@group(0) @binding({{B_K1}}) var<uniform> K1: Win;
@group(0) @binding({{B_V1}}) var<uniform> V1: Win;
#endif
#if NQ3
@group(0) @binding({{B_K2Q}}) var<uniform> K2q: Win;
@group(0) @binding({{B_V2Q}}) var<uniform> V2q: Win;
#endif
#if NQ4
@group(0) @binding({{B_K3}}) var<uniform> K3: Win;
@group(0) @binding({{B_V3}}) var<uniform> V3: Win;
#endif
#if EXTRA
@group(0) @binding({{B_K2}}) var<uniform> K2: Win;
@group(0) @binding({{B_V2}}) var<uniform> V2: Win;
#endif
#else
@group(0) @binding(2) var<storage, read> K: array<VT>;
@group(0) @binding(3) var<storage, read> V: array<VT>;
#if EXTRA
@group(0) @binding(4) var<storage, read> K2: array<VT>;
@group(0) @binding(5) var<storage, read> V2: array<VT>;
#endif
#endif
#if TEXT
#if HAS_MASK
@group(0) @binding({{B_MASK}}) var<storage, read> MASK: array<f32>;
#endif
#if HAS_LOGW
@group(0) @binding({{B_LOGW}}) var<storage, read> LOGW: array<f32>;
#endif
#endif
@group(0) @binding({{B_OUT}}) var<storage, read_write> O: array<VT>;
#if TILES
// TILES (GPUs, VEC4): a workgroup owns a TW×TH tile of queries of one (batch, head) and reads every key/value cell
// its windows cover once: the union of the tile's high-res windows ((TH + KH − 1) × (TW + KW − 1) cells) and of its
// low-res windows (RH2 × RW2 cells) or the NX text keys go through workgroup memory, CH vec4 of channels at a time
// (scores summed over the channel chunks, then softmax, then the values chunk by chunk). Out-of-grid cells are
// stored as zeros: they score OUT_OF_GRID and add no value, as in the per-query path. Each K/V element is read from
// memory once per tile instead of once per query that sees it (45-70 times at the published windows).
const TW: u32 = {{TW}}u;
const TH: u32 = {{TH}}u;
const CH: u32 = {{CH}}u;
const RW: u32 = TW + KW - 1u;
const RH: u32 = TH + KH - 1u;
const NHI: u32 = RW * RH;
#if LOWRES
const RW2: u32 = {{RW2}}u;
const RH2: u32 = {{RH2}}u;
const NX: u32 = RW2 * RH2;
#elif TEXT
const NX: u32 = {{NX}}u;
#endif
var<workgroup> Ks: array<VT, NHI * CH>;
#if EXTRA
var<workgroup> Xs: array<VT, NX * CH>;
#endif
var<private> sc: array<f32, MAXP>;
var<private> qv: array<VT, CH>;
var<private> av: array<VT, CH>;

// Channels c0.. (CH vec4) of the tile's cells into workgroup memory: K (v false) or V.
fn load_tiles(v: bool, b: u32, ho: u32, c0: u32, y0: i32, x0: i32, ly0: i32, lx0: i32, t: u32) {
  let side = i32(P.side);
  for (var e = t; e < NHI * CH; e += TW * TH) {
    let cell = e / CH;
    let c = e % CH;
    let y = y0 + i32(cell / RW);
    let x = x0 + i32(cell % RW);
    var val = VT(0.0);
    if (y >= 0 && y < side && x >= 0 && x < side) {
      let tok = u32(y) * P.side + u32(x);
      if (v) {
        val = V[P.v_off + b * P.v_bat + tok * P.v_row + ho + c0 + c];
      } else {
        val = K[P.k_off + b * P.k_bat + tok * P.k_row + ho + c0 + c];
      }
    }
    Ks[e] = val;
  }
#if EXTRA
  for (var e = t; e < NX * CH; e += TW * TH) {
    let cell = e / CH;
    let c = e % CH;
    var val = VT(0.0);
#if LOWRES
    let L = i32(P.side2);
    let y = ly0 + i32(cell / RW2);
    let x = lx0 + i32(cell % RW2);
    let inside = y >= 0 && y < L && x >= 0 && x < L;
    let tok = u32(y) * P.side2 + u32(x);
#else
    let inside = true;
    let tok = cell;
#endif
    if (inside) {
      if (v) {
        val = V2[P.v2_off + b * P.v2_bat + tok * P.v2_row + ho + c0 + c];
      } else {
        val = K2[P.k2_off + b * P.k2_bat + tok * P.k2_row + ho + c0 + c];
      }
    }
    Xs[e] = val;
  }
#endif
}

@compute @workgroup_size(TW, TH)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let side = P.side;
  let tiles_x = (side + TW - 1u) / TW;
  let j0 = (wg.x % tiles_x) * TW;
  let i0 = (wg.x / tiles_x) * TH;
  let hd = wg.y;
  let b = wg.z;
  let ho = hd * DV;
  let i = i0 + lid.y;
  let j = j0 + lid.x;
  let live = i < side && j < side;
  let t = lid.y * TW + lid.x;
  let y0 = i32(i0) - i32(KH >> 1u);
  let x0 = i32(j0) - i32(KW >> 1u);
#if LOWRES
  let a = side / P.side2;
  let ly0 = i32(i0 / a) - i32(KSZ2 >> 1u);
  let lx0 = i32(j0 / a) - i32(KSZ2 >> 1u);
  // This query's low-res window corner within the loaded low-res tile.
  let qy2 = i / a - i0 / a;
  let qx2 = j / a - j0 / a;
#else
  let ly0 = 0;
  let lx0 = 0;
#endif
  for (var n = 0u; n < MAXP; n++) { sc[n] = 0.0; }

  // ---- pass 1: scores, summed over channel chunks
  for (var c0 = 0u; c0 < DV; c0 += CH) {
    workgroupBarrier();
    load_tiles(false, b, ho, c0, y0, x0, ly0, lx0, t);
    workgroupBarrier();
    if (live) {
      let qb = P.q_off + b * P.q_bat + (i * side + j) * P.q_row + ho + c0;
#unroll c 0 CH if UNROLL
      qv[c] = Q[qb + c] * P.scale;
#endunroll
      var n = 0u;
#if LOWRES
      for (var dy = 0u; dy < KSZ2; dy++) {
        for (var dx = 0u; dx < KSZ2; dx++) {
          let cell = (qy2 + dy) * RW2 + qx2 + dx;
          var s = 0.0;
#unroll c 0 CH if UNROLL
          s += vdot(qv[c], Xs[cell * CH + c]);
#endunroll
          sc[n] += s;
          n++;
        }
      }
#elif TEXT
      for (var u = 0u; u < NX; u++) {
        var s = 0.0;
#unroll c 0 CH if UNROLL
        s += vdot(qv[c], Xs[u * CH + c]);
#endunroll
        sc[n] += s;
        n++;
      }
#endif
      for (var dy = 0u; dy < KH; dy++) {
        for (var dx = 0u; dx < KW; dx++) {
          let cell = (lid.y + dy) * RW + lid.x + dx;
          var s = 0.0;
#unroll c 0 CH if UNROLL
          s += vdot(qv[c], Ks[cell * CH + c]);
#endunroll
          sc[n] += s;
          n++;
        }
      }
    }
  }

  // ---- the scores' adjustments (out of grid, add_scalar, text mask / log weights), max, exp, sum
  var mx = -3.402823e38;
  var n = 0u;
#if LOWRES
  let L = i32(P.side2);
  for (var dy = 0u; dy < KSZ2; dy++) {
    for (var dx = 0u; dx < KSZ2; dx++) {
      let y = ly0 + i32(qy2 + dy);
      let x = lx0 + i32(qx2 + dx);
      var s = OUT_OF_GRID;
      if (y >= 0 && y < L && x >= 0 && x < L) { s = sc[n]; }
      s += P.add_scalar;
      sc[n] = s;
      mx = max(mx, s);
      n++;
    }
  }
#elif TEXT
  for (var u = 0u; u < NX; u++) {
    var s = sc[n];
#if HAS_LOGW
    s += LOGW[b * P.m_bat + u];
#endif
#if HAS_MASK
    let m = MASK[b * P.m_bat + u];
    s = s * m - 10000.0 * (1.0 - m);
#endif
    sc[n] = s;
    mx = max(mx, s);
    n++;
  }
#endif
  let sidei = i32(side);
  for (var dy = 0u; dy < KH; dy++) {
    for (var dx = 0u; dx < KW; dx++) {
      let y = i32(i) - i32(KH >> 1u) + i32(dy);
      let x = i32(j) - i32(KW >> 1u) + i32(dx);
      var s = OUT_OF_GRID;
      if (y >= 0 && y < sidei && x >= 0 && x < sidei) { s = sc[n]; }
      sc[n] = s;
      mx = max(mx, s);
      n++;
    }
  }
  var den = 0.0;
  for (var p = 0u; p < n; p++) {
    let w = exp(sc[p] - mx);
    sc[p] = w;
    den += w;
  }
  let inv = 1.0 / den;

  // ---- pass 2: weighted values, chunk by chunk (out-of-grid cells are zeros in the tiles)
  for (var c0 = 0u; c0 < DV; c0 += CH) {
    workgroupBarrier();
    load_tiles(true, b, ho, c0, y0, x0, ly0, lx0, t);
    workgroupBarrier();
    if (live) {
#unroll c 0 CH if UNROLL
      av[c] = VT(0.0);
#endunroll
      var n2 = 0u;
#if LOWRES
      for (var dy = 0u; dy < KSZ2; dy++) {
        for (var dx = 0u; dx < KSZ2; dx++) {
          let cell = (qy2 + dy) * RW2 + qx2 + dx;
#unroll c 0 CH if UNROLL
          av[c] += sc[n2] * Xs[cell * CH + c];
#endunroll
          n2++;
        }
      }
#elif TEXT
      for (var u = 0u; u < NX; u++) {
#unroll c 0 CH if UNROLL
        av[c] += sc[n2] * Xs[u * CH + c];
#endunroll
        n2++;
      }
#endif
      for (var dy = 0u; dy < KH; dy++) {
        for (var dx = 0u; dx < KW; dx++) {
          let cell = (lid.y + dy) * RW + lid.x + dx;
#unroll c 0 CH if UNROLL
          av[c] += sc[n2] * Ks[cell * CH + c];
#endunroll
          n2++;
        }
      }
      let ob = P.o_off + b * P.o_bat + (i * side + j) * P.o_row + ho + c0;
#unroll c 0 CH if UNROLL
      O[ob + c] = av[c] * inv;
#endunroll
    }
  }
}
#else

// Two passes per query: scores into `sc` (max tracked), then exp, sum and the weighted values. The original's
// order: [scores_1_to_0 (low-res window or text), scores_1_to_1 (own window)], out-of-grid entries −10000.
// An invocation handles G vertically adjacent queries (i0 + g, j), i0 a multiple of G (G divides A): they share one
// low-res window and the text keys, and their high-res windows overlap in KH − 1 rows, so each loaded key/value
// cell serves up to G queries (CPU adapters pay per loaded element; GPUs use G = 1).
// UNROLL (wgpu on GPUs, choices.ts unroll): the loops over g and channels expanded, so q, acc, kc, mx and den are
// indexed by literals only (registers on NVIDIA); the scores sc, indexed by window slot, stay in local memory.
const G: u32 = {{G}}u;
var<private> q: array<VT, G * DV>;
var<private> acc: array<VT, G * DV>;
var<private> sc: array<f32, G * MAXP>;
var<private> mx: array<f32, G>;
var<private> den: array<f32, G>;
var<private> kc: array<VT, DV>;
// This invocation's batch item and head column (VT units).
var<private> gb: u32;
var<private> gho: u32;

// kc = key (v = false) or value (v = true) of high-res cell (y, x) / low-res cell (y, x) / text key u.
#if UWIN
fn fetch_hi(y: u32, x: u32, v: bool) {
  let w = ((y - P.y0) * P.row_cells + x) * 4u;
#unroll c 0 4 if UNROLL
  if (v) { kc[c] = V0[w + c]; } else { kc[c] = K0[w + c]; }
#if NQ2
  if (v) { kc[4u + c] = V1[w + c]; } else { kc[4u + c] = K1[w + c]; }
#endif
#if NQ3
  if (v) { kc[8u + c] = V2q[w + c]; } else { kc[8u + c] = K2q[w + c]; }
#endif
#if NQ4
  if (v) { kc[12u + c] = V3[w + c]; } else { kc[12u + c] = K3[w + c]; }
#endif
#endunroll
}
#if EXTRA
// Low-res cell (y, x) of the window rows y20.. (LOWRES) or text key x (TEXT, y = 0).
fn fetch_2(y: u32, x: u32, v: bool) {
  let w = ((y - P.y20) * P.row_cells2 + x) * DV;
#unroll c 0 DV if UNROLL
  if (v) { kc[c] = V2[w + c]; } else { kc[c] = K2[w + c]; }
#endunroll
}
#endif
#else
fn fetch_hi(y: u32, x: u32, v: bool) {
  let t = y * P.side + x;
  if (v) {
    let i = P.v_off + gb * P.v_bat + t * P.v_row + gho;
#unroll c 0 DV if UNROLL
    kc[c] = V[i + c];
#endunroll
  } else {
    let i = P.k_off + gb * P.k_bat + t * P.k_row + gho;
#unroll c 0 DV if UNROLL
    kc[c] = K[i + c];
#endunroll
  }
}
#if EXTRA
fn fetch_2(y: u32, x: u32, v: bool) {
  let t = y * P.side2 + x;
  if (v) {
    let i = P.v2_off + gb * P.v2_bat + t * P.v2_row + gho;
#unroll c 0 DV if UNROLL
    kc[c] = V2[i + c];
#endunroll
  } else {
    let i = P.k2_off + gb * P.k2_bat + t * P.k2_row + gho;
#unroll c 0 DV if UNROLL
    kc[c] = K2[i + c];
#endunroll
  }
}
#endif
#endif

fn score(g: u32) -> f32 {
  var s = 0.0;
#unroll c 0 DV if UNROLL
  s += vdot(q[g * DV + c], kc[c]);
#endunroll
  return s;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let side = P.side;
#if UWIN
  if (idx >= (P.trows / G) * side) { return; }
  let j = idx % side;
  let i0 = P.ti0 + (idx / side) * G;
  let hd = P.th;
  let b = P.tb;
#else
  let rows = side / G;
  if (idx >= P.batch * P.heads * rows * side) { return; }
  let j = idx % side;
  let i0 = ((idx / side) % rows) * G;
  let hd = (idx / (side * rows)) % P.heads;
  let b = idx / (side * rows * P.heads);
#endif
  let ho = hd * DV;
  gb = b;
  gho = ho;
#unroll g 0 G if UNROLL
  let qb = P.q_off + b * P.q_bat + ((i0 + g) * side + j) * P.q_row + ho;
#unroll c 0 DV if UNROLL
  q[g * DV + c] = Q[qb + c] * P.scale;
  acc[g * DV + c] = VT(0.0);
#endunroll
  mx[g] = -3.402823e38;
  den[g] = 0.0;
#endunroll
  var n0 = 0u;   // first high-res slot of each query's scores

  // ---- pass 1: scores
#if LOWRES
  let L = i32(P.side2);
  let a = side / P.side2;
  let cy2 = i32(i0 / a) - i32(KSZ2 >> 1u);
  let cx2 = i32(j / a) - i32(KSZ2 >> 1u);
  for (var dy = 0u; dy < KSZ2; dy++) {
    let y = cy2 + i32(dy);
    for (var dx = 0u; dx < KSZ2; dx++) {
      let x = cx2 + i32(dx);
      let inside = y >= 0 && y < L && x >= 0 && x < L;
      if (inside) { fetch_2(u32(y), u32(x), false); }
#unroll g 0 G if UNROLL
      var s = OUT_OF_GRID;
      if (inside) { s = score(g); }
      s += P.add_scalar;
      sc[g * MAXP + n0] = s;
      mx[g] = max(mx[g], s);
#endunroll
      n0++;
    }
  }
#elif TEXT
  for (var u = 0u; u < P.side2; u++) {
    fetch_2(0u, u, false);
#if HAS_LOGW
    let lw = LOGW[b * P.m_bat + u];
#endif
#if HAS_MASK
    let m = MASK[b * P.m_bat + u];
#endif
#unroll g 0 G if UNROLL
    var s = score(g);
#if HAS_LOGW
    s += lw;
#endif
#if HAS_MASK
    s = s * m - 10000.0 * (1.0 - m);
#endif
    sc[g * MAXP + n0] = s;
    mx[g] = max(mx[g], s);
#endunroll
    n0++;
  }
#endif
  // High-res union rows r = 0 .. KH + G − 2: query g sees union row r as its window row r − g.
  let sidei = i32(side);
  let cy = i32(i0) - i32(KH >> 1u);
  let cx = i32(j) - i32(KW >> 1u);
  for (var r = 0u; r < KH + G - 1u; r++) {
    let y = cy + i32(r);
    for (var dx = 0u; dx < KW; dx++) {
      let x = cx + i32(dx);
      let inside = y >= 0 && y < sidei && x >= 0 && x < sidei;
      if (inside) { fetch_hi(u32(y), u32(x), false); }
#unroll g 0 G if UNROLL
      let e = i32(r) - i32(g);
      if (e >= 0 && e < i32(KH)) {
        var s = OUT_OF_GRID;
        if (inside) { s = score(g); }
        sc[g * MAXP + n0 + u32(e) * KW + dx] = s;
        mx[g] = max(mx[g], s);
      }
#endunroll
    }
  }

  // ---- pass 2: softmax weights and values (out-of-grid entries count in the sum, add no value); kc holds v.
  var n = 0u;
#if LOWRES
  for (var dy = 0u; dy < KSZ2; dy++) {
    let y = cy2 + i32(dy);
    for (var dx = 0u; dx < KSZ2; dx++) {
      let x = cx2 + i32(dx);
      let inside = y >= 0 && y < L && x >= 0 && x < L;
      if (inside) { fetch_2(u32(y), u32(x), true); }
#unroll g 0 G if UNROLL
      let w = exp(sc[g * MAXP + n] - mx[g]);
      den[g] += w;
      if (inside) {
#unroll c 0 DV if UNROLL
        acc[g * DV + c] += w * kc[c];
#endunroll
      }
#endunroll
      n++;
    }
  }
#elif TEXT
  for (var u = 0u; u < P.side2; u++) {
    fetch_2(0u, u, true);
#unroll g 0 G if UNROLL
    let w = exp(sc[g * MAXP + n] - mx[g]);
    den[g] += w;
#unroll c 0 DV if UNROLL
    acc[g * DV + c] += w * kc[c];
#endunroll
#endunroll
    n++;
  }
#endif
  for (var r = 0u; r < KH + G - 1u; r++) {
    let y = cy + i32(r);
    for (var dx = 0u; dx < KW; dx++) {
      let x = cx + i32(dx);
      let inside = y >= 0 && y < sidei && x >= 0 && x < sidei;
      if (inside) { fetch_hi(u32(y), u32(x), true); }
#unroll g 0 G if UNROLL
      let e = i32(r) - i32(g);
      if (e >= 0 && e < i32(KH)) {
        let w = exp(sc[g * MAXP + n0 + u32(e) * KW + dx] - mx[g]);
        den[g] += w;
        if (inside) {
#unroll c 0 DV if UNROLL
          acc[g * DV + c] += w * kc[c];
#endunroll
        }
      }
#endunroll
    }
  }

#unroll g 0 G if UNROLL
  let inv = 1.0 / den[g];
  let ob = P.o_off + b * P.o_bat + ((i0 + g) * side + j) * P.o_row + ho;
#unroll c 0 DV if UNROLL
  O[ob + c] = acc[g * DV + c] * inv;
#endunroll
#endunroll
}
#endif
#endif
