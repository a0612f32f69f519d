// PyTorch checkpoints (torch.save zip format, PyTorch >= 1.6) as a WeightSource: the state dict's tensors, read lazily
// by positional reads from their storages. Not torch.load: the pickle is read by the allow-listing reader in pickle.ts, so
// a hostile file cannot run code; non-tensor entries (RNG state, optimizer bookkeeping) stay inert placeholders.
import type { WeightDType, WeightInfo, WeightSource } from "./weights.ts";
import {
  describe,
  PyTuple,
  TORCH_DTYPE_BYTES,
  type TorchDType,
  torchPersistentLoad,
  TorchTensor,
  unpickle,
} from "./pickle.ts";
import { FileAccess, type RandomAccess, ZipArchive } from "./zip.ts";

const TO_WEIGHT: Partial<Record<TorchDType, WeightDType>> = {
  f16: "f16",
  bf16: "bf16",
  f32: "f32",
  i64: "i64",
  i32: "i32",
  u8: "u8",
  bool: "u8",
};

const TORCH_NAMES: Record<TorchDType, string> = {
  f16: "float16",
  bf16: "bfloat16",
  f32: "float32",
  f64: "float64",
  i64: "int64",
  i32: "int32",
  i16: "int16",
  i8: "int8",
  u8: "uint8",
  bool: "bool",
};

/** Largest data.pkl accepted (real checkpoints have well under 1 MB of pickle). */
const MAX_PICKLE = 64 * 2 ** 20;
/** Source window for gathering non-contiguous tensors. */
const GATHER_WINDOW = 32 * 2 ** 20;

interface TensorEntry {
  name: string;
  tensor: TorchTensor;
  /** Archive entry of the storage. */
  entry: string;
  /** Absolute archive offset of the storage's first byte. */
  base: number;
  elemBytes: number;
  contiguous: boolean;
}

/** How a tensor sits in its storage (for CRC checks while streaming). */
export interface TensorLayout {
  storageKey: string;
  /** Archive entry name of the storage. */
  entry: string;
  /** True when the tensor's bytes are exactly the whole storage, in order. */
  coversStorage: boolean;
  contiguous: boolean;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 0) return true;
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i];
  }
  return true;
}

/** A torch.save checkpoint's state dict as a WeightSource. */
export class TorchCheckpoint implements WeightSource {
  readonly #tensors: Map<string, TensorEntry>;
  readonly #other: Map<string, string>;
  #closed = false;

  private constructor(
    readonly origin: string,
    readonly zip: ZipArchive,
    /** The whole unpickled object (dicts are Maps; unknown classes are inert PyObjects). */
    readonly root: unknown,
    tensors: Map<string, TensorEntry>,
    other: Map<string, string>,
    /** Keys in the order of the state dict (tensors and non-tensors). */
    readonly keys: string[],
    readonly ownsSource: boolean,
  ) {
    this.#tensors = tensors;
    this.#other = other;
  }

  /**
   * Opens a checkpoint from a path or a byte range (e.g. a stored entry of a downloaded .zip). The state dict is
   * `root.module` when root is a dict with a dict under "module" (SwissArmyTransformer, icetk), else root itself.
   */
  static async open(src: string | RandomAccess): Promise<TorchCheckpoint> {
    const access = typeof src === "string" ? await FileAccess.open(src) : src;
    const owns = typeof src === "string";
    const origin = access.origin;
    try {
      let zip: ZipArchive;
      try {
        zip = await ZipArchive.open(access);
      } catch (e) {
        const head = access.size >= 2 ? await access.readAt(0, 2) : new Uint8Array(0);
        if (head[0] === 0x80 && head[1] <= 5) {
          throw new Error(
            `${origin}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a recent PyTorch`,
          );
        }
        throw e;
      }
      const pkl = zip.entries.find((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
      if (!pkl) throw new Error(`${origin}: no data.pkl entry (not a torch.save checkpoint)`);
      const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
      const bo = zip.get(`${prefix}byteorder`);
      if (bo) {
        const order = new TextDecoder().decode(await zip.read(bo.name)).trim();
        if (order !== "little") {
          throw new Error(`${origin}: byte order "${order}" is not supported (little-endian only)`);
        }
      }
      if (pkl.uncompressedSize > MAX_PICKLE) {
        throw new Error(`${origin}: data.pkl is implausibly large (${pkl.uncompressedSize} bytes)`);
      }
      const pklOrigin = `${origin}!${pkl.name}`;
      const root = unpickle(await zip.read(pkl.name), {
        origin: pklOrigin,
        persistentLoad: torchPersistentLoad(pklOrigin),
      });
      let sd: unknown = root;
      if (root instanceof Map && root.get("module") instanceof Map) sd = root.get("module");
      else if (root instanceof Map && root.get("state_dict") instanceof Map) sd = root.get("state_dict");
      if (!(sd instanceof Map)) {
        throw new Error(`${origin}: the checkpoint holds ${describe(sd)}, not a state dict`);
      }
      const tensors = new Map<string, TensorEntry>();
      const other = new Map<string, string>();
      const keys: string[] = [];
      for (const [k, v] of sd) {
        if (typeof k !== "string") {
          throw new Error(`${origin}: state dict key ${describe(k)} is not a string`);
        }
        keys.push(k);
        if (!(v instanceof TorchTensor)) {
          other.set(k, describe(v instanceof PyTuple && v.items.length === 0 ? v : v));
          continue;
        }
        const entry = `${prefix}data/${v.storage.key}`;
        const ze = zip.get(entry);
        if (!ze) {
          throw new Error(
            `${origin}: tensor "${k}": storage ${v.storage.key} (${entry}) is missing from the archive`,
          );
        }
        if (ze.method !== 0) throw new Error(`${origin}: tensor "${k}": storage ${entry} is compressed`);
        const es = TORCH_DTYPE_BYTES[v.storage.dtype];
        if (ze.size !== v.storage.numel * es) {
          throw new Error(
            `${origin}: tensor "${k}": storage ${entry} has ${ze.size} bytes, expected ${v.storage.numel} × ${es} (corrupt?)`,
          );
        }
        const t = v;
        if (t.shape.some((d) => d < 0) || t.stride.some((s) => s < 0) || t.storageOffset < 0) {
          throw new Error(`${origin}: tensor "${k}" has a negative size, stride or offset`);
        }
        const n = t.numel;
        if (!Number.isSafeInteger(n * es)) {
          throw new Error(`${origin}: tensor "${k}" has an implausible shape [${t.shape}]`);
        }
        if (n > 0) {
          const extent = t.storageOffset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0) + 1;
          if (extent > v.storage.numel) {
            throw new Error(
              `${origin}: tensor "${k}" (shape [${t.shape}], stride [${t.stride}], offset ${t.storageOffset}) reaches element ` +
                `${extent} of a ${v.storage.numel}-element storage (corrupt)`,
            );
          }
        }
        tensors.set(k, {
          name: k,
          tensor: t,
          entry,
          base: ze.offset,
          elemBytes: es,
          contiguous: isContiguous(t.shape, t.stride),
        });
      }
      return new TorchCheckpoint(origin, zip, root, tensors, other, keys, owns);
    } catch (e) {
      if (owns) access.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** State dict keys whose value is not a tensor, with a description of the value. */
  nonTensors(): Map<string, string> {
    return new Map(this.#other);
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  #get(name: string): TensorEntry {
    const e = this.#tensors.get(name);
    if (e) return e;
    const o = this.#other.get(name);
    if (o !== undefined) {
      throw new Error(
        `${this.origin}: "${name}" is ${o}, not a tensor (the reader executes nothing, so classes outside its allow-list ` +
          `stay inert placeholders)`,
      );
    }
    throw new Error(`${this.origin}: no tensor named "${name}"`);
  }

  /** The torch dtype name of a tensor ("float16", ...). */
  torchDType(name: string): string {
    return TORCH_NAMES[this.#get(name).tensor.storage.dtype];
  }

  info(name: string): WeightInfo {
    const e = this.#get(name);
    const dtype = TO_WEIGHT[e.tensor.storage.dtype];
    if (!dtype) {
      throw new Error(
        `${this.origin}: tensor "${name}" has unsupported dtype ${TORCH_NAMES[e.tensor.storage.dtype]}`,
      );
    }
    return { name, dtype, shape: [...e.tensor.shape], byteLength: e.tensor.numel * e.elemBytes };
  }

  layout(name: string): TensorLayout {
    const e = this.#get(name);
    const t = e.tensor;
    return {
      storageKey: t.storage.key,
      entry: e.entry,
      contiguous: e.contiguous,
      coversStorage: e.contiguous && t.storageOffset === 0 && t.numel === t.storage.numel,
    };
  }

  read(name: string): Promise<Uint8Array> {
    return this.readRange(name, 0, this.info(name).byteLength);
  }

  async readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const info = this.info(name);
    if (this.#closed) throw new Error(`${this.origin}: read of "${name}" after close`);
    if (!(byteOffset >= 0 && byteLength >= 0 && byteOffset + byteLength <= info.byteLength)) {
      throw new Error(
        `${this.origin}: range ${byteOffset}+${byteLength} is outside tensor "${name}" (${info.byteLength} bytes)`,
      );
    }
    const e = this.#tensors.get(name)!;
    const es = e.elemBytes;
    if (e.contiguous) {
      return await this.zip.source.readAt(e.base + e.tensor.storageOffset * es + byteOffset, byteLength);
    }
    // Non-contiguous view: gather whole elements covering the range, then trim.
    const first = Math.floor(byteOffset / es), last = Math.ceil((byteOffset + byteLength) / es);
    const out = await this.#gather(e, first, last - first);
    const skip = byteOffset - first * es;
    return skip === 0 && out.length === byteLength ? out : out.slice(skip, skip + byteLength);
  }

  /** Copies output elements [start, start+count) of a strided view, reading the source in bounded windows. */
  async #gather(e: TensorEntry, start: number, count: number): Promise<Uint8Array> {
    const { shape, stride, storageOffset } = e.tensor;
    const es = e.elemBytes;
    const out = new Uint8Array(count * es);
    if (count === 0) return out;
    const rank = shape.length;
    // Source element offset of each output element, computed incrementally with a multi-index counter.
    const startIdx = (): number[] => {
      const idx = new Array(rank).fill(0);
      let r = start;
      for (let d = rank - 1; d >= 0; d--) {
        idx[d] = r % shape[d];
        r = Math.floor(r / shape[d]);
      }
      return idx;
    };
    const walk = (fn: (i: number, src: number) => void) => {
      const idx = startIdx();
      let src = storageOffset + idx.reduce((a, v, d) => a + v * stride[d], 0);
      for (let i = 0; i < count; i++) {
        fn(i, src);
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          src += stride[d];
          if (idx[d] < shape[d]) break;
          src -= idx[d] * stride[d];
          idx[d] = 0;
        }
      }
    };
    let lo = Infinity, hi = -Infinity;
    walk((_, s) => {
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    });
    const windowElems = Math.max(1, Math.floor(GATHER_WINDOW / es));
    for (let w = lo; w <= hi; w += windowElems) {
      const wEnd = Math.min(hi + 1, w + windowElems);
      const buf = await this.zip.source.readAt(e.base + w * es, (wEnd - w) * es);
      walk((i, s) => {
        if (s >= w && s < wEnd) out.set(buf.subarray((s - w) * es, (s - w + 1) * es), i * es);
      });
    }
    return out;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.ownsSource) this.zip.close();
  }
}

export function openTorchCheckpoint(src: string | RandomAccess): Promise<TorchCheckpoint> {
  return TorchCheckpoint.open(src);
}
