#if !EMU
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
#endif
// Every subgroup-matrix call below takes offsets and strides made only of constants, uniforms, workgroup_id and
// subgroup_id, so it is in subgroup-uniform control flow with subgroup-uniform arguments (Dawn's requirement); the
// workgroup-scope analysis of older Tint versions cannot see that subgroup_id is subgroup-uniform, hence off.
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);
// Tensor-core GEMM through Dawn's `chromium-experimental-subgroup-matrix` (docs/dawn/features/subgroup_matrix.md in
// google/dawn): C = alpha·A·Wᵀ (+bias) (GELU) (+R), the contract of gemm_tiles.wgsl (same Params, bindings and
// store_c epilogue): A f32 [M, K] (lda, offsets, batch strides), W [N, K] f16 packed two per u32 (or f32), strided
// batches (wg.z). Needs K, lda, ldw and the offsets multiples of 4 (src/kernels/gemm.ts gemmTilesApplies).
//
// Layout. One subgroup-matrix configuration (TM×TN result, TK deep; f16 left/right, f32 result, else f16 with ACC16)
// chosen by the launcher (src/kernels/gemm.ts sgmatPlan) from the adapter's list. A workgroup of NSG = SGY×SGX subgroups of SGMAX (the
// adapter's subgroupMaxSize; Dawn requires workgroup_size.x to be a multiple of it) owns a BM×BN tile of C; subgroup s
// (subgroup_id) owns the (RM·TM)×(RN·TN) block at row block s / SGX, column block s % SGX and keeps its RM×RN result
// matrices in registers (register blocking: per TK step RM left and RN right loads for RM·RN multiply-accumulates).
// K advances in slices of BK: the next slice of A (f32, rounded to f16 when staged) and W (f16 copied, f32 rounded) is
// loaded into registers while the current one is multiplied, then stored into one workgroup buffer (two barriers per
// slice; DBUF: alternately into two buffers, one barrier per slice): As[m][k] row-major (stride SA = BK + 8 halves: 16-byte padding), Ws[n][k] likewise (stride SW), so the left
// matrix (TM rows m × TK columns k) is a row_major load of As and the right matrix (TK rows k × TN columns n) a
// col_major load of Ws. Out-of-range rows, columns and k are staged as zeros. At the end each result matrix goes
// through workgroup memory (Cs, one TM×TN f32 block per subgroup, row_major) and the whole workgroup writes it through
// store_c (alpha, bias, GELU, residual, bounds).
//
// EMU (tests only, adapters without the feature): the four subgroup-matrix operations are replaced by plain WGSL with
// the semantics Dawn documents (row_major: element [r][c] at offset + r·stride + c; col_major: offset + c·stride + r;
// multiply-accumulate: result += left·right) and the subgroups by runs of SGMAX consecutive invocations (subgroup
// t / SGMAX, lane t % SGMAX holding elements lane, lane + SGMAX, ... of each result matrix), so that everything else
// here (staging, offsets, register blocking, barriers, epilogue) runs against the CPU twin where no tensor cores are
// exposed, without the subgroups feature. The real builtins and subgroup_id are used otherwise.
//
// Assumptions that could not be checked on the machine this was written on (lavapipe exposes no subgroup matrix):
//  1. Dawn's WGSL form in npm webgpu 0.6.2 is the templated one: subgroupMatrixLoad<T, row_major|col_major>(ptr,
//     offset, stride) and subgroupMatrixStore<row_major>(ptr, offset, value, stride) (the dawn.node binary contains
//     Tint's Majorness template assertions; the older form with a `col_major: bool` argument is deprecated).
//  2. Type parameters are <component, columns, rows>: subgroup_matrix_left<f16, TK, TM> is TM×TK,
//     subgroup_matrix_right<f16, TN, TK> is TK×TN, subgroup_matrix_result<f32, TN, TM> is TM×TN (Tint's wgsl.def:
//     subgroup_matrix<S, T, C, R>; Dawn's SubgroupMatrixTests use the same order).
//  3. Offsets and strides count elements of the array (f16 for As/Ws, f32 for Cs; Tint's SPIR-V writer passes them
//     through to OpCooperativeMatrixLoadKHR, whose stride counts pointee elements); arrays whose element type is the
//     matrix component type are accepted by every Tint version with the templated form. V4 (the gemm_sgmat*_v4
//     variants) declares the tiles as vec4<f16> instead, which only Tint's relaxed rule (d2749d8) accepts, with
//     offsets and strides in vec4.
//  4. @builtin(subgroup_id) is available with `enable subgroups` (it compiles on Dawn/lavapipe here) and numbers the
//     subgroups 0..num_subgroups-1; with workgroup_size NSG·SGMAX and subgroups SGMAX wide there are exactly NSG;
//     narrower subgroups (more of them) leave the extra ones idle (`in_use`; SG_FIXED, where the adapter's subgroup
//     size is fixed, drops that branch).
//  5. Cooperative-matrix loads/stores from workgroup memory want 16-byte aligned rows: every offset and stride here
//     is a multiple of 16 bytes (SA, SW = BK + 8 halves with BK a multiple of 8; TN·4 bytes for Cs when TN >= 4),
//     assuming the driver aligns the workgroup arrays themselves to 16 bytes.
//  6. Subgroup-matrix types may be function parameters and return values and array elements of a function-scope
//     var (Tint's own tests do all three); by-value updates acc[i][j] = mma(..., acc[i][j]) as in Dawn's tiled test;
//     a var without initializer holds zero matrices (Dawn blocklists Intel's Mesa < 25.2 for getting that wrong).
//  7. NVIDIA's f16 configurations are listed only with the adapter toggle vulkan_enable_f16_on_nvidia and the
//     feature only with allow_unsafe_apis (COGVIEW2_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia,allow_unsafe_apis);
//     among them is an f16 x f16 -> f32 one whose M divides 32, N 64 and K 32 (NVIDIA's Vulkan drivers list 16x16x16,
//     16x8x16 and 16x8x8). ACC16 (f16 results, per-slice f16 sums folded into f32) is the fallback for adapters
//     without one; it needs fixed-size subgroups (every subgroup in use around its barriers).
//  8. The products of f16 values are summed in f32 by the hardware (A is rounded to f16, so |A| must stay below
//     65504, as in the original's fp16 model). Published measurements of NVIDIA's tensor cores (Fasi, Higham,
//     Mikaitis, Pranesh 2021) find the products exact and their sum aligned to the largest exponent with truncated
//     (not rounded) significands inside one operation: at most a few units of 2^-23 of the largest term per
//     multiply-accumulate, which EMU (round-to-nearest f32 sums) does not reproduce; far below the f16 rounding of
//     the inputs, which EMU does reproduce (the same f16 values, exact products).
//
// SPLIT (the *_precise variants): A is staged as hi = f16(a) and lo = f16(a - hi) (a - hi is exact in f32; lo keeps
// a's next 11 bits: hi + lo equals a to ~2^-22 relative, or 2^-25 absolute where lo is an f16 subnormal) in two
// tiles (As, Al), and each step multiplies both into the same f32 result (lo·w, then hi·w); f32 W (WSPLIT) is split
// likewise (Ws, Wl) and the third product hi·w_lo added (the lo·lo term, ~2^-22 relative, is left out). f16 W is
// exact in f16 and needs no split. So A·Wᵀ carries f32-like input precision at 2 (f16 W) or 3 (f32 W)
// multiply-accumulates per step and one or two more tiles to stage: the golden tolerances hold (the plain variants
// miss them by a hair: CogLM hidden 2.15e-3 vs 2e-3 on an H200). hi is rounded by integer operations (hi16), not as
// f32(f16(a)): compilers may fold that back into a (Mesa 25 does for unpack2x16float(pack2x16float(v)) on lavapipe,
// which left lo = 0 in half the lanes), and a - hi must see the rounded value.
#include "common.wgsl"

#include "gemm_params.wgsl"
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<vec2<u32>>;
alias WV = vec2<u32>;
#else
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
alias WV = vec4<f32>;
#endif
#include "matmul_epilogue.wgsl"

// The configuration (src/kernels/gemm.ts sgmatPlan).
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const TK: u32 = {{TK}}u;
// Result matrices per subgroup (rows × columns of them), subgroups per workgroup (rows × columns), lanes.
const RM: u32 = {{RM}}u;
const RN: u32 = {{RN}}u;
const SGY: u32 = {{SGY}}u;
const SGX: u32 = {{SGX}}u;
const NSG: u32 = SGY * SGX;
const SGMAX: u32 = {{SGMAX}}u;
const T: u32 = NSG * SGMAX;
const BM: u32 = SGY * RM * TM;
const BN: u32 = SGX * RN * TN;
const BK: u32 = {{BK}}u;
const SA: u32 = BK + 8u;
const SW: u32 = BK + 8u;
// Loads per slice (4 k each) and per invocation.
const NA: u32 = BM * BK / 4u;
const NW: u32 = BN * BK / 4u;
const LA: u32 = (NA + T - 1u) / T;
const LW: u32 = (NW + T - 1u) / T;

// SPACK halves per array element: 1 (f16), 4 with V4 (vec4<f16>), 2 under EMU (u32 pairs). The subgroup-matrix loads
// take offsets and strides in array elements (halves / SPACK).
// DBUF: two sets of tiles (buffer c from halves c·A_STEP of As, c·W_STEP of Ws), one barrier per K slice.
#if DBUF
const NBUF: u32 = 2u;
#else
const NBUF: u32 = 1u;
#endif
#if EMU
// EMU keeps the lo tiles after the hi ones in As and Ws (halves A_LO and W_LO on, in each buffer): no branch in its
// multiply loop.
#if SPLIT
const A_LO: u32 = BM * SA;
#else
const A_LO: u32 = 0u;
#endif
#if WSPLIT
const W_LO: u32 = BN * SW;
#else
const W_LO: u32 = 0u;
#endif
const A_STEP: u32 = BM * SA + A_LO;
const W_STEP: u32 = BN * SW + W_LO;
var<workgroup> As: array<ST, NBUF * A_STEP / SPACK>;
var<workgroup> Ws: array<ST, NBUF * W_STEP / SPACK>;
#else
const A_STEP: u32 = BM * SA;
const W_STEP: u32 = BN * SW;
var<workgroup> As: array<ST, NBUF * A_STEP / SPACK>;
var<workgroup> Ws: array<ST, NBUF * W_STEP / SPACK>;
#if SPLIT
var<workgroup> Al: array<ST, NBUF * A_STEP / SPACK>; // lo parts of A (f16(a - hi)), laid out as As
#endif
#if WSPLIT
var<workgroup> Wl: array<ST, NBUF * W_STEP / SPACK>; // lo parts of f32 W
#endif
#endif
var<workgroup> Cs: array<f32, NSG * TM * TN>;
var<private> na: array<vec4<f32>, LA>;
// This invocation's lane in its subgroup (ACC16 and EMU).
var<private> lane: u32;
#if ACC16
// f16 results (no f16->f32 configuration): each K slice is summed in f16 result matrices, then folded into these f32
// sums (lane l holds elements l, l + SGMAX, ... of each TM×TN block; EPL of them), like gemm_tiles' F16_MATH.
const EPL: u32 = TM * TN / SGMAX;
var<private> acc32: array<f32, RM * RN * EPL>;
#endif
var<private> nw: array<WV, LW>;

#if EMU
// Stand-ins with the documented semantics (see the header); a left/right matrix is where it lies in As/Ws. The
// tiles hold the same f16 values two per u32 (f16_at reads one; A rounded by pack2x16float): lavapipe took ~15 s to
// compile the f16 conversions of the real staging, too slow for a test.
alias ST = u32;
const SPACK: u32 = 2u;
fn put_a(at: u32, v: vec4<f32>) {
#if SPLIT
  let h = hi16(v);
  let l = v - h;
  As[(A_LO + at) / 2u] = pack2x16float(l.xy);
  As[(A_LO + at) / 2u + 1u] = pack2x16float(l.zw);
#else
  let h = v;
#endif
  As[at / 2u] = pack2x16float(h.xy);
  As[at / 2u + 1u] = pack2x16float(h.zw);
}
fn put_w(at: u32, p: WV) {
#if W_F16
  Ws[at / 2u] = p.x;
  Ws[at / 2u + 1u] = p.y;
#else
#if WSPLIT
  let h = hi16(p);
  let l = p - h;
  Ws[(W_LO + at) / 2u] = pack2x16float(l.xy);
  Ws[(W_LO + at) / 2u + 1u] = pack2x16float(l.zw);
#else
  let h = p;
#endif
  Ws[at / 2u] = pack2x16float(h.xy);
  Ws[at / 2u + 1u] = pack2x16float(h.zw);
#endif
}
fn as_at(i: u32) -> f32 { return f16_at(As[i / 2u], i); }
fn ws_at(i: u32) -> f32 { return f16_at(Ws[i / 2u], i); }
const EMU_E: u32 = TM * TN / SGMAX;
fn fold_at(i: u32) -> f32 { return Cs[i]; }
struct Left { off: u32, stride: u32 }
struct Right { off: u32, stride: u32 }
struct Result { v: array<f32, EMU_E> }
// Offsets and strides in array elements (u32 pairs), as the real loads take them; kept in halves.
fn load_left(off: u32, stride: u32) -> Left { return Left(off * SPACK, stride * SPACK); } // row_major in As
fn load_right(off: u32, stride: u32) -> Right { return Right(off * SPACK, stride * SPACK); } // col_major in Ws
// One call per result matrix and step, the split terms included (all three products exact in f32, summed in f32 in
// another order than the hardware's one multiply-accumulate per term): one multiply loop for Mesa to compile
// instead of three (lavapipe took 9-13 s over the precise kernels otherwise).
fn mma_split(a: Left, b: Right, c: Result) -> Result { return mma(a, b, c); }
fn mma(a: Left, b: Right, c: Result) -> Result {
  var r = c;
  for (var q = 0u; q < EMU_E; q++) {
    let e = lane + q * SGMAX;
    let row = e / TN;
    let col = e % TN;
    var s = 0.0;
    for (var k = 0u; k < TK; k++) {
      let ia = a.off + row * a.stride + k;
      let iw = b.off + col * b.stride + k;
      s += as_at(ia) * ws_at(iw);
#if SPLIT
      s += as_at(A_LO + ia) * ws_at(iw); // the split terms in the same sum (mma_split)
#endif
#if WSPLIT
      s += as_at(ia) * ws_at(W_LO + iw);
#endif
    }
#if ACC16
    r.v[q] = unpack2x16float(pack2x16float(vec2<f32>(r.v[q] + s, 0.0))).x; // an f16 result: rounded
#else
    r.v[q] += s;
#endif
  }
  return r;
}
fn store_result(off: u32, c: Result, stride: u32) { // row_major into Cs
  for (var q = 0u; q < EMU_E; q++) {
    let e = lane + q * SGMAX;
    Cs[off + (e / TN) * stride + e % TN] = c.v[q];
  }
}
#else
#if V4
// The tiles as vec4<f16> (one 8-byte store per 4 halves instead of four 2-byte ones): needs Tint's relaxed array
// element rule for subgroupMatrixLoad (google/dawn d2749d8, Aug 2026; its validator message is in the npm 0.6.2
// binary), under which offsets and strides count vec4 (SPIR-V: units of the pointee type).
alias ST = vec4<f16>;
const SPACK: u32 = 4u;
fn put_a(at: u32, v: vec4<f32>) {
#if SPLIT
  let h = hi16(v);
  Al[at / 4u] = vec4<f16>(v - h);
  As[at / 4u] = vec4<f16>(h);
#else
  As[at / 4u] = vec4<f16>(v);
#endif
}
fn put_w(at: u32, p: WV) {
#if W_F16
  Ws[at / 4u] = bitcast<vec4<f16>>(p);
#else
#if WSPLIT
  let h = hi16(p);
  Wl[at / 4u] = vec4<f16>(p - h);
  Ws[at / 4u] = vec4<f16>(h);
#else
  Ws[at / 4u] = vec4<f16>(p);
#endif
#endif
}
#else
alias ST = f16;
const SPACK: u32 = 1u;
fn put_a(at: u32, v: vec4<f32>) {
#if SPLIT
  let h32 = hi16(v);
  let h = vec4<f16>(h32);
#else
  let h = vec4<f16>(v);
#endif
  As[at] = h.x;
  As[at + 1u] = h.y;
  As[at + 2u] = h.z;
  As[at + 3u] = h.w;
#if SPLIT
  let l = vec4<f16>(v - h32);
  Al[at] = l.x;
  Al[at + 1u] = l.y;
  Al[at + 2u] = l.z;
  Al[at + 3u] = l.w;
#endif
}
fn put_w(at: u32, p: WV) {
#if W_F16
  let h = vec4<f16>(bitcast<vec2<f16>>(p.x), bitcast<vec2<f16>>(p.y));
#else
#if WSPLIT
  let h32 = hi16(p);
  let h = vec4<f16>(h32);
#else
  let h = vec4<f16>(p);
#endif
#endif
  Ws[at] = h.x;
  Ws[at + 1u] = h.y;
  Ws[at + 2u] = h.z;
  Ws[at + 3u] = h.w;
#if WSPLIT
  let l = vec4<f16>(p - h32);
  Wl[at] = l.x;
  Wl[at + 1u] = l.y;
  Wl[at + 2u] = l.z;
  Wl[at + 3u] = l.w;
#endif
}
#endif
alias Left = subgroup_matrix_left<f16, TK, TM>;
alias Right = subgroup_matrix_right<f16, TN, TK>;
#if ACC16
alias Result = subgroup_matrix_result<f16, TN, TM>;
var<workgroup> Cs16: array<f16, NSG * TM * TN>;
fn fold_store(off: u32, c: Result, stride: u32) { subgroupMatrixStore<row_major>(&Cs16, off, c, stride); }
fn fold_at(i: u32) -> f32 { return f32(Cs16[i]); }
#else
alias Result = subgroup_matrix_result<f32, TN, TM>;
#endif
// Left: TM rows (m) × TK columns (k), row-major in As. Right: TK rows (k) × TN columns (n), column-major in Ws.
fn load_left(off: u32, stride: u32) -> Left { return subgroupMatrixLoad<Left, row_major>(&As, off, stride); }
fn load_right(off: u32, stride: u32) -> Right { return subgroupMatrixLoad<Right, col_major>(&Ws, off, stride); }
#if SPLIT
fn load_left_lo(off: u32, stride: u32) -> Left { return subgroupMatrixLoad<Left, row_major>(&Al, off, stride); }
#endif
#if WSPLIT
fn load_right_lo(off: u32, stride: u32) -> Right { return subgroupMatrixLoad<Right, col_major>(&Wl, off, stride); }
#endif
fn mma(a: Left, b: Right, c: Result) -> Result { return subgroupMatrixMultiplyAccumulate(a, b, c); }
fn store_result(off: u32, c: Result, stride: u32) { subgroupMatrixStore<row_major>(&Cs, off, c, stride); }
#endif

// v rounded to 11 significant bits (f16's precision), to nearest even, as f32: exactly an f16 value for
// 2^-14 <= |v| <= 65504 (below, the f16 conversion rounds it once more, by at most 2^-25). Integer operations, so that
// v - hi16(v) is the rounding residual whatever the compiler's float folding (see SPLIT in the header).
fn hi16(v: vec4<f32>) -> vec4<f32> {
  let u = bitcast<vec4<u32>>(v);
  return bitcast<vec4<f32>>((u + vec4<u32>(0xfffu) + ((u >> vec4<u32>(13u)) & vec4<u32>(1u))) & vec4<u32>(0xffffe000u));
}

// 4 consecutive k of row `row` of A (zero outside the matrix).
fn load_a(b: u32, row: u32, k: u32) -> vec4<f32> {
  if (row >= P.M || k >= P.K) { return vec4<f32>(0.0); }
  return A[(P.a_off + b * P.a_bs + row * P.lda + k) / 4u];
}
// 4 consecutive k of column n of W (zero outside the matrix).
fn load_w(b: u32, n: u32, k: u32) -> WV {
  if (n >= P.N || k >= P.K) { return WV(); }
  return W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 4u];
}
// Load q = t + i·T of a slice: row q / (BK/4), k 4·(q % (BK/4)) (of A; of W likewise with columns).
fn prefetch(b: u32, m0: u32, n0: u32, t: u32, k0: u32) {
  for (var i = 0u; i < LA; i++) {
    let q = t + i * T;
    na[i] = load_a(b, m0 + q / (BK / 4u), k0 + 4u * (q % (BK / 4u)));
  }
  for (var i = 0u; i < LW; i++) {
    let q = t + i * T;
    nw[i] = load_w(b, n0 + q / (BK / 4u), k0 + 4u * (q % (BK / 4u)));
  }
}

// The prefetched slice into workgroup buffer `buf`.
fn stash(t: u32, buf: u32) {
  for (var i = 0u; i < LA; i++) {
    let q = t + i * T;
    if (q < NA) {
      put_a(buf * A_STEP + (q / (BK / 4u)) * SA + 4u * (q % (BK / 4u)), na[i]);
    }
  }
  for (var i = 0u; i < LW; i++) {
    let q = t + i * T;
    if (q < NW) {
      put_w(buf * W_STEP + (q / (BK / 4u)) * SW + 4u * (q % (BK / 4u)), nw[i]);
    }
  }
}

@compute @workgroup_size(T)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
#if !EMU
  @builtin(subgroup_id) sid: u32,
  @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
#if EMU
  let sid = t / SGMAX;
  lane = t % SGMAX;
#else
  lane = sg_lane;
#endif
  let b = wg.z;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  // This subgroup's block of the tile (its first row of As and of Ws); subgroups past NSG (narrower than SGMAX) idle.
#if SG_FIXED
  let in_use = true; // subgroups are always SGMAX wide here: exactly NSG of them, no branch around the matrix work
#else
  let in_use = sid < NSG;
#endif
  let rows = (sid / SGX) * RM * TM;
  let cols = (sid % SGX) * RN * TN;
  var acc: array<array<Result, RN>, RM>;
  var a: array<Left, RM>; // declared in uniform control flow
#if !EMU
#if SPLIT
  var al: array<Left, RM>;
#endif
#endif
  prefetch(b, m0, n0, t, 0u);
  var cur = 0u; // the buffer of this slice (DBUF: alternating)
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    // One buffer: wait until every subgroup has multiplied the previous slice before overwriting it. DBUF: buffer cur
    // was last read two slices ago, before the previous slice's barrier, so only the barrier after the store remains.
#if !DBUF
    workgroupBarrier();
#endif
    stash(t, cur);
    workgroupBarrier();
    let more = k0 + BK < P.K;
    if (more) { prefetch(b, m0, n0, t, k0 + BK); }
    let ab = cur * A_STEP; // this slice's buffer (halves)
    let wb = cur * W_STEP;
    // UNROLL: every loop over result matrices expanded by the preprocessor (literal indices), so that no driver has to
    // unroll them to keep acc, a and al in registers (naga's rolled loops spill register arrays on NVIDIA: conv2d
    // 6659 -> 207 ms with #unroll on wgpu); otherwise the same loops rolled.
    if (in_use) {
#unroll q 0 BK/TK if UNROLL
      let kk = q * TK;
#unroll i 0 RM if UNROLL
      a[i] = load_left((ab + (rows + i * TM) * SA + kk) / SPACK, SA / SPACK);
#if !EMU
#if SPLIT
      al[i] = load_left_lo((ab + (rows + i * TM) * SA + kk) / SPACK, SA / SPACK);
#endif
#endif
#endunroll
#unroll j 0 RN if UNROLL
      let w = load_right((wb + (cols + j * TN) * SW + kk) / SPACK, SW / SPACK);
#if !EMU
#if WSPLIT
      let wl = load_right_lo((wb + (cols + j * TN) * SW + kk) / SPACK, SW / SPACK);
#endif
#endif
#unroll i 0 RM if UNROLL
#if EMU
      acc[i][j] = mma_split(a[i], w, acc[i][j]);
#else
      // The small terms first (SPLIT: lo·w, WSPLIT: hi·w_lo), then hi·w, into the same f32 result.
#if SPLIT
      acc[i][j] = mma(al[i], w, acc[i][j]);
#endif
#if WSPLIT
      acc[i][j] = mma(a[i], wl, acc[i][j]);
#endif
      acc[i][j] = mma(a[i], w, acc[i][j]);
#endif
#endunroll
#endunroll
#endunroll
    }
#if DBUF
    cur = 1u - cur;
#endif
#if ACC16
    // The slice's f16 sums into f32 (only with fixed-size subgroups: every subgroup is in use), then zero again.
    for (var i = 0u; i < RM; i++) {
      for (var j = 0u; j < RN; j++) {
        workgroupBarrier();
#if EMU
        store_result(sid * TM * TN, acc[i][j], TN);
#else
        fold_store(sid * TM * TN, acc[i][j], TN);
#endif
        workgroupBarrier();
        for (var q = 0u; q < EPL; q++) {
          acc32[(i * RN + j) * EPL + q] += fold_at(sid * TM * TN + lane + q * SGMAX);
        }
        acc[i][j] = Result();
      }
    }
#endif
  }
#if ACC16
  for (var i = 0u; i < RM; i++) {
    for (var j = 0u; j < RN; j++) {
      for (var q = 0u; q < EPL; q++) {
        let e = lane + q * SGMAX;
        let m = m0 + rows + i * TM + e / TN;
        let n = n0 + cols + j * TN + e % TN;
        if (m < P.M && n < P.N) { store_c(b, m, n, acc32[(i * RN + j) * EPL + q]); }
      }
    }
  }
#else
  // Each result matrix through Cs (subgroup s at s·TM·TN, row-major TM×TN), then the workgroup writes C.
#unroll i 0 RM if UNROLL
#unroll j 0 RN if UNROLL
  workgroupBarrier();
  if (in_use) { store_result(sid * TM * TN, acc[i][j], TN); }
  workgroupBarrier();
  for (var e = t; e < NSG * TM * TN; e += T) {
    let s = e / (TM * TN);
    let r = (e % (TM * TN)) / TN;
    let m = m0 + (s / SGX) * RM * TM + i * TM + r;
    let n = n0 + (s % SGX) * RN * TN + j * TN + e % TN;
    if (m < P.M && n < P.N) { store_c(b, m, n, Cs[e]); }
  }
#endunroll
#endunroll
#endif
}
