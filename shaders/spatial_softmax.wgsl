// Row softmax of an f32 [rows, n] matrix in place: the attention weights of icetk's single-head AttnBlock.
// Not the transformer softmax (shaders/softmax.wgsl, CogLM's, with masks and log-space weights): a plain variant.
struct Params { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> S: array<f32>;

var<workgroup> red: array<f32, 256>;

// One workgroup per row.
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= P.rows) { return; }
  let base = row * P.n;
  var m = -3.402823e38;
  for (var i = li; i < P.n; i += 256u) { m = max(m, S[base + i]); }
  red[li] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var t = 0.0;
  for (var i = li; i < P.n; i += 256u) {
    let e = exp(S[base + i] - mx);
    S[base + i] = e;
    t += e;
  }
  red[li] = t;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = li; i < P.n; i += 256u) { S[base + i] = S[base + i] * inv; }
}
