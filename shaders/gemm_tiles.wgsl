#if F16_MATH
enable f16;
#endif
#if SGA
enable subgroups;
#endif
// Register-blocked GEMM for GPUs: C = alpha·A·Wᵀ (+bias) (GELU) (+R), A [M, K] f32, W [N, K] f16 (packed) or f32,
// strided batches (wg.z). A workgroup of (BN/TN)×(BM/8) invocations owns a BM×BN tile of C; each invocation
// accumulates an 8×TN block in registers. K advances in slices of BK stored k-major in workgroup memory, so the inner
// loop reads 2 vec4 of A and TN/4 of W per k (8·TN multiply-adds per 2 + TN/4 loads); the next slice's A and W are
// loaded into registers while the current one is multiplied out. The default (src/kernels/gemm.ts "gemm_tiles"):
// 128×128, TN 8, BK 8, double-buffered, no padding, 8-byte W loads.
// Variants by define (the named table is GEMM_VARIANTS in src/kernels/gemm.ts):
//   BM, BN, TN, BK  tile rows, columns, columns per invocation (8 or 16), slice depth (multiple of 8)
//   PAD       vec4 of padding after each k row of the workgroup tiles (the k-major scatter of a slice then spreads
//             over banks instead of landing a multiple of 128 words apart)
//   IL        interleaved ownership of the 8×TN block (ROW_VEC / COL_VEC) instead of contiguous
//   W8        16-byte W loads (vec4<u32>: 8 f16 weights; needs K, ldw and the W offsets multiples of 8)
//   DBUF      two workgroup buffers (true double buffering): the prefetched slice is stored into the other buffer
//             while this one is read, one barrier per slice instead of two.
//   SGA, G    (subgroups) A never goes through workgroup memory: in each aligned group of G invocations (G = 4 or 8,
//             at most the subgroup size; they share the same 8 rows of the tile: same ty), invocation j loads rows j,
//             j + G, .. of those 8 for the whole K slice straight into registers (prefetched like the rest), and the
//             multiply takes A[row r][k] from invocation r % G of its group by subgroupShuffle: 8 shuffles and TN/4
//             W-tile loads per k instead of 2 A-tile and TN/4 W-tile loads, no A scatter into workgroup memory, only
//             the W tile there (half the workgroup memory at 128×128). Correct for any subgroup size that is a multiple of G (every shuffle stays inside
//             the group, found from subgroup_invocation_id), assuming, as shaders/gemv_rows.wgsl does, that
//             subgroups are runs of consecutive local_invocation_index aligned to their size. Not with F16_MATH.
//   F16_MATH  (shader-f16) tiles held as f16 (A rounded to f16 when stored), the products of one slice summed in
//             f16 and added to f32 accumulators after each slice: f16 arithmetic, f32 accumulation over K (the
//             original runs the model in fp16). Needs the `shader-f16` feature.
// Needs K, lda, ldw and the offsets multiples of 4. The launcher is src/kernels/gemm.ts; CPU twin
// src/reference/matmul.ts.
#include "common.wgsl"

#include "gemm_params.wgsl"
#if W_F16
#if W8
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
#else
@group(0) @binding(2) var<storage, read> W: array<vec2<u32>>;
#endif
#else
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
#endif
#include "matmul_epilogue.wgsl"

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TN: u32 = {{TN}}u;
const TN4: u32 = TN / 4u;
// Trip counts of the loops over this invocation's registers, for #unroll (the WGSL consts of the same names below):
// every index into acc, s, na, nw, ca is an #unroll literal (naga's rolled loops would leave them in local memory
// on NVIDIA, shaders/README.md); the K loops stay rolled. Keep in step with T, LA, LW, WL.
#define U_TN4 TN/4
#define U_T (BN/TN)*(BM/8)
#if W8
#define U_WL 8
#else
#define U_WL 4
#endif
#define U_LA (BM*BK/4+U_T-1)/U_T
#define U_LW (BN*BK/U_WL+U_T-1)/U_T
const WGX: u32 = BN / TN;
const WGY: u32 = BM / 8u;
const T: u32 = WGX * WGY;
// Row strides (in vec4) of the k-major tiles and the size of one slice of each operand.
const SA: u32 = BM / 4u + {{PAD}}u;
const SW: u32 = BN / 4u + {{PAD}}u;
const SLICE_A: u32 = BK * SA;
const SLICE_W: u32 = BK * SW;
// Loads per slice: A in vec4 (4 k of one row), W in WL k of one column; per invocation LA and LW of them.
const NA: u32 = BM * BK / 4u;
#if W8
const WL: u32 = 8u;
#else
const WL: u32 = 4u;
#endif
const NW: u32 = BN * BK / WL;
const LA: u32 = (NA + T - 1u) / T;
const LW: u32 = (NW + T - 1u) / T;
const LW4: u32 = LW * WL / 4u;
#if F16_MATH
alias ST = f16;
#else
alias ST = f32;
#endif
#if DBUF
const NBUF: u32 = 2u;
#else
const NBUF: u32 = 1u;
#endif
// k-major tiles: As[k][m] as vec4 along m, Ws[k][n] as vec4 along n; buffer i at i·SLICE.
#if SGA
// This invocation's rows of A (rows j, j + G, .. of its group's 8; row i·G + j at [i·BK4 ..]) over the slice being
// multiplied (ca) and the next one (na).
const G: u32 = {{G}}u;
const BK4: u32 = BK / 4u;
const RA: u32 = 8u / G;
var<private> ca: array<vec4<f32>, RA * BK4>;
var<private> na: array<vec4<f32>, RA * BK4>;
#else
var<workgroup> As: array<vec4<ST>, SLICE_A * NBUF>;
var<private> na: array<vec4<f32>, LA>;
#endif
var<workgroup> Ws: array<vec4<ST>, SLICE_W * NBUF>;
var<private> acc: array<vec4<f32>, 2u * TN>; // 8 rows × TN/4 vec4 of columns
// The prefetched slice: this invocation's LA vec4 of A (SGA: its row's BK4, above) and LW4 vec4 of W.
var<private> nw: array<vec4<f32>, LW4>;

// 4 consecutive k of row `row` of A (zero outside the matrix).
fn load_a(b: u32, row: u32, k: u32) -> vec4<f32> {
  if (row >= P.M || k >= P.K) { return vec4<f32>(0.0); }
  return A[(P.a_off + b * P.a_bs + row * P.lda + k) / 4u];
}
// WL consecutive k of column n of W as WL/4 vec4 (zero outside the matrix). Returned, not written into nw here: nw
// is indexed by the caller's #unroll literals only.
fn load_w(b: u32, n: u32, k: u32) -> array<vec4<f32>, WL / 4u> {
  var r: array<vec4<f32>, WL / 4u>;
  if (n >= P.N || k >= P.K) { return r; }
#if W8
  let p = W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 8u];
  r[0] = vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
  r[1] = vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w));
#elif W_F16
  let p = W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 4u];
  r[0] = vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
#else
  r[0] = W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 4u];
#endif
  return r;
}

// Loads the slice at k0 into registers: load q = t + i·T of A is row q / (BK/4), k 4·(q % (BK/4)); of W likewise.
// SGA: invocation t loads rows t % G + G·i of the 8 its group shares (ROW_VEC of its ty), all BK k of them.
fn prefetch(b: u32, m0: u32, n0: u32, t: u32, k0: u32) {
#if SGA
#unroll r 0 8/G
  let j = t % G + G * r;
  let row = m0 + 4u * ROW_VEC(t / WGX, j / 4u) + j % 4u;
#unroll i 0 BK/4
  na[r * BK4 + i] = load_a(b, row, k0 + 4u * i);
#endunroll
#endunroll
#else
#unroll i 0 U_LA
  let q = t + i * T;
  na[i] = load_a(b, m0 + q / (BK / 4u), k0 + 4u * (q % (BK / 4u)));
#endunroll
#endif
#unroll i 0 U_LW
  let q = t + i * T;
  let v = load_w(b, n0 + q / (BK / WL), k0 + WL * (q % (BK / WL)));
#unroll j 0 U_WL/4
  nw[i * (WL / 4u) + j] = v[j];
#endunroll
#endunroll
}

// Scatters the prefetched slice k-major into buffer `buf`: element (k, row) at [k·S + row/4][row%4].
fn stash(buf: u32, t: u32) {
#if SGA
  ca = na;
#else
#unroll i 0 U_LA
  let q = t + i * T;
  if (q < NA) {
    let r = q / (BK / 4u);
    let k = 4u * (q % (BK / 4u));
#unroll j 0 4
    As[buf * SLICE_A + (k + j) * SA + r / 4u][r % 4u] = ST(na[i][j]);
#endunroll
  }
#endunroll
#endif
#unroll i 0 U_LW
  let q = t + i * T;
  if (q < NW) {
    let n = q / (BK / WL);
    let k = WL * (q % (BK / WL));
#unroll j 0 U_WL
    Ws[buf * SLICE_W + (k + j) * SW + n / 4u][n % 4u] = ST(nw[i * (WL / 4u) + j / 4u][j % 4u]);
#endunroll
  }
#endunroll
}

// The vec4 of rows (of A's tile) and of columns (of W's) an invocation owns: contiguous (rows ty·8.., columns
// tx·TN..) or, with IL, interleaved across the workgroup (row vec4 ty + WGY·i, column vec4 tx + WGX·j), so the
// invocations of a subgroup read consecutive vec4 of the W tile (no bank conflicts between their 16-byte reads).
#if IL
fn ROW_VEC(ty: u32, i: u32) -> u32 { return ty + WGY * i; }
fn COL_VEC(tx: u32, j: u32) -> u32 { return tx + WGX * j; }
#else
fn ROW_VEC(ty: u32, i: u32) -> u32 { return ty * 2u + i; }
fn COL_VEC(tx: u32, j: u32) -> u32 { return tx * TN4 + j; }
#endif

#if SGA
// A[row r of the group's 8][k of the slice] from invocation g + r % G (g: the group's first subgroup_invocation_id).
fn shared_a(r: u32, k: u32, g: u32) -> f32 {
  return subgroupShuffle(ca[(r / G) * BK4 + k / 4u][k % 4u], g + r % G);
}
#endif

// acc += the slice in buffer `buf` (rows and columns ROW_VEC / COL_VEC). SGA: A from the group's registers.
fn multiply(buf: u32, tx: u32, ty: u32, g: u32) {
#if F16_MATH
  var s: array<vec4<f16>, 2u * TN>; // this slice's sums, in f16
#else
  var s = acc;
#endif
  for (var k = 0u; k < BK; k++) {
#if SGA
    let a0 = vec4<f32>(shared_a(0u, k, g), shared_a(1u, k, g), shared_a(2u, k, g), shared_a(3u, k, g));
    let a1 = vec4<f32>(shared_a(4u, k, g), shared_a(5u, k, g), shared_a(6u, k, g), shared_a(7u, k, g));
#else
    let a0 = As[buf * SLICE_A + k * SA + ROW_VEC(ty, 0u)];
    let a1 = As[buf * SLICE_A + k * SA + ROW_VEC(ty, 1u)];
#endif
#unroll j 0 U_TN4
    let w = Ws[buf * SLICE_W + k * SW + COL_VEC(tx, j)];
    s[0u * TN4 + j] += a0.x * w;
    s[1u * TN4 + j] += a0.y * w;
    s[2u * TN4 + j] += a0.z * w;
    s[3u * TN4 + j] += a0.w * w;
    s[4u * TN4 + j] += a1.x * w;
    s[5u * TN4 + j] += a1.y * w;
    s[6u * TN4 + j] += a1.z * w;
    s[7u * TN4 + j] += a1.w * w;
#endunroll
  }
#if F16_MATH
#unroll i 0 2*TN
  acc[i] += vec4<f32>(s[i]);
#endunroll
#else
  acc = s;
#endif
}

fn store(b: u32, m: u32, n: u32, v: f32) {
  if (m < P.M && n < P.N) { store_c(b, m, n, v); }
}

@compute @workgroup_size(WGX, WGY)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
#if SGA
  @builtin(subgroup_invocation_id) sgid: u32,
#endif
) {
#if SGA
  let g = sgid & ~(G - 1u);
#else
  let g = 0u;
#endif
  let b = wg.z;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let t = lid.y * WGX + lid.x;
  prefetch(b, m0, n0, t, 0u);
#if DBUF
  stash(0u, t);
  workgroupBarrier();
  var cur = 0u;
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    let more = k0 + BK < P.K;
    if (more) { prefetch(b, m0, n0, t, k0 + BK); }
    multiply(cur, lid.x, lid.y, g);
    // The other buffer was last read in the previous slice, which every invocation finished before the barrier.
    if (more) { stash(1u - cur, t); }
    workgroupBarrier();
    cur = 1u - cur;
  }
#else
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    workgroupBarrier();
    stash(0u, t);
    workgroupBarrier();
    if (k0 + BK < P.K) { prefetch(b, m0, n0, t, k0 + BK); }
    multiply(0u, lid.x, lid.y, g);
  }
#endif
  // The epilogue indexes a copy of acc (in local memory on NVIDIA, read once) in rolled loops: acc itself stays indexed
  // by literals only, and store_c (bias, GELU, residual) is compiled once instead of 8·TN times (lavapipe's LLVM
  // took 8 s over those copies).
  var c = acc;
  for (var r = 0u; r < 8u; r++) {
    let m = m0 + 4u * ROW_VEC(lid.y, r / 4u) + r % 4u;
    for (var j = 0u; j < TN4; j++) {
      let v = c[r * TN4 + j];
      let n = n0 + 4u * COL_VEC(lid.x, j);
      store(b, m, n + 0u, v.x);
      store(b, m, n + 1u, v.y);
      store(b, m, n + 2u, v.z);
      store(b, m, n + 3u, v.w);
    }
  }
}
