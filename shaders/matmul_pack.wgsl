// Repacks a matrix operand W (N rows of K, f32 or packed f16) for the "windows" matmul schedule
// (src/kernels/matmul_windows.ts): 32-bit words ordered [chunk][group of 8 rows][step][lane 0..7][word 0..3],
// where a chunk holds kcw words of each row and a step 4 words (4 f32 or 8 f16 values). The 8 lanes of one SIMD
// group of the matmul then read 128 contiguous bytes per step. Rows past N (the last groups) are zero.
// Row n, word kw is read at w_off_w + n·ldw_w + kw, or with TRANS_W (W stored [K, N], f32 only) at
// w_off_w + kw·ldw_w + n. Grid: x = row (64 per workgroup), y = step, z = chunk; 4 words per invocation, no integer
// division (llvmpipe divides one lane at a time).
// Split output: one dispatch may cover only the groups [row0/8, row_end/8) of one chunk (z = chunk - chunk0), with O
// bound from vec4 index o_base, so that no binding exceeds the adapter's limit (packed copies of row-chunked tables).
// I8: W holds int8 weights (four per word, 4 words = 16 values per step) with f32 scales S (one per `group`
// elements of the flat array); each group of 8 rows of a chunk starts with P.ss scale steps (lane l, word j of scale
// step t = the scale of K-group 4t+j of row 8g+l in this chunk, 0 past the chunk's kgroups) before its weight steps.

struct Params {
  n: u32, ldw_w: u32, w_off_w: u32, kcw: u32, steps: u32, groups: u32, total: u32, chunks: u32,
  ss: u32, kgroups: u32, ldw_s: u32, s_off: u32,
  row0: u32, row_end: u32, chunk0: u32, o_base: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
#if I8
@group(0) @binding(2) var<storage, read> S: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<vec4<u32>>;
#else
@group(0) @binding(2) var<storage, read_write> O: array<vec4<u32>>;
#endif

fn word(row: u32, kw: u32) -> u32 {
#if TRANS_W
  return W[P.w_off_w + kw * P.ldw_w + row];
#else
  return W[P.w_off_w + row * P.ldw_w + kw];
#endif
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + P.row0;
  let step = gid.y;
  let chunk = gid.z + P.chunk0;
  if (row >= P.row_end) {
    return;
  }
  let at = ((chunk * P.groups + (row >> 3u)) * (P.steps + P.ss) + step) * 8u + (row & 7u) - P.o_base;
  var v = vec4<u32>(0u);
#if I8
  if (row < P.n && step < P.ss) {
    let g0 = step * 4u;
    let sb = P.s_off + row * P.ldw_s + chunk * P.kgroups + g0;
    for (var j = 0u; j < 4u; j++) {
      if (g0 + j < P.kgroups) { v[j] = S[sb + j]; }
    }
  }
  if (row < P.n && step >= P.ss) {
    let kw = chunk * P.kcw + (step - P.ss) * 4u;
#else
  if (row < P.n) {
    let kw = chunk * P.kcw + step * 4u;
#endif
    v = vec4<u32>(word(row, kw), word(row, kw + 1u), word(row, kw + 2u), word(row, kw + 3u));
  }
  O[at] = v;
}
