// The interface every weight container implements (converted .safetensors, PyTorch .pt): models load through it.
// Not a tensor library: it hands out raw little-endian bytes one tensor at a time, so a checkpoint never sits whole in the JS heap.

export type WeightDType = "f16" | "bf16" | "f32" | "i64" | "i32" | "u8" | "i8";

export interface WeightInfo {
  name: string;
  dtype: WeightDType;
  shape: number[];
  /** Bytes of the (contiguous, little-endian) data. */
  byteLength: number;
}

export interface WeightSource {
  /** Where the weights come from (a path), for error messages. */
  readonly origin: string;
  names(): string[];
  /** Metadata of one tensor; throws an Error naming the origin and the key when absent. */
  info(name: string): WeightInfo;
  has(name: string): boolean;
  /** The tensor's bytes, contiguous row-major, little-endian. */
  read(name: string): Promise<Uint8Array>;
  /** Reads `byteLength` bytes starting `byteOffset` bytes into the tensor (for streaming large tensors in parts). */
  readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array>;
  close(): void;
  /**
   * Random sources only (benchmarks at published sizes): the tensor is generated on the GPU from this seeded
   * uniform spec (values offset + scale·u, u in [−1, 1); src/kernels/fill.ts) instead of read; the loaders use it.
   */
  randomFill?(name: string): { seed: number; scale: number; offset: number };
}
