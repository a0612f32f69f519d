// GPU tensors: a shape, a dtype and a byte range of a GPUBuffer; f16 is stored packed two per u32.
// Not an autograd or lazy-evaluation object: kernels read and write tensors explicitly (src/kernels/).

/**
 * Element types. `f16` is packed two per 32-bit word so shaders need no `shader-f16`; `i8` (weight-only int8
 * quantisation) four per word, and an `i8` weight carries its per-group scales (`Tensor.quant`).
 */
export type DType = "f32" | "f16" | "i32" | "u32" | "i8";

/** Bytes one element takes in memory (f16: 2, packed in pairs; i8: 1, packed in fours). */
export function dtypeBytes(dtype: DType): number {
  return dtype === "f16" ? 2 : dtype === "i8" ? 1 : 4;
}

/**
 * Scales of an int8 weight [N,K]: element i of the flat row-major array dequantises to q[i]·scales[floor(i/group)]
 * (groups of `group` consecutive elements along K; K and the row stride are multiples of `group`).
 */
export interface Int8Quant {
  scales: Tensor;
  group: number;
}

/** Bytes a buffer needs for `n` elements of `dtype`, rounded up to whole 32-bit words. */
export function storageBytes(n: number, dtype: DType): number {
  return Math.ceil((n * dtypeBytes(dtype)) / 4) * 4;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let nextTensorId = 1;

/** A view of `byteLength` bytes at `byteOffset` of `buffer`, interpreted as `shape`/`dtype`. */
export class Tensor {
  readonly id = nextTensorId++;
  #released = false;
  /** Set on `i8` weights only: the per-group f32 scales (released with the tensor). */
  quant?: Int8Quant;
  /** The tensor owning the buffer (views point at it; the owner at itself). */
  #root: Tensor = this;
  /** Tensors derived from this one (e.g. a kernel's repacked copy of a weight), released with it. */
  #derived: Tensor[] = [];
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly byteOffset = 0,
    private readonly onRelease?: (t: Tensor) => void,
  ) {}

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** Bytes occupied (whole 32-bit words). */
  get byteLength(): number {
    return storageBytes(this.size, this.dtype);
  }

  get released(): boolean {
    return this.#released;
  }

  /**
   * A view of `shape` at byte `byteOffset` of this tensor's buffer (an aligned row block, GpuContext.alignedView):
   * same owner, so copies attached through it are released with the owner.
   */
  view(shape: readonly number[], byteOffset: number): Tensor {
    const t = new Tensor(this.buffer, shape, this.dtype, byteOffset);
    t.#root = this.#root;
    return t;
  }

  /** A tensor of another shape over the same bytes (same element count). */
  reshape(shape: readonly number[]): Tensor {
    const fixed = [...shape];
    const neg = fixed.indexOf(-1);
    if (neg >= 0) fixed[neg] = this.size / numel(fixed.filter((_, i) => i !== neg));
    if (numel(fixed) !== this.size) {
      throw new Error(`Cannot reshape tensor [${this.shape}] (${this.size} elements) to [${shape}]`);
    }
    const t = new Tensor(this.buffer, fixed, this.dtype, this.byteOffset);
    t.quant = this.quant;
    t.#root = this.#root;
    return t;
  }

  /**
   * Ties `derived` (a cached copy made from this tensor, e.g. a weight's repacked or widened form) to the buffer's
   * owner: releasing the owner releases it too, so unloading a model leaves none of its copies in the pool.
   */
  attach(derived: Tensor): void {
    this.#root.#derived.push(derived);
  }

  /** Returns the buffer to its pool (pooled tensors) or destroys it; views are never released. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (!this.onRelease) return; // a view: the owner releases the buffer (and the scales)
    this.onRelease(this);
    this.quant?.scales.release();
    for (const d of this.#derived.splice(0)) d.release();
  }
}

/**
 * A 2-D weight stored as row blocks, each within the adapter's max storage binding size
 * (a real CogLM embedding table is ~0.9 GB; lavapipe binds at most 128 MiB).
 */
export interface RowChunkedTensor {
  rows: number;
  cols: number;
  dtype: DType;
  chunks: { row0: number; rows: number; tensor: Tensor }[];
}
