// 2×2 average pooling, stride 2, of NCHW f32 planes (F.avg_pool2d(x, 2, 2): odd trailing rows/columns are dropped).
// Not a general pooling op: no padding, no other window sizes.
// Planes above the max storage binding run in plane blocks (src/kernels/pool.ts): X and O bound from x_off / o_off.
struct Params { planes: u32, h: u32, w: u32, x_off: u32, o_off: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let oh = P.h / 2u;
  let ow = P.w / 2u;
  if (i >= P.planes * oh * ow) { return; }
  let c = i / (oh * ow);
  let r = i - c * oh * ow;
  let y = r / ow;
  let x = r - y * ow;
  let b = P.x_off + c * P.h * P.w + 2u * y * P.w + 2u * x;
  // PyTorch sums the window in row order, then divides by 4.
  O[P.o_off + i] = (((X[b] + X[b + 1u]) + X[b + P.w]) + X[b + P.w + 1u]) / 4.0;
}
