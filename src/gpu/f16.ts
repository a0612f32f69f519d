// Conversions between float32 values and IEEE half-precision bits, for packing f16 tensors.
// Not a numeric library: rounding is round-to-nearest-even as the runtime's Float16Array does it.

/** float32 values → f16 bit patterns (round to nearest even). */
export function f32ToF16Bits(src: ArrayLike<number>): Uint16Array {
  const h = new Float16Array(src.length);
  for (let i = 0; i < src.length; i++) h[i] = src[i];
  return new Uint16Array(h.buffer);
}

/** f16 bit patterns → float32 values. */
export function f16BitsToF32(src: Uint16Array): Float32Array {
  const h = new Float16Array(src.buffer, src.byteOffset, src.length);
  return Float32Array.from(h);
}

/** bfloat16 bit patterns → float32 values (bf16 is the top half of an f32). */
export function bf16BitsToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}
