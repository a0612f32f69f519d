// Helpers of the "windows" convolution on CPU adapters (src/kernels/conv2d.ts): the convolution is run as the
// windows matmul C[cout, pixels] = Wconv[cout, K] · im2col(x)[K, pixels] with K = cin·KS·KS.
//   im2col_pack: writes im2col(x) for output pixels [p0, p0 + np) straight into the packed operand layout of
//     src/kernels/matmul_windows.ts ([chunk][group of 8 pixels][step][lane][4 words], K split into chunks of kc),
//     reading the input like conv2d.wgsl (stride, pad, logical size, nearest ×2 upsampling; zero outside).
//   to_f32: the f16 (packed pairs) weights as f32, the A operand of the windows matmul.
// One invocation per output word; TO_F32 selects the second kernel.

struct Params {
  cin: u32, h: u32, w: u32, lh: u32, lw: u32, ow: u32, ks: u32, stride: u32, pad: u32, up: u32,
  p0: u32, np: u32, kc: u32, steps: u32, groups: u32, total: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;

#if !TO_F32
@group(0) @binding(1) var<storage, read> X: array<f32>;

@compute @workgroup_size(256)
fn im2col_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
  let q = group * 8u + lane; // pixel inside the block
  let k = chunk * P.kc + step * 4u + e;
  var v = 0.0;
  if (q < P.np) {
    let p = P.p0 + q;
    let oy = p / P.ow;
    let ox = p % P.ow;
    let kk = P.ks * P.ks;
    let ci = k / kk;
    let r = k % kk;
    let iy = i32(oy * P.stride + r / P.ks) - i32(P.pad);
    let ix = i32(ox * P.stride + r % P.ks) - i32(P.pad);
    if (iy >= 0 && ix >= 0 && iy < i32(P.lh) && ix < i32(P.lw)) {
      v = X[ci * P.h * P.w + (u32(iy) >> P.up) * P.w + (u32(ix) >> P.up)];
    }
  }
  O[i] = v;
}

#else
@group(0) @binding(1) var<storage, read> H: array<u32>;

@compute @workgroup_size(256)
fn to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.total) {
    return;
  }
  let pair = unpack2x16float(H[i >> 1u]);
  O[i] = select(pair.x, pair.y, (i & 1u) == 1u);
}
#endif
