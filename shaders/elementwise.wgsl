// Elementwise ops on f32 tensors; the op is chosen by a define:
// ADD (out = a + b), MUL (a * b), SCALE (a * P.s), GELU, SILU, COPY.
#include "common.wgsl"

struct Params { n: u32, n2: u32, s: f32, a_off: u32, b_off: u32, o_off: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
#if BINARY
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= P.n) { return; }
  let a = A[P.a_off + i];
#if ADD
  O[P.o_off + i] = a + B[P.b_off + i];
#elif MUL
  O[P.o_off + i] = a * B[P.b_off + i];
#elif SCALE
  O[P.o_off + i] = a * P.s;
#elif GELU
  O[P.o_off + i] = gelu_sat(a);
#elif SILU
  O[P.o_off + i] = silu(a);
#elif COPY
  O[P.o_off + i] = a;
#endif
}
