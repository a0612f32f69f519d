// Workgroup reductions for row kernels (one 64-invocation workgroup per row): every invocation passes its partial,
// all get the total. Shared by layernorm.wgsl and softmax.wgsl; not a general reduction library.

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn reduce_max(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
