// safetensors (https://huggingface.co/docs/safetensors): the converted model's weight files.
// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__},
// padded with spaces to 8 bytes, then the tensor bytes. Not a tensor library: the writer streams tensors in order and the
// reader hands out byte ranges by positional reads, so a checkpoint never sits whole in the JS heap.
import type { WeightDType, WeightInfo, WeightSource } from "./weights.ts";

const TO_FILE: Record<WeightDType, string> = {
  f16: "F16",
  bf16: "BF16",
  f32: "F32",
  i64: "I64",
  i32: "I32",
  u8: "U8",
  i8: "I8",
};
const FROM_FILE: Record<string, WeightDType> = Object.fromEntries(
  Object.entries(TO_FILE).map(([k, v]) => [v, k as WeightDType]),
);
export const DTYPE_BYTES: Record<WeightDType, number> = {
  f16: 2,
  bf16: 2,
  f32: 4,
  i64: 8,
  i32: 4,
  u8: 1,
  i8: 1,
};

/** Largest header we accept when reading (the format's own readers use 100 MB). */
const MAX_HEADER = 100 * 2 ** 20;

/** One tensor to write: its bytes at once (`data`), or produced in parts by `write` (streaming conversion). */
export interface SafetensorsEntry {
  name: string;
  dtype: WeightDType;
  shape: number[];
  data?: ArrayBufferView;
  /** Called with a sink; must push exactly the tensor's byte length, in order. */
  write?: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<void>;
}

function byteLengthOf(dtype: WeightDType, shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Builds the padded header for `entries` (in file order) and returns it with each entry's byte length. */
export function safetensorsHeader(
  entries: Pick<SafetensorsEntry, "name" | "dtype" | "shape">[],
  metadata?: Record<string, string>,
): { header: Uint8Array; sizes: number[] } {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  const sizes: number[] = [];
  let off = 0;
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`safetensors: duplicate tensor name "${e.name}"`);
    seen.add(e.name);
    if (!(e.dtype in TO_FILE)) {
      throw new Error(`safetensors: tensor "${e.name}" has unsupported dtype "${e.dtype}"`);
    }
    if (!e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor "${e.name}" has an invalid shape [${e.shape}]`);
    }
    const n = byteLengthOf(e.dtype, e.shape);
    json[e.name] = { dtype: TO_FILE[e.dtype], shape: e.shape, data_offsets: [off, off + n] };
    sizes.push(n);
    off += n;
  }
  let text = JSON.stringify(json);
  text += " ".repeat((8 - ((8 + new TextEncoder().encode(text).length) % 8)) % 8);
  const body = new TextEncoder().encode(text);
  const header = new Uint8Array(8 + body.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(body.length), true);
  header.set(body, 8);
  return { header, sizes };
}

/**
 * Writes a safetensors file at `path` (overwriting it). Entries are written in order; a `write` producer is checked to
 * push exactly its tensor's size. Callers that must never leave a partial file write to a temporary path and rename.
 */
export async function writeSafetensors(
  path: string,
  entries: SafetensorsEntry[],
  options: { metadata?: Record<string, string> } = {},
): Promise<void> {
  const { header, sizes } = safetensorsHeader(entries, options.metadata);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const writeAll = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
    };
    await writeAll(header);
    for (const [i, e] of entries.entries()) {
      if (e.data) {
        const bytes = asBytes(e.data);
        if (bytes.length !== sizes[i]) {
          throw new Error(
            `safetensors: tensor "${e.name}" has ${bytes.length} bytes, its shape [${e.shape}] ${e.dtype} needs ${
              sizes[i]
            }`,
          );
        }
        await writeAll(bytes);
      } else if (e.write) {
        let pushed = 0;
        await e.write(async (chunk) => {
          pushed += chunk.length;
          if (pushed > sizes[i]) {
            throw new Error(`safetensors: tensor "${e.name}" produced more than its ${sizes[i]} bytes`);
          }
          await writeAll(chunk);
        });
        if (pushed !== sizes[i]) {
          throw new Error(`safetensors: tensor "${e.name}" produced ${pushed} of its ${sizes[i]} bytes`);
        }
      } else {
        throw new Error(`safetensors: tensor "${e.name}" has neither data nor write`);
      }
    }
  } finally {
    file.close();
  }
}

/** Reads exactly `length` bytes at `position` of an open file. */
async function preadExact(
  file: Deno.FsFile,
  position: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(out.subarray(done));
    if (n === null) throw new Error(`${what}: file ends ${length - done} bytes early`);
    done += n;
  }
  return out;
}

interface Entry extends WeightInfo {
  /** Absolute file offset of the data. */
  start: number;
}

/** A safetensors file opened for reading; tensors are read by positional reads, one request at a time. */
export class SafetensorsFile implements WeightSource {
  readonly #file: Deno.FsFile;
  readonly #entries: Map<string, Entry>;
  readonly metadata: Record<string, string>;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    readonly origin: string,
    file: Deno.FsFile,
    entries: Map<string, Entry>,
    metadata: Record<string, string>,
  ) {
    this.#file = file;
    this.#entries = entries;
    this.metadata = metadata;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new Error(`Cannot open weights ${path}: ${(e as Error).message}`);
    }
    try {
      const size = (await file.stat()).size;
      if (size < 8) throw new Error(`${path}: not a safetensors file (${size} bytes)`);
      const n = Number(new DataView((await preadExact(file, 0, 8, path)).buffer).getBigUint64(0, true));
      if (n > MAX_HEADER || 8 + n > size) {
        throw new Error(`${path}: not a safetensors file (header length ${n}, file ${size} bytes)`);
      }
      let json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
      try {
        json = JSON.parse(new TextDecoder().decode(await preadExact(file, 8, n, path)));
      } catch (e) {
        throw new Error(`${path}: safetensors header is not valid JSON (${(e as Error).message})`);
      }
      const entries = new Map<string, Entry>();
      let metadata: Record<string, string> = {};
      const dataStart = 8 + n;
      for (const [name, v] of Object.entries(json)) {
        if (name === "__metadata__") {
          if (typeof v !== "object" || v === null || Array.isArray(v)) {
            throw new Error(`${path}: safetensors __metadata__ is not an object`);
          }
          metadata = v as unknown as Record<string, string>;
          continue;
        }
        const dtype = FROM_FILE[v?.dtype];
        if (!dtype) {
          throw new Error(`${path}: tensor "${name}" has unsupported dtype ${JSON.stringify(v?.dtype)}`);
        }
        // Every field checked before use: a missing or odd shape/offsets is the file's error, not a TypeError.
        const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
        const offs: unknown = v.data_offsets;
        if (
          !Array.isArray(v.shape) || !v.shape.every(count) || !Array.isArray(offs) || offs.length !== 2 ||
          !offs.every(count)
        ) {
          throw new Error(
            `${path}: tensor "${name}" needs a shape of non-negative integers and two data_offsets ` +
              `(got shape ${JSON.stringify(v.shape)}, data_offsets ${JSON.stringify(offs)})`,
          );
        }
        const [b, e] = offs as [number, number];
        const byteLength = byteLengthOf(dtype, v.shape);
        if (!(e - b === byteLength) || dataStart + e > size) {
          throw new Error(
            `${path}: tensor "${name}" has inconsistent shape/offsets (shape [${v.shape}], offsets [${b}, ${e}])`,
          );
        }
        entries.set(name, { name, dtype, shape: v.shape, byteLength, start: dataStart + b });
      }
      return new SafetensorsFile(path, file, entries, metadata);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  info(name: string): WeightInfo {
    const e = this.#entries.get(name);
    if (!e) throw new Error(`${this.origin}: no tensor named "${name}"`);
    return { name: e.name, dtype: e.dtype, shape: e.shape, byteLength: e.byteLength };
  }

  read(name: string): Promise<Uint8Array> {
    return this.readRange(name, 0, this.info(name).byteLength);
  }

  readRange(name: string, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const e = this.#entries.get(name);
    if (!e) return Promise.reject(new Error(`${this.origin}: no tensor named "${name}"`));
    if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > e.byteLength) {
      return Promise.reject(
        new Error(
          `${this.origin}: range ${byteOffset}+${byteLength} is outside tensor "${name}" (${e.byteLength} bytes)`,
        ),
      );
    }
    if (this.#closed) return Promise.reject(new Error(`${this.origin}: read of "${name}" after close`));
    // One seek+read at a time on the shared handle.
    const p = this.#queue.then(() =>
      preadExact(this.#file, e.start + byteOffset, byteLength, `${this.origin} (${name})`)
    );
    this.#queue = p.catch(() => {});
    return p;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.finally(() => this.#file.close());
  }
}

export function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}
