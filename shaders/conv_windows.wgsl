// Helpers of the "windows" convolution on CPU adapters (src/kernels/conv2d.ts): the convolution is run as the
// windows matmul C[cout, pixels] = Wconv[cout, K] · im2col(x)[K, pixels] with K = cin·KS·KS.
//   im2col_pack: writes im2col(x) for output pixels [p0, p0 + np) straight into the packed operand layout of
//     src/kernels/matmul_windows.ts ([chunk][group of 8 pixels][step][lane][4 words], K split into chunks of kc),
//     reading the input like conv2d.wgsl (stride, pad, logical size, nearest ×2 upsampling; zero outside).
//   to_f32: the f16 (packed pairs) weights as f32, the A operand of the windows matmul.
// TO_F32 selects the second kernel (one invocation per word).

struct Params {
  cin: u32, h: u32, w: u32, lh: u32, lw: u32, ow: u32, ks: u32, stride: u32, pad: u32, up: u32,
  p0: u32, np: u32, kc: u32, steps: u32, groups: u32, total: u32,
  x_off: u32, // element of stored row 0 of channel 0 (wraps: X may hold a row band, h its rows)
}
@group(0) @binding(0) var<uniform> P: Params;

#if !TO_F32
@group(0) @binding(2) var<storage, read_write> O: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> X: array<f32>;

fn tap(ci: u32, ky: u32, kx: u32, y0: i32, x0: i32) -> f32 {
  let iy = y0 + i32(ky);
  let ix = x0 + i32(kx);
  if (iy >= 0 && ix >= 0 && iy < i32(P.lh) && ix < i32(P.lw)) {
    return X[P.x_off + ci * P.h * P.w + (u32(iy) >> P.up) * P.w + (u32(ix) >> P.up)];
  }
  return 0.0;
}

fn adv(ci: ptr<function, u32>, ky: ptr<function, u32>, kx: ptr<function, u32>) {
  *kx += 1u;
  if (*kx == P.ks) {
    *kx = 0u;
    *ky += 1u;
    if (*ky == P.ks) {
      *ky = 0u;
      *ci += 1u;
    }
  }
}

// Grid: x = pixel inside the block (64 per workgroup), y = step, z = K chunk; each invocation writes the 4 words
// of its step (k = chunk·kc + 4·step + e). No integer division per word: llvmpipe runs u32 / and % one lane at a
// time, so (ci, ky, kx) is advanced incrementally over e and only the pixel's (oy, ox) is divided out.
@compute @workgroup_size(64)
fn im2col_pack(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x; // pixel inside the block
  let step = gid.y;
  let chunk = gid.z;
  if (q >= P.groups * 8u) {
    return;
  }
  let at = ((chunk * P.groups + (q >> 3u)) * P.steps + step) * 8u + (q & 7u); // vec4 index
  if (q >= P.np) {
    O[at] = vec4<f32>(0.0);
    return;
  }
  let p = P.p0 + q;
  let oy = p / P.ow;
  let ox = p - oy * P.ow;
  let k0 = chunk * P.kc + step * 4u;
  let kk = P.ks * P.ks;
  var ci = k0 / kk;
  let r = k0 - ci * kk;
  var ky = r / P.ks;
  var kx = r - ky * P.ks;
  let y0 = i32(oy * P.stride) - i32(P.pad);
  let x0 = i32(ox * P.stride) - i32(P.pad);
  // The 4 words, unrolled (a dynamic component index would be a select chain per word).
  let v0 = tap(ci, ky, kx, y0, x0);
  adv(&ci, &ky, &kx);
  let v1 = tap(ci, ky, kx, y0, x0);
  adv(&ci, &ky, &kx);
  let v2 = tap(ci, ky, kx, y0, x0);
  adv(&ci, &ky, &kx);
  let v3 = tap(ci, ky, kx, y0, x0);
  let v = vec4<f32>(v0, v1, v2, v3);
  O[at] = v; // one store of 4 words: one per-lane loop instead of four
}

#else
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<storage, read> H: array<u32>;

@compute @workgroup_size(256)
fn to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.total) {
    return;
  }
  // Pieces of a weight above the max storage binding: H bound from element x_off, O from element p0.
  let j = P.x_off + i;
  let pair = unpack2x16float(H[j >> 1u]);
  O[P.p0 + i] = select(pair.x, pair.y, (j & 1u) == 1u);
}
#endif
