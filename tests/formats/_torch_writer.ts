// Test-only writers: a pickle opcode assembler and a torch.save-format checkpoint writer (zip + pickle + storages),
// so tests can build checkpoints with views, strides, dtypes and hostile content without PyTorch.
import { TORCH_DTYPE_BYTES, type TorchDType } from "../../src/formats/pickle.ts";
import { writeZip, type ZipWriteEntry } from "../../src/formats/zip.ts";

/** Assembles pickle bytes opcode by opcode. */
export class PickleBuilder {
  #parts: number[] = [];
  #enc = new TextEncoder();
  op(code: number | string): this {
    this.#parts.push(typeof code === "string" ? code.charCodeAt(0) : code);
    return this;
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.#parts.push(bytes[i]);
    return this;
  }
  u8(v: number): this {
    return this.raw([v & 0xff]);
  }
  u16(v: number): this {
    return this.raw([v & 0xff, (v >> 8) & 0xff]);
  }
  u32(v: number): this {
    return this.raw([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  proto(v = 2): this {
    return this.op(0x80).u8(v);
  }
  str(s: string): this {
    const b = this.#enc.encode(s);
    return this.op("X").u32(b.length).raw(b);
  }
  shortStr(s: string): this {
    const b = this.#enc.encode(s);
    return this.op(0x8c).u8(b.length).raw(b);
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op("K").u8(v);
    if (v >= 0 && v < 65536) return this.op("M").u16(v);
    if (v >= -(2 ** 31) && v < 2 ** 31) return this.op("J").u32(v >>> 0);
    // LONG1, little-endian two's complement
    const bytes: number[] = [];
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) {
      bytes.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this.op(0x8a).u8(8).raw(bytes);
  }
  global(module: string, name: string): this {
    return this.op("c").raw(this.#enc.encode(`${module}\n${name}\n`));
  }
  tuple(items: (() => void)[]): this {
    if (items.length === 0) return this.op(")");
    if (items.length <= 3) {
      items.forEach((f) => f());
      return this.op(0x84 + items.length);
    }
    this.op("(");
    items.forEach((f) => f());
    return this.op("t");
  }
  ints(vals: number[]): this {
    return this.tuple(vals.map((v) => () => this.int(v)));
  }
  stop(): this {
    return this.op(".");
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

export const STORAGE_NAMES: Record<TorchDType, string> = {
  f16: "HalfStorage",
  bf16: "BFloat16Storage",
  f32: "FloatStorage",
  f64: "DoubleStorage",
  i64: "LongStorage",
  i32: "IntStorage",
  i16: "ShortStorage",
  i8: "CharStorage",
  u8: "ByteStorage",
  bool: "BoolStorage",
};

export interface FakeStorage {
  key: string;
  dtype: TorchDType;
  numel: number;
  /** Raw little-endian bytes, or a producer of exactly numel × element-size bytes. */
  data?: Uint8Array;
  produce?: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<void>;
}

export interface FakeTensor {
  name: string;
  storage: string;
  shape: number[];
  /** Default: contiguous. */
  stride?: number[];
  offset?: number;
}

export interface CheckpointSpec {
  storages: FakeStorage[];
  tensors: FakeTensor[];
  /** Wrap as {'module': sd, ...DeepSpeed-like extras} (default true). */
  wrap?: boolean;
  /** Adds a numpy-RNG-like placeholder object next to the state dict (default true when wrapped). */
  extras?: boolean;
  /** Pickle the state dict as an OrderedDict (default true). */
  ordered?: boolean;
  /** Extra state dict entries written as raw pickle fragments (e.g. a placeholder object under a key). */
  rawEntries?: { name: string; emit: (p: PickleBuilder) => void }[];
  archive?: string;
  forceZip64?: boolean;
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** The data.pkl program torch.save writes for `spec` (protocol 2, memoised storages and globals). */
export function checkpointPickle(spec: CheckpointSpec): Uint8Array {
  const p = new PickleBuilder().proto(2);
  const byKey = new Map(spec.storages.map((s) => [s.key, s]));
  const wrap = spec.wrap ?? true;
  let memo = 0;
  if (wrap) p.op("}").op("q").u8(memo++).op("(").str("module");
  if (spec.ordered ?? true) p.global("collections", "OrderedDict").op(")").op("R");
  else p.op("}");
  p.op("(");
  for (const t of spec.tensors) {
    const s = byKey.get(t.storage)!;
    p.str(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op("(");
    p.op("(").str("storage").global("torch", STORAGE_NAMES[s.dtype]).str(s.key).str("cpu").int(s.numel).op(
      "t",
    ).op("Q");
    p.int(t.offset ?? 0).ints(t.shape).ints(t.stride ?? contiguousStride(t.shape)).op(0x89);
    p.global("collections", "OrderedDict").op(")").op("R");
    p.op("t").op("R");
  }
  for (const r of spec.rawEntries ?? []) {
    p.str(r.name);
    r.emit(p);
  }
  p.op("u");
  if (wrap) {
    if (spec.extras ?? true) {
      p.str("np_rng_state");
      p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray").ints([0]).op("C").u8(1)
        .raw([0x62]);
      p.op(0x87).op("R");
      p.op("(").int(1).ints([624]).global("numpy", "dtype").op(0x89).op("C").u8(4).raw([1, 2, 3, 4]).op("t")
        .op("b");
      p.str("skipped").global("__builtin__", "set").op("]").int(3).op("a").op(0x85).op("R");
      p.str("iteration").int(1);
    }
    p.op("u");
  }
  return p.stop().bytes();
}

/** Writes a torch.save-format checkpoint (stored zip, 64-byte aligned storages, like PyTorch). */
export async function writeTorchCheckpoint(path: string, spec: CheckpointSpec): Promise<void> {
  const a = spec.archive ?? "archive";
  const entries: ZipWriteEntry[] = [{ name: `${a}/data.pkl`, data: checkpointPickle(spec) }];
  for (const s of spec.storages) {
    const size = s.numel * TORCH_DTYPE_BYTES[s.dtype];
    if (s.data) {
      if (s.data.length !== size) {
        throw new Error(`storage ${s.key}: ${s.data.length} bytes, expected ${size}`);
      }
      entries.push({ name: `${a}/data/${s.key}`, data: s.data });
    } else entries.push({ name: `${a}/data/${s.key}`, size, produce: s.produce });
  }
  entries.push({ name: `${a}/version`, data: new TextEncoder().encode("3\n") });
  await writeZip(path, entries, { forceZip64: spec.forceZip64 });
}
