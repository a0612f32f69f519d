// ZIP archive reader for torch.save checkpoints and downloaded model archives: central directory (zip64 included) and
// entry byte ranges read by positional reads. Not an extractor: stored entries are byte ranges read in place; deflated
// entries are only inflated when small (config files), never written to disk.

import * as zlib from "node:zlib";

/** A byte range readable at any offset: a file, or a stored entry inside another archive. */
export interface RandomAccess {
  /** What the bytes are (a path, or "archive.zip!entry"), for error messages. */
  readonly origin: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws naming the origin when the range is outside. */
  readAt(offset: number, length: number): Promise<Uint8Array>;
  close(): void;
}

/** A file opened for positional reads; one seek+read runs at a time on the shared handle. */
export class FileAccess implements RandomAccess {
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  private constructor(readonly origin: string, readonly size: number, readonly file: Deno.FsFile) {}

  static async open(path: string): Promise<FileAccess> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new Error(`Cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const st = await file.stat();
      if (!st.isFile) throw new Error(`${path}: not a regular file`);
      return new FileAccess(path, st.size, file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  readAt(offset: number, length: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error(`${this.origin}: read after close`));
    if (!(offset >= 0 && length >= 0 && offset + length <= this.size)) {
      return Promise.reject(
        new Error(
          `${this.origin}: read of ${length} bytes at ${offset} is beyond the end (${this.size} bytes; truncated?)`,
        ),
      );
    }
    const p = this.#queue.then(async () => {
      const out = new Uint8Array(length);
      await this.file.seek(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < length) {
        const n = await this.file.read(out.subarray(done));
        if (n === null) {
          throw new Error(`${this.origin}: file ends ${length - done} bytes early (truncated?)`);
        }
        done += n;
      }
      return out;
    });
    this.#queue = p.catch(() => {});
    return p;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.finally(() => this.file.close());
  }
}

/** A sub-range of another RandomAccess (a stored zip entry); closing it does not close the parent. */
export class SliceAccess implements RandomAccess {
  constructor(
    readonly parent: RandomAccess,
    readonly start: number,
    readonly size: number,
    readonly origin: string,
  ) {
    if (start < 0 || size < 0 || start + size > parent.size) {
      throw new Error(
        `${origin}: range ${start}+${size} lies outside ${parent.origin} (${parent.size} bytes; truncated?)`,
      );
    }
  }
  readAt(offset: number, length: number): Promise<Uint8Array> {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.size)) {
      return Promise.reject(
        new Error(
          `${this.origin}: read of ${length} bytes at ${offset} is beyond the end (${this.size} bytes)`,
        ),
      );
    }
    return this.parent.readAt(this.start + offset, length);
  }
  close(): void {}
}

/** In-memory bytes as a RandomAccess (tests, small inflated entries). */
export class BytesAccess implements RandomAccess {
  constructor(readonly bytes: Uint8Array, readonly origin: string) {}
  get size(): number {
    return this.bytes.length;
  }
  readAt(offset: number, length: number): Promise<Uint8Array> {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.bytes.length)) {
      return Promise.reject(
        new Error(
          `${this.origin}: read of ${length} bytes at ${offset} is beyond the end (${this.bytes.length} bytes)`,
        ),
      );
    }
    return Promise.resolve(this.bytes.slice(offset, offset + length));
  }
  close(): void {}
}

export interface ZipEntry {
  name: string;
  /** Absolute offset of the entry's data inside the archive (-1 when only the directory was read). */
  offset: number;
  /** Offset of the entry's local header. */
  localHeaderOffset: number;
  /** Stored (compressed) size in bytes. */
  size: number;
  /** Uncompressed size. */
  uncompressedSize: number;
  /** 0 = stored, 8 = deflate. */
  method: number;
  crc32: number;
}

const SIG_EOCD = 0x06054b50,
  SIG_EOCD64 = 0x06064b50,
  SIG_LOC64 = 0x07064b50,
  SIG_CEN = 0x02014b50,
  SIG_LOC = 0x04034b50;
/** Inflating is for config-sized entries only. */
const MAX_INFLATE = 64 * 2 ** 20;
const MAX_ENTRIES = 1_000_000;

function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what}: 64-bit field ${v} is out of range`);
  return Number(v);
}

/** A zip archive's central directory over a RandomAccess. */
export class ZipArchive {
  readonly #byName: Map<string, ZipEntry>;
  private constructor(readonly source: RandomAccess, readonly entries: ZipEntry[]) {
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  get origin(): string {
    return this.source.origin;
  }

  /** Opens a zip file by path (the file handle stays open until close()). */
  static async openFile(path: string): Promise<ZipArchive> {
    const f = await FileAccess.open(path);
    try {
      return await ZipArchive.open(f);
    } catch (e) {
      f.close();
      throw e;
    }
  }

  /** Reads the central directory of `src`; throws naming `src.origin` when the archive is truncated or corrupt. */
  static async open(src: RandomAccess, opts: { localHeaders?: boolean } = {}): Promise<ZipArchive> {
    const what = src.origin;
    if (src.size < 22) throw new Error(`${what}: not a zip archive (${src.size} bytes)`);
    const tailLen = Math.min(src.size, 22 + 65535);
    const tail = await src.readAt(src.size - tailLen, tailLen);
    const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tdv.getUint32(i, true) === SIG_EOCD && i + 22 + tdv.getUint16(i + 20, true) <= tail.length) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw new Error(`${what}: not a zip archive or truncated (no end-of-central-directory record)`);
    }
    const eocdAbs = src.size - tailLen + eocd;
    let count = tdv.getUint16(eocd + 10, true);
    let cdSize = tdv.getUint32(eocd + 12, true);
    let cdOffset = tdv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      if (eocdAbs < 20) throw new Error(`${what}: zip64 archive without a zip64 locator (corrupt)`);
      const loc = await src.readAt(eocdAbs - 20, 20);
      const ldv = new DataView(loc.buffer, loc.byteOffset, 20);
      if (ldv.getUint32(0, true) !== SIG_LOC64) {
        throw new Error(`${what}: zip64 end locator missing (corrupt or truncated)`);
      }
      const e64 = u64(ldv, 8, what);
      if (e64 + 56 > src.size) {
        throw new Error(`${what}: zip64 end record at ${e64} is beyond the end (truncated?)`);
      }
      const rec = await src.readAt(e64, 56);
      const rdv = new DataView(rec.buffer, rec.byteOffset, 56);
      if (rdv.getUint32(0, true) !== SIG_EOCD64) {
        throw new Error(`${what}: bad zip64 end record signature (corrupt)`);
      }
      count = u64(rdv, 32, what);
      cdSize = u64(rdv, 40, what);
      cdOffset = u64(rdv, 48, what);
    }
    if (count > MAX_ENTRIES) throw new Error(`${what}: ${count} entries is implausible (corrupt)`);
    if (cdOffset + cdSize > src.size || cdSize < count * 46) {
      throw new Error(
        `${what}: central directory (${cdSize} bytes at ${cdOffset}) lies outside the archive (truncated?)`,
      );
    }
    const cd = await src.readAt(cdOffset, cdSize);
    const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    const dec = new TextDecoder();
    const pending: { name: string; lho: number; size: number; usize: number; method: number; crc: number }[] =
      [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CEN) {
        throw new Error(
          `${what}: central directory entry ${i} is corrupt (bad signature at ${cdOffset + p})`,
        );
      }
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc = dv.getUint32(p + 16, true);
      let size = dv.getUint32(p + 20, true);
      let usize = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true),
        extraLen = dv.getUint16(p + 30, true),
        commentLen = dv.getUint16(p + 32, true);
      let lho = dv.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) {
        throw new Error(`${what}: central directory entry ${i} is truncated`);
      }
      const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
      if (flags & 1) throw new Error(`${what}: entry "${name}" is encrypted`);
      // zip64 extended information: only the fields that are saturated in the fixed header, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = dv.getUint16(x, true), len = dv.getUint16(x + 2, true);
        if (x + 4 + len > xEnd) throw new Error(`${what}: entry "${name}" has a corrupt extra field`);
        if (id === 0x0001) {
          let q = x + 4;
          const need = () => {
            if (q + 8 > x + 4 + len) {
              throw new Error(`${what}: entry "${name}" has a short zip64 extra field`);
            }
            const v = u64(dv, q, what);
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = need();
          if (size === 0xffffffff) size = need();
          if (lho === 0xffffffff) lho = need();
        }
        x += 4 + len;
      }
      pending.push({ name, lho, size, usize, method, crc });
      p += 46 + nameLen + extraLen + commentLen;
    }
    const entries: ZipEntry[] = [];
    for (const e of pending) {
      if (opts.localHeaders === false) {
        // Directory only (the archive is being streamed): data offsets are found from the local headers later.
        if (e.lho + 30 + e.size > src.size) {
          throw new Error(`${what}: entry "${e.name}" runs past the end (truncated?)`);
        }
        entries.push({
          name: e.name,
          offset: -1,
          localHeaderOffset: e.lho,
          size: e.size,
          uncompressedSize: e.usize,
          method: e.method,
          crc32: e.crc,
        });
        continue;
      }
      if (e.lho + 30 > src.size) {
        throw new Error(`${what}: entry "${e.name}" starts beyond the end (truncated?)`);
      }
      const lh = await src.readAt(e.lho, 30);
      const ldv = new DataView(lh.buffer, lh.byteOffset, 30);
      if (ldv.getUint32(0, true) !== SIG_LOC) {
        throw new Error(`${what}: entry "${e.name}" has a bad local header (corrupt)`);
      }
      const offset = e.lho + 30 + ldv.getUint16(26, true) + ldv.getUint16(28, true);
      if (offset + e.size > src.size) {
        throw new Error(
          `${what}: entry "${e.name}" (${e.size} bytes at ${offset}) runs past the end (truncated?)`,
        );
      }
      if (e.method === 0 && e.size !== e.usize) {
        throw new Error(`${what}: stored entry "${e.name}" has mismatched sizes (corrupt)`);
      }
      entries.push({
        name: e.name,
        offset,
        localHeaderOffset: e.lho,
        size: e.size,
        uncompressedSize: e.usize,
        method: e.method,
        crc32: e.crc,
      });
    }
    return new ZipArchive(src, entries);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  get(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  entry(name: string): ZipEntry {
    const e = this.#byName.get(name);
    if (!e) throw new Error(`${this.origin}: no entry "${name}"`);
    return e;
  }

  /** A stored entry as a byte range readable in place (nested archives, tensor storages). */
  slice(name: string): RandomAccess {
    const e = this.entry(name);
    if (e.method !== 0) {
      throw new Error(
        `${this.origin}: entry "${name}" is compressed (method ${e.method}); large files must be stored uncompressed ` +
          `(re-create the archive with "zip -0", or unpack it)`,
      );
    }
    return new SliceAccess(this.source, e.offset, e.size, `${this.origin}!${name}`);
  }

  /**
   * The whole (uncompressed) contents of a small entry (at most `limit` bytes, default 64 MiB); CRC-32 is checked.
   * Deflate is inflated as a stream with a running output budget: it stops the moment the output passes the size the
   * directory declares, so a lying entry (a "zip bomb") costs at most one 16 KiB slice's output (≤ 16.5 MiB).
   */
  async read(name: string, limit = MAX_INFLATE): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e.uncompressedSize > limit) {
      throw new Error(
        `${this.origin}: entry "${name}" is too large to read whole (${e.uncompressedSize} bytes, the limit is ${limit})`,
      );
    }
    if (e.method === 0) {
      if (e.size !== e.uncompressedSize) {
        throw new Error(`${this.origin}!${name}: size ${e.size} != ${e.uncompressedSize}`);
      }
      const out = await this.source.readAt(e.offset, e.size);
      if (crc32(out) !== e.crc32) throw new Error(`${this.origin}!${name}: CRC-32 mismatch (corrupt)`);
      return out;
    }
    const s = new EntryStream(this, e);
    try {
      const out = await s.read(e.uncompressedSize);
      await s.finish();
      return out;
    } finally {
      s.close();
    }
  }

  close(): void {
    this.source.close();
  }
}

/**
 * Forward-only reader of one entry's uncompressed bytes, stored or deflated, with bounded memory (compressed input is
 * read in 4 MiB parts). For archives whose large members were compressed: they cannot be read in place, only streamed.
 * `finish()` reads to the end and checks the entry's CRC-32.
 */
export class EntryStream {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #bufPos = 0;
  #crc = 0;
  #produced = 0;
  /** Uncompressed bytes consumed so far. */
  position = 0;

  constructor(readonly zip: ZipArchive, readonly entry: ZipEntry) {
    const src = zip.source, e = entry;
    let off = 0;
    const PART = 4 * 2 ** 20;
    // Deflate can expand ~1000×: the inflater gets small slices, so one slice's output stays a few MiB at most
    // (a transform stream enqueues all the output of an input chunk at once, whatever the reader's pace).
    const SLICE = e.method === 0 ? PART : 16 * 1024;
    let cur: Uint8Array = new Uint8Array(0), curPos = 0;
    const raw = new ReadableStream<BufferSource>({
      async pull(ctrl) {
        if (curPos >= cur.length) {
          if (off >= e.size) return ctrl.close();
          const n = Math.min(PART, e.size - off);
          cur = await src.readAt(e.offset + off, n);
          curPos = 0;
          off += n;
        }
        const slice = cur.subarray(curPos, Math.min(cur.length, curPos + SLICE));
        curPos += slice.length;
        ctrl.enqueue(slice as Uint8Array<ArrayBuffer>);
      },
    }, { highWaterMark: 0 });
    if (e.method === 0) this.#reader = (raw as ReadableStream<Uint8Array>).getReader();
    else if (e.method === 8) {
      this.#reader = raw.pipeThrough(new DecompressionStream("deflate-raw")).getReader();
    } else {throw new Error(
        `${zip.origin}: entry "${e.name}" uses unsupported compression method ${e.method}`,
      );}
  }

  get origin(): string {
    return `${this.zip.origin}!${this.entry.name}`;
  }

  async #fill(): Promise<boolean> {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await this.#reader.read();
    } catch (e) {
      throw new Error(`${this.origin}: corrupt compressed data (${(e as Error).message})`);
    }
    if (r.done) return false;
    // The running output budget: the declared size, checked as each inflated slice arrives (not when consumed).
    this.#produced += r.value.length;
    if (this.#produced > this.entry.uncompressedSize) {
      this.close();
      throw new Error(
        `${this.origin}: inflates to more than its recorded size of ${this.entry.uncompressedSize} bytes (corrupt or a zip bomb)`,
      );
    }
    this.#buf = r.value;
    this.#bufPos = 0;
    this.#crc = crc32(r.value, this.#crc);
    return true;
  }

  /** Up to `max` bytes (at least 1) as a view, or null at the end. */
  async next(max: number): Promise<Uint8Array | null> {
    while (this.#bufPos >= this.#buf.length) if (!(await this.#fill())) return null;
    const n = Math.min(max, this.#buf.length - this.#bufPos);
    const out = this.#buf.subarray(this.#bufPos, this.#bufPos + n);
    this.#bufPos += n;
    this.position += n;
    if (this.position > this.entry.uncompressedSize) {
      throw new Error(`${this.origin}: more data than its recorded size (corrupt)`);
    }
    return out;
  }

  /** Exactly `n` bytes (a copy); throws naming the entry if it ends first. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const c = await this.next(n - done);
      if (!c) throw new Error(`${this.origin}: ends ${n - done} bytes early (truncated?)`);
      out.set(c, done);
      done += c.length;
    }
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const c = await this.next(left);
      if (!c) throw new Error(`${this.origin}: ends ${left} bytes early (truncated?)`);
      left -= c.length;
    }
  }

  /** Reads to the end; throws when the size or the CRC-32 disagrees with the directory. */
  async finish(): Promise<void> {
    while (await this.next(2 ** 30)) { /* drain */ }
    if (this.position !== this.entry.uncompressedSize) {
      throw new Error(
        `${this.origin}: ${this.position} bytes, the directory says ${this.entry.uncompressedSize} (corrupt)`,
      );
    }
    if (this.#crc !== this.entry.crc32) throw new Error(`${this.origin}: CRC-32 mismatch (corrupt)`);
  }

  close(): void {
    this.#reader.cancel().catch(() => {});
  }
}

let CRC_TABLES: Uint32Array[] | null = null;
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

function crcTables(): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1], t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n] >>> 8) ^ t0[prev[n] & 0xff];
    tables.push(t);
  }
  return tables;
}

/** Incremental CRC-32 (zip's polynomial): pass the previous value to continue. Native (node:zlib) when available. */
export function crc32(bytes: Uint8Array, prev = 0): number {
  if (nativeCrc32) return nativeCrc32(bytes, prev) >>> 0;
  return crc32Js(bytes, prev);
}

/** The same in plain TypeScript (slicing-by-8), for runtimes without zlib.crc32. */
export function crc32Js(bytes: Uint8Array, prev = 0): number {
  CRC_TABLES ??= crcTables();
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
  let c = (prev ^ 0xffffffff) >>> 0;
  let i = 0;
  const n = bytes.length;
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
    c = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
      t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** An entry to write with `writeZip`: bytes, or a byte count plus a producer (for multi-GB test archives). */
export interface ZipWriteEntry {
  name: string;
  data?: Uint8Array;
  size?: number;
  /** Streams exactly `size` bytes; the CRC is computed on the fly. */
  produce?: (sink: (chunk: Uint8Array) => Promise<void>) => Promise<void>;
  /** Store `data` deflated (method 8), as a plain `zip` of a download would. */
  deflate?: boolean;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Writes a stored (uncompressed) zip64-capable archive like torch.save does (data aligned to 64 bytes). For tests and
 * tools that generate checkpoints; always writes zip64 records when `forceZip64` or an offset/size needs them.
 */
export async function writeZip(
  path: string,
  entries: ZipWriteEntry[],
  opts: { forceZip64?: boolean } = {},
): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let pos = 0;
  const writeAll = async (b: Uint8Array) => {
    let d = 0;
    while (d < b.length) d += await file.write(b.subarray(d));
    pos += b.length;
  };
  const cen: Uint8Array[] = [];
  try {
    for (const e of entries) {
      const name = enc.encode(e.name);
      const usize = e.data ? e.data.length : e.size!;
      const payload = e.data && e.deflate ? await deflateRaw(e.data) : e.data;
      const method = e.data && e.deflate ? 8 : 0;
      const size = payload ? payload.length : usize; // stored size
      const lho = pos;
      const big = opts.forceZip64 || usize >= 0xffffffff || size >= 0xffffffff || lho >= 0xffffffff;
      // Local header: zip64 extra (sizes) when needed, then padding so the data starts on a 64-byte boundary.
      const z64Local = big ? 20 : 0;
      const base = 30 + name.length + z64Local + 4;
      const pad = (64 - ((lho + base) % 64)) % 64;
      const loc = new Uint8Array(30 + name.length + z64Local + 4 + pad);
      const ldv = new DataView(loc.buffer);
      ldv.setUint32(0, SIG_LOC, true);
      ldv.setUint16(4, big ? 45 : 20, true);
      ldv.setUint16(8, method, true);
      ldv.setUint32(18, big ? 0xffffffff : size, true);
      ldv.setUint32(22, big ? 0xffffffff : usize, true);
      ldv.setUint16(26, name.length, true);
      ldv.setUint16(28, z64Local + 4 + pad, true);
      loc.set(name, 30);
      let x = 30 + name.length;
      if (big) {
        ldv.setUint16(x, 1, true);
        ldv.setUint16(x + 2, 16, true);
        ldv.setBigUint64(x + 4, BigInt(usize), true);
        ldv.setBigUint64(x + 12, BigInt(size), true);
        x += 20;
      }
      ldv.setUint16(x, 0xcafe, true); // alignment padding field
      ldv.setUint16(x + 2, pad, true);
      await writeAll(loc);
      let crc = 0, written = 0;
      if (e.data) {
        crc = crc32(e.data);
        await writeAll(payload!);
        written = payload!.length;
      } else {
        await e.produce!(async (chunk) => {
          crc = crc32(chunk, crc);
          written += chunk.length;
          await writeAll(chunk);
        });
      }
      if (written !== size) {
        throw new Error(`writeZip: entry "${e.name}" produced ${written} of ${size} bytes`);
      }
      // Patch the CRC into the local header (known only now for produced entries).
      const crcBytes = new Uint8Array(4);
      new DataView(crcBytes.buffer).setUint32(0, crc, true);
      await file.seek(lho + 14, Deno.SeekMode.Start);
      await file.write(crcBytes);
      await file.seek(pos, Deno.SeekMode.Start);
      const z64 = big ? 28 : 0;
      const c = new Uint8Array(46 + name.length + z64);
      const cdv = new DataView(c.buffer);
      cdv.setUint32(0, SIG_CEN, true);
      cdv.setUint16(4, big ? 45 : 20, true);
      cdv.setUint16(6, big ? 45 : 20, true);
      cdv.setUint16(10, method, true);
      cdv.setUint32(16, crc, true);
      cdv.setUint32(20, big ? 0xffffffff : size, true);
      cdv.setUint32(24, big ? 0xffffffff : usize, true);
      cdv.setUint16(28, name.length, true);
      cdv.setUint16(30, z64, true);
      cdv.setUint32(42, big ? 0xffffffff : lho, true);
      c.set(name, 46);
      if (big) {
        const o = 46 + name.length;
        cdv.setUint16(o, 1, true);
        cdv.setUint16(o + 2, 24, true);
        cdv.setBigUint64(o + 4, BigInt(usize), true);
        cdv.setBigUint64(o + 12, BigInt(size), true);
        cdv.setBigUint64(o + 20, BigInt(lho), true);
      }
      cen.push(c);
    }
    const cdOffset = pos;
    let cdSize = 0;
    for (const c of cen) {
      await writeAll(c);
      cdSize += c.length;
    }
    const need64 = opts.forceZip64 || cdOffset >= 0xffffffff || entries.length >= 0xffff;
    if (need64) {
      const e64Off = pos;
      const r = new Uint8Array(56 + 20);
      const rdv = new DataView(r.buffer);
      rdv.setUint32(0, SIG_EOCD64, true);
      rdv.setBigUint64(4, 44n, true);
      rdv.setUint16(12, 45, true);
      rdv.setUint16(14, 45, true);
      rdv.setBigUint64(24, BigInt(entries.length), true);
      rdv.setBigUint64(32, BigInt(entries.length), true);
      rdv.setBigUint64(40, BigInt(cdSize), true);
      rdv.setBigUint64(48, BigInt(cdOffset), true);
      rdv.setUint32(56, SIG_LOC64, true);
      rdv.setBigUint64(64, BigInt(e64Off), true);
      rdv.setUint32(72, 1, true);
      await writeAll(r);
    }
    const end = new Uint8Array(22);
    const edv = new DataView(end.buffer);
    edv.setUint32(0, SIG_EOCD, true);
    edv.setUint16(8, need64 ? 0xffff : entries.length, true);
    edv.setUint16(10, need64 ? 0xffff : entries.length, true);
    edv.setUint32(12, need64 ? 0xffffffff : cdSize, true);
    edv.setUint32(16, need64 ? 0xffffffff : cdOffset, true);
    await writeAll(end);
  } finally {
    file.close();
  }
}
