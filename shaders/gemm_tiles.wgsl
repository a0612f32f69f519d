#if F16_MATH
enable f16;
#endif
// Register-blocked GEMM for GPUs: C = alpha·A·Wᵀ (+bias) (GELU) (+R), A [M, K] f32, W [N, K] f16 (packed) or f32,
// strided batches (wg.z). A workgroup of 16×16 invocations owns a 128×128 tile of C; each invocation accumulates an
// 8×8 block in registers. K advances in slices of 8 stored k-major in workgroup memory, so the inner loop reads 2
// vec4 of A and 2 of W per k (64 multiply-adds per 4 loads); the next slice's A and W (one vec4 of A and 4 weights
// per invocation) are loaded into registers while the current one is multiplied out.
// Variants by define:
//   DBUF      two workgroup buffers (true double buffering): the prefetched slice is stored into the other buffer
//             while this one is read, one barrier per slice instead of two (16 KiB of workgroup memory).
//   F16_MATH  (shader-f16) tiles held as f16 (A rounded to f16 when stored), the products of one slice summed in
//             f16 and added to f32 accumulators after each slice: f16 arithmetic, f32 accumulation over K (the
//             original runs the model in fp16). Needs the `shader-f16` feature.
// Needs K, lda, ldw and the offsets multiples of 4. The launcher is src/kernels/gemm.ts; CPU twin
// src/reference/matmul.ts.
#include "common.wgsl"

struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldw: u32, ldc: u32, a_off: u32, w_off: u32, c_off: u32,
  a_bs: u32, w_bs: u32, c_bs: u32, alpha: f32, bias_off: u32, r_off: u32, ldr: u32, r_bs: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
#if W_F16
@group(0) @binding(2) var<storage, read> W: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
#endif
#include "matmul_epilogue.wgsl"

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;
// One slice: 8 k × 128 rows = 256 vec4 per operand.
const SLICE: u32 = 256u;
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
var<workgroup> As: array<vec4<ST>, SLICE * NBUF>;
var<workgroup> Ws: array<vec4<ST>, SLICE * NBUF>;
var<private> acc: array<vec4<f32>, 16>; // 8 rows × 2 vec4 of columns

// 4 consecutive k of row `row` of A (zero outside the matrix).
fn load_a(b: u32, row: u32, k: u32) -> vec4<f32> {
  if (row >= P.M || k >= P.K) { return vec4<f32>(0.0); }
  return A[(P.a_off + b * P.a_bs + row * P.lda + k) / 4u];
}
fn load_w(b: u32, n: u32, k: u32) -> vec4<f32> {
  if (n >= P.N || k >= P.K) { return vec4<f32>(0.0); }
#if W_F16
  let p = W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 4u];
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
#else
  return W[(P.w_off + b * P.w_bs + n * P.ldw + k) / 4u];
#endif
}

// Scatters a loaded slice k-major into buffer `base`: element (k, row) at [base + k·32 + row/4][row%4].
fn stash(base: u32, lr: u32, lk: u32, na: vec4<f32>, nw: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) {
    let idx = base + (lk + j) * 32u + lr / 4u;
    As[idx][lr % 4u] = ST(na[j]);
    Ws[idx][lr % 4u] = ST(nw[j]);
  }
}

// acc += the slice in buffer `base` (rows ty·8.., columns tx·8..).
fn multiply(base: u32, tx: u32, ty: u32) {
#if F16_MATH
  var s: array<vec4<f16>, 16>; // this slice's sums, in f16
#else
  var s = acc;
#endif
  for (var k = 0u; k < BK; k++) {
    let a0 = As[base + k * 32u + ty * 2u];
    let a1 = As[base + k * 32u + ty * 2u + 1u];
    let w0 = Ws[base + k * 32u + tx * 2u];
    let w1 = Ws[base + k * 32u + tx * 2u + 1u];
    s[0] += a0.x * w0; s[1] += a0.x * w1;
    s[2] += a0.y * w0; s[3] += a0.y * w1;
    s[4] += a0.z * w0; s[5] += a0.z * w1;
    s[6] += a0.w * w0; s[7] += a0.w * w1;
    s[8] += a1.x * w0; s[9] += a1.x * w1;
    s[10] += a1.y * w0; s[11] += a1.y * w1;
    s[12] += a1.z * w0; s[13] += a1.z * w1;
    s[14] += a1.w * w0; s[15] += a1.w * w1;
  }
#if F16_MATH
  for (var i = 0u; i < 16u; i++) { acc[i] += vec4<f32>(s[i]); }
#else
  acc = s;
#endif
}

fn store(b: u32, m: u32, n: u32, v: f32) {
  if (m < P.M && n < P.N) { store_c(b, m, n, v); }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = wg.z;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let t = lid.y * 16u + lid.x;
  // Loader role: row (of A) / column (of W) t / 2, k offset 4·(t % 2) within the slice.
  let lr = t / 2u;
  let lk = 4u * (t % 2u);
  var na = load_a(b, m0 + lr, lk);
  var nw = load_w(b, n0 + lr, lk);
#if DBUF
  stash(0u, lr, lk, na, nw);
  workgroupBarrier();
  var cur = 0u;
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    let more = k0 + BK < P.K;
    if (more) {
      na = load_a(b, m0 + lr, k0 + BK + lk);
      nw = load_w(b, n0 + lr, k0 + BK + lk);
    }
    multiply(cur * SLICE, lid.x, lid.y);
    // The other buffer was last read in the previous slice, which every invocation finished before the barrier.
    if (more) { stash((1u - cur) * SLICE, lr, lk, na, nw); }
    workgroupBarrier();
    cur = 1u - cur;
  }
#else
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    workgroupBarrier();
    stash(0u, lr, lk, na, nw);
    workgroupBarrier();
    if (k0 + BK < P.K) {
      na = load_a(b, m0 + lr, k0 + BK + lk);
      nw = load_w(b, n0 + lr, k0 + BK + lk);
    }
    multiply(0u, lid.x, lid.y);
  }
#endif
  let rm = m0 + lid.y * 8u;
  let cn = n0 + lid.x * 8u;
  for (var r = 0u; r < 8u; r++) {
    let lo = acc[2u * r];
    let hi = acc[2u * r + 1u];
    store(b, rm + r, cn + 0u, lo.x);
    store(b, rm + r, cn + 1u, lo.y);
    store(b, rm + r, cn + 2u, lo.z);
    store(b, rm + r, cn + 3u, lo.w);
    store(b, rm + r, cn + 4u, hi.x);
    store(b, rm + r, cn + 5u, hi.y);
    store(b, rm + r, cn + 6u, hi.z);
    store(b, rm + r, cn + 7u, hi.w);
  }
}
