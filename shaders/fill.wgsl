// Seeded uniform fill (random weights made on the GPU): element e = P.base + i of a tensor gets
// offset + scale · u, u = (h >> 8) · 2^-23 − 1 ∈ [−1, 1), h = lowbias32(e + lowbias32(seed)). The index is the
// element's position in the whole logical tensor (P.base = its first element), so row blocks of one weight hold the
// same values as the unsplit weight. F16: one invocation per word of two halves (low half = even element).
// I8: one invocation per word of four int8 codes round(value) clamped to ±127 (byte j = element 4w + j).
struct Params { n: u32, seed: u32, scale: f32, offset: f32, base: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> O: array<u32>;

fn lowbias32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn value(i: u32, key: u32) -> f32 {
  let h = lowbias32(P.base + i + key);
  let u = f32(h >> 8u) * (1.0 / 8388608.0) - 1.0;
  return P.offset + P.scale * u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * 256u;
  let key = lowbias32(P.seed);
#if F16
  let i = 2u * w;
  if (i >= P.n) { return; }
  var hi = 0.0;
  if (i + 1u < P.n) { hi = value(i + 1u, key); }
  O[w] = pack2x16float(vec2<f32>(value(i, key), hi));
#elif I8
  let i = 4u * w;
  if (i >= P.n) { return; }
  var word = 0u;
  for (var j = 0u; j < 4u; j++) {
    if (i + j < P.n) {
      let q = i32(clamp(round(value(i + j, key)), -127.0, 127.0));
      word |= (bitcast<u32>(q) & 0xffu) << (8u * j);
    }
  }
  O[w] = word;
#else
  if (w >= P.n) { return; }
  O[w] = bitcast<u32>(value(w, key));
#endif
}
