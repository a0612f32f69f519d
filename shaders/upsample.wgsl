// Nearest-neighbour ×2 upsampling of NCHW f32 planes: out[c, y, x] = in[c, y/2, x/2] (F.interpolate, "nearest").
// Not a general resize: the decoder's Upsample can also fuse this into conv2d (UPSAMPLE define).
struct Params { planes: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let ow = 2u * P.w;
  let oplane = 4u * P.h * P.w;
  if (i >= P.planes * oplane) { return; }
  let c = i / oplane;
  let r = i - c * oplane;
  let y = r / ow;
  let x = r - y * ow;
  O[i] = X[c * P.h * P.w + (y >> 1u) * P.w + (x >> 1u)];
}
