// NumPy .npy reader/writer (format 1.0-3.0, little-endian, C order) for fixtures, cluster labels and tools.
// Not a general ndarray: int64 is narrowed to Int32Array (values must fit), big-endian and Fortran order are rejected.

export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array | Uint32Array;

export interface NpyArray {
  /** NumPy dtype descriptor as stored, e.g. "<f4", "<i8". */
  descr: string;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses .npy bytes; `what` names the file in error messages. */
export function parseNpy(bytes: Uint8Array, what = "npy data"): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${what}: not a .npy file (bad magic)`);
  }
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number, start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new Error(`${what}: truncated header (${bytes.length} bytes)`);
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else throw new Error(`${what}: unsupported .npy version ${major}`);
  if (start + headerLen > bytes.length) throw new Error(`${what}: truncated header`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = header.match(/'descr':\s*'([^']+)'/)?.[1];
  const fortran = header.match(/'fortran_order':\s*(True|False)/)?.[1];
  const shapeStr = header.match(/'shape':\s*\(([^)]*)\)/)?.[1];
  if (!descr || !fortran || shapeStr === undefined) {
    throw new Error(`${what}: malformed .npy header: ${header.trim()}`);
  }
  if (fortran === "True") {
    throw new Error(`${what}: Fortran-ordered arrays are not supported (save with C order)`);
  }
  const shape = shapeStr.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${what}: bad shape (${shapeStr})`);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const size: Record<string, number> = {
    "<f4": 4,
    "<f8": 8,
    "<i8": 8,
    "<i4": 4,
    "<u4": 4,
    "|u1": 1,
    "|b1": 1,
  };
  const es = size[descr];
  if (!es) {
    throw new Error(
      `${what}: unsupported dtype '${descr}' (expected little-endian f4, f8, i4, i8, u4 or u1)`,
    );
  }
  if (off + n * es > bytes.length) {
    throw new Error(`${what}: truncated data (${bytes.length - off} bytes for ${n} × ${descr} = ${n * es})`);
  }
  const raw = bytes.slice(off, off + n * es).buffer;
  let data: NpyData;
  switch (descr) {
    case "<f4":
      data = new Float32Array(raw);
      break;
    case "<f8":
      data = new Float64Array(raw);
      break;
    case "<i4":
      data = new Int32Array(raw);
      break;
    case "<u4":
      data = new Uint32Array(raw);
      break;
    case "<i8": {
      const big = new BigInt64Array(raw);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = big[i];
        if (v > 2147483647n || v < -2147483648n) {
          throw new Error(`${what}: int64 value ${v} at [${i}] does not fit int32`);
        }
        out[i] = Number(v);
      }
      data = out;
      break;
    }
    default:
      data = new Uint8Array(raw);
  }
  return { descr, shape, data };
}

export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`);
  }
  return parseNpy(bytes, path);
}

/** Serialises a C-order array; Int32Array can be widened to int64 ("<i8") as NumPy tools expect for ids. */
export function encodeNpy(data: NpyData, shape: number[], opts: { int64?: boolean } = {}): Uint8Array {
  let descr: string, body: Uint8Array;
  if (data instanceof Int32Array && opts.int64) {
    const big = new BigInt64Array(data.length);
    data.forEach((v, i) => big[i] = BigInt(v));
    descr = "<i8";
    body = new Uint8Array(big.buffer);
  } else {
    descr = data instanceof Float32Array
      ? "<f4"
      : data instanceof Float64Array
      ? "<f8"
      : data instanceof Int32Array
      ? "<i4"
      : data instanceof Uint32Array
      ? "<u4"
      : "|u1";
    body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + body.length);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}
