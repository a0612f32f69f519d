// Repacks a weight W [N, K] (rows of ldw elements, f32 or packed f16) for the "windows" matmul schedule
// (src/kernels/matmul_windows.ts): 32-bit words ordered [chunk][group of 8 rows][step][lane 0..7][word 0..3],
// where a chunk holds KcW words of each row and a step 4 words (4 f32 or 8 f16 values). The 8 lanes of one SIMD
// group of the matmul then read 128 contiguous bytes per step. Rows past N (the last group) are zero.
// One invocation per output word.

struct Params { n: u32, ldw_w: u32, w_off_w: u32, kcw: u32, steps: u32, groups: u32, total: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.total) {
    return;
  }
  let e = i & 3u;
  let lane = (i >> 2u) & 7u;
  let rest = i >> 5u; // (chunk · groups + group) · steps + step
  let step = rest % P.steps;
  let cg = rest / P.steps;
  let group = cg % P.groups;
  let chunk = cg / P.groups;
  let row = group * 8u + lane;
  var v = 0u;
  if (row < P.n) {
    v = W[P.w_off_w + row * P.ldw_w + chunk * P.kcw + step * 4u + e];
  }
  O[i] = v;
}
