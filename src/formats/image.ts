// Image files and icetk's pixel preprocessing: PNG (fast-png) and JPEG (jpeg-js) to/from RGBA8, CHW float ↔ 8-bit as
// CogView2 saves, and torchvision's Resize + CenterCrop as icetk applies them. Not an image editor: no colour management.

// deno-lint-ignore no-import-prefix -- the team convention: npm packages pinned inline
import { decode as decodePngRaw, encode as encodePngRaw } from "npm:fast-png@8.0.0";
// deno-lint-ignore no-import-prefix -- the team convention: npm packages pinned inline
import jpeg from "npm:jpeg-js@0.4.4";
import { inflateSync } from "node:zlib";

/** An 8-bit RGBA raster, row-major, 4 bytes per pixel. */
export interface Rgba8Image {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * CHW float [3, h, w] (nominally [0, 1]) → RGBA8 as CogView2's save_image does: x·255 + 0.5, clamped to [0, 255],
 * truncated to uint8 (float32 arithmetic); alpha 255.
 */
export function toRgba8(image: Float32Array, h: number, w: number): Uint8Array {
  if (image.length !== 3 * h * w) {
    throw new Error(`toRgba8: image has ${image.length} values, expected 3x${h}x${w}`);
  }
  const out = new Uint8Array(4 * h * w);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.fround(Math.fround(image[c * plane + i] * 255) + 0.5);
      out[4 * i + c] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
    }
    out[4 * i + 3] = 255;
  }
  return out;
}

/** RGBA8 → planar [3, h, w] uint8 values (alpha dropped), as torchvision's pil_to_tensor of an RGB image. */
export function rgba8ToChwU8(rgba: Uint8Array, h: number, w: number): Float32Array {
  if (rgba.length !== 4 * h * w) throw new Error(`rgba8ToChwU8: ${rgba.length} bytes, expected 4x${h}x${w}`);
  const out = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) out[c * h * w + i] = rgba[4 * i + c];
  return out;
}

function checkRaster(what: string, rgba: Uint8Array, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${what}: width/height must be positive integers, got ${width}x${height}`);
  }
  if (rgba.length !== 4 * width * height) {
    throw new Error(`${what}: rgba has ${rgba.length} bytes, expected 4x${width}x${height}`);
  }
}

/** RGBA8 → PNG bytes (8-bit RGBA). */
export function encodePng(rgba: Uint8Array, width: number, height: number): Uint8Array {
  checkRaster("encodePng", rgba, width, height);
  return encodePngRaw({ width, height, data: rgba, channels: 4, depth: 8 });
}

/** RGBA8 → baseline JPEG bytes; quality 1..100 (alpha ignored). */
export function encodeJpeg(rgba: Uint8Array, width: number, height: number, quality = 95): Uint8Array {
  checkRaster("encodeJpeg", rgba, width, height);
  if (!(quality >= 1 && quality <= 100)) {
    throw new Error(`encodeJpeg: quality must be in 1..100, got ${quality}`);
  }
  const { data } = jpeg.encode({ data: rgba, width, height }, quality);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * The largest raster decodeImage accepts: 4096×4096 = 16,777,216 pixels, no side over 16384. Checked from the header
 * before anything is allocated. At the limit the decode + icetk preprocessing peaks at about 0.4 GB (RGBA 64 MiB,
 * the decoder's own samples ≤ 64 MiB, the float CHW copy 192 MiB); the text-guided completion resizes everything to
 * 480×480 anyway. (Unchecked, a 389 KB PNG declaring 20000×20000 took the server to 7.2 GB.)
 */
export const MAX_IMAGE_PIXELS = 4096 * 4096;
export const MAX_IMAGE_SIDE = 16384;

export interface ImageHeader {
  format: "png" | "jpeg";
  width: number;
  height: number;
}

function checkDimensions(what: string, width: number, height: number): void {
  if (!(width >= 1 && height >= 1)) throw new Error(`${what}: empty image (${width}x${height})`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `${what}: ${width}x${height} is too large (the limit is ${MAX_IMAGE_PIXELS} pixels, e.g. 4096x4096, ` +
        `and ${MAX_IMAGE_SIDE} per side)`,
    );
  }
}

/** Format and size from the file's header only (cheap: for request validation); throws on a bad or too large one. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 33 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
      throw new Error("decodeImage: invalid PNG (no IHDR chunk first)");
    }
    const h = { format: "png" as const, width: v.getUint32(16), height: v.getUint32(20) };
    checkDimensions("decodeImage: PNG", h.width, h.height);
    return h;
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    // Walk the marker segments to the first frame header (SOF0..SOF15 except DHT/JPG/DAC).
    for (let i = 2; i + 4 <= bytes.length;) {
      if (bytes[i] !== 0xff) throw new Error(`decodeImage: invalid JPEG (no marker at byte ${i})`);
      const m = bytes[i + 1];
      if (m === 0xff) {
        i++;
        continue;
      }
      if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
        i += 2;
        continue;
      }
      const len = (bytes[i + 2] << 8) | bytes[i + 3];
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        if (i + 9 > bytes.length) break;
        const h = {
          format: "jpeg" as const,
          height: (bytes[i + 5] << 8) | bytes[i + 6],
          width: (bytes[i + 7] << 8) | bytes[i + 8],
        };
        checkDimensions("decodeImage: JPEG", h.width, h.height);
        return h;
      }
      if (m === 0xd9 || m === 0xda || len < 2) break;
      i += 2 + len;
    }
    throw new Error("decodeImage: invalid JPEG (no frame header before the image data)");
  }
  throw new Error("decodeImage: not a PNG or JPEG file (unrecognised signature)");
}

/**
 * PNG or JPEG bytes → RGBA8 (grey, palette, 16-bit and alpha PNGs converted; alpha kept, not composited). The size
 * is checked against MAX_IMAGE_PIXELS before anything is allocated, and PNG image data is inflated with an output
 * budget of exactly what the header's raster needs. Synchronous CPU work: servers call decodeImageOffThread.
 */
export function decodeImage(bytes: Uint8Array): Rgba8Image {
  const header = readImageHeader(bytes);
  if (header.format === "png") return decodePng(bytes, header);
  let img;
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 512,
    });
  } catch (e) {
    throw new Error(`decodeImage: invalid JPEG (${(e as Error).message ?? e})`);
  }
  if (img.width !== header.width || img.height !== header.height) {
    throw new Error(
      `decodeImage: invalid JPEG (decoded ${img.width}x${img.height}, header ${header.width}x${header.height})`,
    );
  }
  return {
    width: img.width,
    height: img.height,
    data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength),
  };
}

/** Bytes of filtered scanlines a PNG of this header holds (Adam7 passes summed when interlaced). */
function pngRasterBytes(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
    0,
    1,
    1,
    2,
  ]];
  let n = 0;
  for (const [x0, y0, dx, dy] of passes) {
    n += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  }
  return n;
}

/**
 * Checks a PNG's chunks before the decoder sees it: the image data must inflate to no more than the raster the
 * header declares (node:zlib stops at that budget), and only the chunks that make the image (IHDR, PLTE, tRNS,
 * IDAT, IEND) are passed on, so compressed ancillary chunks (iCCP, zTXt, iTXt) are never inflated.
 */
function sanitizePng(bytes: Uint8Array, header: ImageHeader): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keep: Uint8Array[] = [bytes.subarray(0, 8)];
  const idat: Uint8Array[] = [];
  let depth = 0, colour = 0, interlaced = false, end = false;
  for (let i = 8; i + 12 <= bytes.length && !end;) {
    const len = v.getUint32(i);
    const type = String.fromCharCode(...bytes.subarray(i + 4, i + 8));
    if (i + 12 + len > bytes.length) throw new Error(`decodeImage: invalid PNG (chunk ${type} is truncated)`);
    const chunk = bytes.subarray(i, i + 12 + len);
    if (type === "IHDR") {
      depth = bytes[i + 16], colour = bytes[i + 17], interlaced = bytes[i + 20] === 1;
    }
    if (type === "IDAT") idat.push(bytes.subarray(i + 8, i + 8 + len));
    if (["IHDR", "PLTE", "tRNS", "IDAT", "IEND"].includes(type)) keep.push(chunk);
    end = type === "IEND";
    i += 12 + len;
  }
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colour];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) {
    throw new Error(`decodeImage: invalid PNG (colour type ${colour}, bit depth ${depth})`);
  }
  const budget = pngRasterBytes(header.width, header.height, channels * depth, interlaced);
  const z = new Uint8Array(idat.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of idat) (z.set(c, o), o += c.length);
  try {
    inflateSync(z, { maxOutputLength: budget });
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new Error(
      /larger than/.test(msg)
        ? `decodeImage: invalid PNG (image data inflates to more than the ${budget} bytes its header needs)`
        : `decodeImage: invalid PNG (${msg})`,
    );
  }
  const out = new Uint8Array(keep.reduce((a, c) => a + c.length, 0));
  o = 0;
  for (const c of keep) (out.set(c, o), o += c.length);
  return out;
}

function decodePng(bytes: Uint8Array, header: ImageHeader): Rgba8Image {
  let png;
  try {
    png = decodePngRaw(sanitizePng(bytes, header));
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new Error(msg.startsWith("decodeImage:") ? msg : `decodeImage: invalid PNG (${msg})`);
  }
  const { width, height, channels, depth } = png;
  const n = width * height;
  const rgba = new Uint8Array(4 * n);
  const data = png.data as ArrayLike<number>;
  if (depth >= 8 && data.length < n * channels) {
    throw new Error(
      `decodeImage: invalid PNG (image data ends early: ${data.length} samples for ${width}x${height})`,
    );
  }
  const palette = png.palette as number[][] | undefined;
  // 16-bit samples → 8 bits as PIL does (high byte); 1/2/4-bit grey is scaled to 0..255.
  const to8 = depth === 16
    ? (v: number) => v >> 8
    : depth < 8 && !palette
    ? (v: number) => Math.round(v * 255 / ((1 << depth) - 1))
    : (v: number) => v;
  for (let i = 0; i < n; i++) {
    let r: number, g: number, b: number, a = 255;
    if (palette) {
      const idx = depth < 8 ? unpackBits(data as Uint8Array, i, width, depth) : data[i];
      const p = palette[idx] ?? [0, 0, 0];
      [r, g, b] = p;
      if (p.length > 3) a = p[3];
    } else if (channels === 1 || channels === 2) {
      const v = to8(depth < 8 ? unpackBits(data as Uint8Array, i, width, depth) : data[i * channels]);
      r = g = b = v;
      if (channels === 2) a = to8(data[i * 2 + 1]);
    } else {
      r = to8(data[i * channels]), g = to8(data[i * channels + 1]), b = to8(data[i * channels + 2]);
      if (channels === 4) a = to8(data[i * 4 + 3]);
    }
    rgba[4 * i] = r, rgba[4 * i + 1] = g, rgba[4 * i + 2] = b, rgba[4 * i + 3] = a;
  }
  return { width, height, data: rgba };
}

/** Sample i of a bit-packed (rows padded to whole bytes) 1/2/4-bit image. */
function unpackBits(data: Uint8Array, i: number, width: number, depth: number): number {
  const y = Math.floor(i / width), x = i % width;
  const rowBytes = Math.ceil((width * depth) / 8);
  const bit = x * depth;
  const byte = data[y * rowBytes + (bit >> 3)];
  return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

// ---------------------------------------------------------------- icetk preprocessing (torchvision 0.14 semantics)

/** Python's round(): half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision Resize(size) output size: the shorter side becomes `size`, the longer int(size·long/short). */
export function resizedSize(h: number, w: number, size: number): { h: number; w: number } {
  if (h <= w) return { h: size, w: Math.trunc((size * w) / h) };
  return { h: Math.trunc((size * h) / w), w: size };
}

/** Source taps of PyTorch's bilinear upsample (align_corners False): float scale, double index, float weights. */
function taps(
  inSize: number,
  outSize: number,
): { i0: Int32Array; i1: Int32Array; l0: Float32Array; l1: Float32Array } {
  const scale = Math.fround(inSize / outSize);
  const i0 = new Int32Array(outSize),
    i1 = new Int32Array(outSize),
    l0 = new Float32Array(outSize),
    l1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    // The float scale times (d + 0.5) − 0.5 stays in double (the 0.5 literals are doubles); only λ is stored as float.
    let src = scale * (d + 0.5) - 0.5;
    if (src < 0) src = 0;
    const a = Math.min(Math.trunc(src), inSize - 1);
    i0[d] = a;
    i1[d] = a + (a < inSize - 1 ? 1 : 0);
    l1[d] = Math.fround(src - a);
    l0[d] = Math.fround(1 - l1[d]);
  }
  return { i0, i1, l0, l1 };
}

/** F.interpolate(mode="bilinear", align_corners=False, antialias=False) of planar [c, h, w] float32 (CPU kernel order). */
export function resizeBilinear(
  src: Float32Array,
  dims: { c: number; h: number; w: number },
  oh: number,
  ow: number,
): Float32Array {
  const { c, h, w } = dims;
  if (src.length !== c * h * w) {
    throw new Error(`resizeBilinear: ${src.length} values, expected ${c}x${h}x${w}`);
  }
  const ty = taps(h, oh), tx = taps(w, ow);
  const f = Math.fround;
  const out = new Float32Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    const b = ch * h * w;
    for (let y = 0; y < oh; y++) {
      const r0 = b + ty.i0[y] * w, r1 = b + ty.i1[y] * w, h0 = ty.l0[y], h1 = ty.l1[y];
      for (let x = 0; x < ow; x++) {
        const x0 = tx.i0[x], x1 = tx.i1[x], w0 = tx.l0[x], w1 = tx.l1[x];
        const top = f(f(w0 * src[r0 + x0]) + f(w1 * src[r0 + x1]));
        const bot = f(f(w0 * src[r1 + x0]) + f(w1 * src[r1 + x1]));
        out[(ch * oh + y) * ow + x] = f(f(h0 * top) + f(h1 * bot));
      }
    }
  }
  return out;
}

/** CenterCrop(size) of planar [c, h, w]: offsets int(round((L − size)/2)), half to even as Python. */
export function centerCrop(
  src: Float32Array,
  dims: { c: number; h: number; w: number },
  size: number,
): Float32Array {
  const { c, h, w } = dims;
  if (h < size || w < size) throw new Error(`centerCrop: a ${h}x${w} image is smaller than the ${size} crop`);
  const top = roundHalfEven((h - size) / 2), left = roundHalfEven((w - size) / 2);
  const out = new Float32Array(c * size * size);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < size; y++) {
      const s = (ch * h + top + y) * w + left;
      out.set(src.subarray(s, s + size), (ch * size + y) * size);
    }
  }
  return out;
}

/**
 * icetk.encode(image_torch=x, image_size=size) preprocessing of a float [3, h, w] image in [0, 1]:
 * Resize(size) (bilinear, no antialias) then CenterCrop(size). Returns [3, size, size].
 */
export function preprocessFloat(image: Float32Array, h: number, w: number, size: number): Float32Array {
  const r = resizedSize(h, w, size);
  return centerCrop(resizeBilinear(image, { c: 3, h, w }, r.h, r.w), { c: 3, h: r.h, w: r.w }, size);
}

/**
 * icetk.encode(image_pil=img, image_size=size) preprocessing of an 8-bit RGBA raster: pil_to_tensor (uint8), Resize on
 * the uint8 tensor (float bilinear, rounded half-to-even back to uint8), CenterCrop, then / 255. Returns [3, size, size].
 */
export function preprocessRgba8(rgba: Uint8Array, h: number, w: number, size: number): Float32Array {
  const r = resizedSize(h, w, size);
  const resized = resizeBilinear(rgba8ToChwU8(rgba, h, w), { c: 3, h, w }, r.h, r.w);
  const out = centerCrop(resized, { c: 3, h: r.h, w: r.w }, size);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.fround(Math.min(255, Math.max(0, roundHalfEven(out[i]))) / 255);
  }
  return out;
}

/** What decodePreprocessOffThread returns: the file's size and icetk's [3, size, size] float input. */
export interface PreprocessedImage {
  width: number;
  height: number;
  image: Float32Array;
}

/**
 * decodeImage + preprocessRgba8 in a Worker, so the seconds a large upload takes never block the caller's event
 * loop (the server's /healthz and streams keep answering). Aborting `signal` terminates the worker.
 */
export async function decodePreprocessOffThread(
  bytes: Uint8Array,
  size: number,
  signal?: AbortSignal,
): Promise<PreprocessedImage> {
  readImageHeader(bytes); // a bad or oversized file fails here, before a worker starts
  return await new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./image_worker.ts", import.meta.url).href, { type: "module" });
    const done = () => {
      worker.terminate();
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal!.reason ?? new DOMException("Aborted", "AbortError"));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    worker.onmessage = (e: MessageEvent<{ ok: PreprocessedImage } | { error: string }>) => {
      done();
      if ("ok" in e.data) resolve(e.data.ok);
      else reject(new Error(e.data.error));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      done();
      reject(new Error(`decodeImage: the decoding worker failed (${e.message})`));
    };
    worker.postMessage({ bytes, size });
  });
}
