// PyTorch checkpoints (torch.save zip format, PyTorch >= 1.6) as a WeightSource: the state dict's tensors, read lazily
// by positional reads from their storages. Not torch.load: the pickle is read by the allow-listing reader in pickle.ts, so
// a hostile file cannot run code; non-tensor entries (RNG state, optimizer bookkeeping) stay inert placeholders.
import type { WeightDType, WeightInfo, WeightSource } from "./weights.ts";
import {
  describe,
  TORCH_DTYPE_BYTES,
  type TorchDType,
  torchPersistentLoad,
  TorchTensor,
  unpickle,
} from "./pickle.ts";
import { crc32, EntryStream, FileAccess, type RandomAccess, ZipArchive, type ZipEntry } from "./zip.ts";

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

interface TensorMeta {
  name: string;
  tensor: TorchTensor;
  /** Archive entry of the storage. */
  entry: string;
  elemBytes: number;
  contiguous: boolean;
}

interface TensorEntry extends TensorMeta {
  /** Absolute archive offset of the storage's first byte. */
  base: number;
}

/** The archive member holding tensor `k`'s storage: present, stored (not compressed) and of the storage's size. */
function storageMember(origin: string, k: string, m: TensorMeta, member: ZipEntry | undefined): ZipEntry {
  if (!member) {
    throw new Error(
      `${origin}: tensor "${k}": storage ${m.tensor.storage.key} (${m.entry}) is missing from the archive`,
    );
  }
  if (member.method !== 0) throw new Error(`${origin}: tensor "${k}": storage ${m.entry} is compressed`);
  const size = member.size;
  if (size !== m.tensor.storage.numel * m.elemBytes) {
    throw new Error(
      `${origin}: tensor "${k}": storage ${m.entry} has ${size} bytes, expected ${m.tensor.storage.numel} × ${m.elemBytes} (corrupt?)`,
    );
  }
  return member;
}

/** WeightInfo of a tensor (throws on a dtype the WeightSource interface does not carry). */
function tensorInfo(origin: string, name: string, e: TensorMeta): WeightInfo {
  const dtype = TO_WEIGHT[e.tensor.storage.dtype];
  if (!dtype) {
    throw new Error(
      `${origin}: tensor "${name}" has unsupported dtype ${TORCH_NAMES[e.tensor.storage.dtype]}`,
    );
  }
  return { name, dtype, shape: [...e.tensor.shape], byteLength: e.tensor.numel * e.elemBytes };
}

/** The state dict of an unpickled checkpoint: tensors (checked against their storage sizes) and other entries. */
function analyzeStateDict(root: unknown, origin: string, prefix: string) {
  let sd: unknown = root;
  if (root instanceof Map && root.get("module") instanceof Map) sd = root.get("module");
  else if (root instanceof Map && root.get("state_dict") instanceof Map) sd = root.get("state_dict");
  if (!(sd instanceof Map)) {
    throw new Error(`${origin}: the checkpoint holds ${describe(sd)}, not a state dict`);
  }
  const tensors = new Map<string, TensorMeta>();
  const other = new Map<string, string>();
  const keys: string[] = [];
  for (const [k, v] of sd) {
    if (typeof k !== "string") throw new Error(`${origin}: state dict key ${describe(k)} is not a string`);
    keys.push(k);
    if (!(v instanceof TorchTensor)) {
      other.set(k, describe(v));
      continue;
    }
    const t = v;
    const es = TORCH_DTYPE_BYTES[t.storage.dtype];
    if (t.shape.some((d) => d < 0) || t.stride.some((s) => s < 0) || t.storageOffset < 0) {
      throw new Error(`${origin}: tensor "${k}" has a negative size, stride or offset`);
    }
    const n = t.numel;
    if (!Number.isSafeInteger(n * es)) {
      throw new Error(`${origin}: tensor "${k}" has an implausible shape [${t.shape}]`);
    }
    if (n > 0) {
      const extent = t.storageOffset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i], 0) + 1;
      if (extent > t.storage.numel) {
        throw new Error(
          `${origin}: tensor "${k}" (shape [${t.shape}], stride [${t.stride}], offset ${t.storageOffset}) reaches element ` +
            `${extent} of a ${t.storage.numel}-element storage (corrupt)`,
        );
      }
    }
    tensors.set(k, {
      name: k,
      tensor: t,
      entry: `${prefix}data/${t.storage.key}`,
      elemBytes: es,
      contiguous: isContiguous(t.shape, t.stride),
    });
  }
  return { tensors, other, keys };
}

/**
 * Copies output elements [start, start+count) of a strided view; `readAt(byteOffset, length)` reads the storage.
 * The source is read in bounded windows, so memory stays O(count + window).
 */
async function gatherStrided(
  m: TensorMeta,
  start: number,
  count: number,
  readAt: (offset: number, length: number) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const { shape, stride, storageOffset } = m.tensor;
  const es = m.elemBytes;
  const out = new Uint8Array(count * es);
  if (count === 0) return out;
  const rank = shape.length;
  const walk = (fn: (i: number, src: number) => void) => {
    const idx = new Array(rank).fill(0);
    let r = start;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
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
    const buf = await readAt(w * es, (wEnd - w) * es);
    walk((i, s) => {
      if (s >= w && s < wEnd) out.set(buf.subarray((s - w) * es, (s - w + 1) * es), i * es);
    });
  }
  return out;
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

/**
 * The tensors and other entries of an analysed state dict, and the look-ups both checkpoint readers offer on them
 * (TorchCheckpoint: random access; StreamedTorchCheckpoint: one pass over a compressed member).
 */
abstract class StateDictTensors<T extends TensorMeta> {
  protected constructor(
    readonly origin: string,
    protected readonly tensors: Map<string, T>,
    protected readonly other: Map<string, string>,
  ) {}

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** State dict keys whose value is not a tensor, with a description of the value. */
  nonTensors(): Map<string, string> {
    return new Map(this.other);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): WeightInfo {
    return tensorInfo(this.origin, name, this.tensor(name));
  }

  /** Tensor `name`, or an error saying it is a non-tensor entry or absent. */
  protected tensor(name: string): T {
    const e = this.tensors.get(name);
    if (e) return e;
    const o = this.other.get(name);
    if (o !== undefined) {
      throw new Error(
        `${this.origin}: "${name}" is ${o}, not a tensor (the reader executes nothing, so classes outside its allow-list ` +
          `stay inert placeholders)`,
      );
    }
    throw new Error(`${this.origin}: no tensor named "${name}"`);
  }
}

/** A torch.save checkpoint's state dict as a WeightSource. */
export class TorchCheckpoint extends StateDictTensors<TensorEntry> implements WeightSource {
  #closed = false;

  private constructor(
    origin: string,
    readonly zip: ZipArchive,
    /** The whole unpickled object (dicts are Maps; unknown classes are inert PyObjects). */
    readonly root: unknown,
    tensors: Map<string, TensorEntry>,
    other: Map<string, string>,
    /** Keys in the order of the state dict (tensors and non-tensors). */
    readonly keys: string[],
    readonly ownsSource: boolean,
  ) {
    super(origin, tensors, other);
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
      // zip.read stops inflating the moment the output passes the declared size, so the bytes held are bounded by
      // the size checked above, whatever the entry really inflates to.
      const root = unpickle(await zip.read(pkl.name, MAX_PICKLE), {
        origin: pklOrigin,
        persistentLoad: torchPersistentLoad(pklOrigin),
      });
      const { tensors: metas, other, keys } = analyzeStateDict(root, origin, prefix);
      const tensors = new Map<string, TensorEntry>();
      for (const [k, m] of metas) {
        const ze = storageMember(origin, k, m, zip.get(m.entry));
        tensors.set(k, { ...m, base: ze.offset });
      }
      return new TorchCheckpoint(origin, zip, root, tensors, other, keys, owns);
    } catch (e) {
      if (owns) access.close();
      throw e;
    }
  }

  /** The torch dtype name of a tensor ("float16", ...). */
  torchDType(name: string): string {
    return TORCH_NAMES[this.tensor(name).tensor.storage.dtype];
  }

  layout(name: string): TensorLayout {
    const e = this.tensor(name);
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
    const e = this.tensors.get(name)!;
    const es = e.elemBytes;
    if (e.contiguous) {
      return await this.zip.source.readAt(e.base + e.tensor.storageOffset * es + byteOffset, byteLength);
    }
    // Non-contiguous view: gather whole elements covering the range, then trim.
    const first = Math.floor(byteOffset / es), last = Math.ceil((byteOffset + byteLength) / es);
    const out = await gatherStrided(e, first, last - first, (o, l) => this.zip.source.readAt(e.base + o, l));
    const skip = byteOffset - first * es;
    return skip === 0 && out.length === byteLength ? out : out.slice(skip, skip + byteLength);
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

/** Largest total of storages held in memory while streaming (storages shared by views, or met out of order). */
const MAX_STREAM_BUFFER = 2 ** 31;
/** Bytes kept from the end of a streamed member: its central directory must fit. */
const STREAM_TAIL = 16 * 2 ** 20;

/** The last bytes of a streamed member as a RandomAccess (enough for ZipArchive to read the central directory). */
class TailAccess implements RandomAccess {
  constructor(readonly origin: string, readonly size: number, readonly tail: Uint8Array) {}
  readAt(offset: number, length: number): Promise<Uint8Array> {
    const start = this.size - this.tail.length;
    if (offset < start || offset + length > this.size) {
      return Promise.reject(
        new Error(`${this.origin}: central directory larger than ${STREAM_TAIL} bytes; unpack the archive`),
      );
    }
    return Promise.resolve(this.tail.slice(offset - start, offset - start + length));
  }
  close(): void {}
}

/** Reads a local header at the stream's position; leaves the stream at the member's data. */
async function skipLocalHeader(s: EntryStream, m: ZipEntry): Promise<void> {
  if (s.position > m.localHeaderOffset) {
    throw new Error(`${s.origin}: member "${m.name}" overlaps the previous one (corrupt)`);
  }
  await s.skip(m.localHeaderOffset - s.position);
  const h = await s.read(30);
  const dv = new DataView(h.buffer);
  if (dv.getUint32(0, true) !== 0x04034b50) {
    throw new Error(`${s.origin}: bad local header of "${m.name}" (corrupt)`);
  }
  await s.skip(dv.getUint16(26, true) + dv.getUint16(28, true));
}

/**
 * A torch.save checkpoint that is a *compressed* member of another zip (a download made with plain `zip`): it cannot be
 * read in place, so it is streamed through the inflater: once to reach its central directory (and check the member's
 * CRC-32 before anything is written), once more to copy the tensors. Tensors come out in `order()` (archive order of
 * their storages), each via `chunks(name)`; storages used by several views or read out of order are held in memory
 * until their last view is done. Not random access: `chunks` must be called in `order()`.
 */
export class StreamedTorchCheckpoint extends StateDictTensors<TensorMeta> {
  readonly #stream: EntryStream;
  /** Members in stream order, and the index of the next one not yet passed. */
  readonly #members: ZipEntry[];
  #next = 0;
  /** Storages read whole, by entry name, with the number of tensors still to read from them. */
  readonly #held = new Map<string, { bytes: Uint8Array; users: number }>();
  #heldBytes = 0;
  readonly #users = new Map<string, number>();
  readonly #prefix: string;

  private constructor(
    origin: string,
    stream: EntryStream,
    members: ZipEntry[],
    next: number,
    prefix: string,
    tensors: Map<string, TensorMeta>,
    other: Map<string, string>,
  ) {
    super(origin, tensors, other);
    this.#stream = stream;
    this.#members = members;
    this.#next = next;
    this.#prefix = prefix;
    for (const m of tensors.values()) this.#users.set(m.entry, (this.#users.get(m.entry) ?? 0) + 1);
  }

  /** Opens `zip`'s compressed member `entryName` (two streaming passes begin: the first runs to the end). */
  static async open(zip: ZipArchive, entryName: string): Promise<StreamedTorchCheckpoint> {
    const origin = `${zip.origin}!${entryName}`;
    const entry = zip.entry(entryName);
    // Pass 1: the whole member, keeping only its tail; checks size and CRC-32.
    const s1 = new EntryStream(zip, entry);
    const parts: Uint8Array[] = [];
    let kept = 0;
    try {
      while (true) {
        const c = await s1.next(4 * 2 ** 20);
        if (!c) break;
        parts.push(c);
        kept += c.length;
        while (parts.length > 1 && kept - parts[0].length >= STREAM_TAIL) kept -= parts.shift()!.length;
      }
      await s1.finish();
    } finally {
      s1.close();
    }
    const tail = new Uint8Array(kept);
    let o = 0;
    for (const p of parts) (tail.set(p, o), o += p.length);
    parts.length = 0;
    let inner: ZipArchive;
    try {
      inner = await ZipArchive.open(new TailAccess(origin, entry.uncompressedSize, tail), {
        localHeaders: false,
      });
    } catch (e) {
      const msg = (e as Error).message;
      throw new Error(msg.startsWith(origin) ? msg : `${origin}: ${msg}`);
    }
    const members = [...inner.entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
    const pi = members.findIndex((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
    if (pi < 0) throw new Error(`${origin}: no data.pkl member (not a torch.save checkpoint)`);
    const pkl = members[pi];
    if (pkl.method !== 0) throw new Error(`${origin}: data.pkl is compressed inside the checkpoint`);
    if (pkl.size > MAX_PICKLE) {
      throw new Error(`${origin}: data.pkl is implausibly large (${pkl.size} bytes)`);
    }
    // Pass 2 starts: the pickle, then storages as `chunks` asks for them.
    const s2 = new EntryStream(zip, entry);
    try {
      await skipLocalHeader(s2, pkl);
      const bytes = await s2.read(pkl.size);
      const pklOrigin = `${origin}!${pkl.name}`;
      if (crc32(bytes) !== pkl.crc32) throw new Error(`${pklOrigin}: CRC-32 mismatch (corrupt)`);
      const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
      const root = unpickle(bytes, { origin: pklOrigin, persistentLoad: torchPersistentLoad(pklOrigin) });
      const { tensors, other } = analyzeStateDict(root, origin, prefix);
      for (const [k, m] of tensors) {
        const me = storageMember(origin, k, m, inner.get(m.entry));
        if (me.localHeaderOffset < pkl.localHeaderOffset) {
          throw new Error(`${origin}: storage ${m.entry} precedes data.pkl; unpack the archive`);
        }
      }
      return new StreamedTorchCheckpoint(origin, s2, members, pi + 1, prefix, tensors, other);
    } catch (e) {
      s2.close();
      throw e;
    }
  }

  /** The order `chunks` must be called in: archive order of the storages, then state-dict order. */
  order(): string[] {
    const names = this.names();
    const pos = new Map(names.map((n, i) => [n, i]));
    const at = new Map(this.#members.map((m, i) => [m.name, i]));
    const key = (n: string) => at.get(this.tensors.get(n)!.entry) ?? -1;
    return names.sort((a, b) => key(a) - key(b) || pos.get(a)! - pos.get(b)!);
  }

  /** Advances the stream to the storage member `entry`; members before it are skipped, or held if a tensor needs them. */
  async #seek(entry: string): Promise<ZipEntry> {
    const s = this.#stream;
    while (this.#next < this.#members.length) {
      const m = this.#members[this.#next++];
      await skipLocalHeader(s, m);
      if (m.name === entry) return m;
      if (this.#users.get(m.name)) await this.#hold(m);
      else if (m.name === `${this.#prefix}byteorder`) {
        const order = new TextDecoder().decode(await s.read(m.size)).trim();
        if (order !== "little") throw new Error(`${this.origin}: byte order "${order}" is not supported`);
      }
    }
    throw new Error(`${this.origin}: storage ${entry} was not found ahead in the stream`);
  }

  async #hold(m: ZipEntry): Promise<void> {
    if (this.#heldBytes + m.size > MAX_STREAM_BUFFER) {
      throw new Error(
        `${this.origin}: storages out of order need more than ${MAX_STREAM_BUFFER} bytes of memory; unpack the archive`,
      );
    }
    const bytes = await this.#stream.read(m.size);
    if (crc32(bytes) !== m.crc32) {
      throw new Error(`${this.origin}: storage ${m.name} fails its CRC-32 check (corrupt file)`);
    }
    this.#held.set(m.name, { bytes, users: this.#users.get(m.name)! });
    this.#heldBytes += m.size;
  }

  /** The tensor's contiguous bytes in parts of at most `partBytes`; call for each name of `order()` in turn. */
  async *chunks(name: string, partBytes = 16 * 2 ** 20): AsyncGenerator<Uint8Array> {
    const m = this.tensor(name);
    const es = m.elemBytes, n = m.tensor.numel;
    const part = Math.max(1, Math.floor(partBytes / es));
    let held = this.#held.get(m.entry);
    if (!held) {
      const me = await this.#seek(m.entry);
      const covers = m.contiguous && m.tensor.storageOffset === 0 && n === m.tensor.storage.numel;
      if (covers && this.#users.get(m.entry) === 1) {
        // The common case: one tensor, its whole storage, streamed straight through.
        let crc = 0;
        for (let e = 0; e < n; e += part) {
          const bytes = await this.#stream.read(Math.min(part, n - e) * es);
          crc = crc32(bytes, crc);
          yield bytes;
        }
        if (crc !== me.crc32) {
          throw new Error(`${this.origin}: tensor "${name}": storage fails its CRC-32 check (corrupt file)`);
        }
        this.#users.set(m.entry, 0);
        return;
      }
      await this.#hold(me);
      held = this.#held.get(m.entry)!;
    }
    const src = held.bytes;
    for (let e = 0; e < n; e += part) {
      const cnt = Math.min(part, n - e);
      if (m.contiguous) {
        const b = (m.tensor.storageOffset + e) * es;
        yield src.slice(b, b + cnt * es);
      } else yield await gatherStrided(m, e, cnt, (o, l) => Promise.resolve(src.subarray(o, o + l)));
    }
    held.users--;
    this.#users.set(m.entry, held.users);
    if (held.users <= 0) {
      this.#held.delete(m.entry);
      this.#heldBytes -= src.length;
    }
  }

  /** After the last tensor (the member's CRC-32 was checked by the first pass). */
  finish(): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  close(): void {
    this.#stream.close();
    this.#held.clear();
  }
}
