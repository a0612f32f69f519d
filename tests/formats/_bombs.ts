// Hostile inputs built in the test itself (nothing downloaded): deflate bombs, zips whose directory lies about sizes,
// PNG/JPEG headers declaring huge rasters. Shared by the attack tests and `deno task fuzz`.

import { constants, deflateRawSync, deflateSync } from "node:zlib";
import { crc32 } from "../../src/formats/zip.ts";

/** A raw deflate stream that inflates to `mib` MiB of zeros, about 1 KB per MiB (1 MiB blocks repeated, then a final empty block). */
export function deflateBomb(mib: number): Uint8Array {
  const block = new Uint8Array(
    deflateRawSync(new Uint8Array(1 << 20), { finishFlush: constants.Z_SYNC_FLUSH }),
  );
  const out = new Uint8Array(block.length * mib + 2);
  for (let i = 0; i < mib; i++) out.set(block, i * block.length);
  out.set([0x03, 0x00], block.length * mib); // final fixed-Huffman block holding only end-of-block
  return out;
}

/** A one-entry zip written by hand, so its directory can state any uncompressed size and CRC. */
export function zipOneEntry(
  name: string,
  payload: Uint8Array,
  o: { method: 0 | 8; declaredSize: number; crc?: number },
): Uint8Array {
  const n = new TextEncoder().encode(name);
  const crc = o.crc ?? 0;
  const loc = new Uint8Array(30 + n.length);
  const lv = new DataView(loc.buffer);
  lv.setUint32(0, 0x04034b50, true);
  lv.setUint16(4, 20, true);
  lv.setUint16(8, o.method, true);
  lv.setUint32(14, crc, true);
  lv.setUint32(18, payload.length, true);
  lv.setUint32(22, o.declaredSize, true);
  lv.setUint16(26, n.length, true);
  loc.set(n, 30);
  const cen = new Uint8Array(46 + n.length);
  const cv = new DataView(cen.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(4, 20, true);
  cv.setUint16(6, 20, true);
  cv.setUint16(10, o.method, true);
  cv.setUint32(16, crc, true);
  cv.setUint32(20, payload.length, true);
  cv.setUint32(24, o.declaredSize, true);
  cv.setUint16(28, n.length, true);
  cv.setUint32(42, 0, true); // local header offset
  cen.set(n, 46);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, cen.length, true);
  ev.setUint32(16, loc.length + payload.length, true);
  const out = new Uint8Array(loc.length + payload.length + cen.length + eocd.length);
  out.set(loc, 0);
  out.set(payload, loc.length);
  out.set(cen, loc.length + payload.length);
  out.set(eocd, loc.length + payload.length + cen.length);
  return out;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  const td = new Uint8Array(4 + data.length);
  td.set(new TextEncoder().encode(type));
  td.set(data, 4);
  out.set(td, 4);
  v.setUint32(8 + data.length, crc32(td));
  return out;
}

/**
 * A valid 8-bit RGB PNG of `width`×`height` zeros, IDAT compressed at level 9 (a 20000×20000 one is ~1.2 MB on disk
 * and 1.6 GB as RGBA). `rows` limits how many rows are actually encoded (the rest missing: a truncated bomb).
 */
export function pngBomb(width: number, height: number, rows = height): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // depth
  ihdr[9] = 2; // RGB
  const raw = new Uint8Array(rows * (1 + 3 * width)); // filter byte 0 + zero samples per row
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

/** A baseline JPEG's bytes with its SOF0 frame size rewritten to `width`×`height` (the scan data stays tiny). */
export function jpegWithSize(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const out = jpeg.slice();
  for (let i = 2; i + 9 < out.length;) {
    if (out[i] !== 0xff) throw new Error("jpegWithSize: marker expected");
    const m = out[i + 1];
    const len = (out[i + 2] << 8) | out[i + 3];
    if (m === 0xc0 || m === 0xc2) {
      out[i + 5] = height >> 8, out[i + 6] = height & 255, out[i + 7] = width >> 8, out[i + 8] = width & 255;
      return out;
    }
    i += 2 + len;
  }
  throw new Error("jpegWithSize: no SOF0/SOF2 frame header");
}
