// Shared declarations for every kernel. Conventions (see shaders/README.md):
// binding 0 = `P: Params` uniform (declared by each shader), bindings 1.. = storage buffers.
// f16 tensors are arrays of u32 holding two halves each (element i in word i>>1, low half first).

fn f16_at(w: u32, i: u32) -> f32 {
  let p = unpack2x16float(w);
  return select(p.x, p.y, (i & 1u) == 1u);
}

// SwissArmyTransformer v0.2's gelu: 0.5·x·(1 + tanh(0.7978845608028654·x·(1 + 0.044715·x²)))
fn gelu_sat(x: f32) -> f32 {
  let inner = 0.7978845608028654 * x * (1.0 + 0.044715 * x * x);
  // tanh via exp, clamped so large |x| stays finite
  let t = clamp(inner, -15.0, 15.0);
  let e = exp(2.0 * t);
  return 0.5 * x * (1.0 + (e - 1.0) / (e + 1.0));
}

fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}

const NEG_INF: f32 = -3.402823e38;
