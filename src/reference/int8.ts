// Plain TypeScript twin of the int8 weight dequantisation the matmul kernels do in registers.

/** w[i] = q[i]·scales[floor(i / group)] for the flat row-major array. */
export function dequantizeInt8Ref(q: Int8Array, scales: Float32Array, group: number): Float32Array {
  const w = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) w[i] = q[i] * scales[Math.floor(i / group)];
  return w;
}
