import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- the team convention: npm packages pinned inline
import { encode as encodePngRaw } from "npm:fast-png@8.0.0";
import {
  centerCrop,
  decodeImage,
  decodePreprocessOffThread,
  encodeJpeg,
  encodePng,
  MAX_IMAGE_PIXELS,
  preprocessFloat,
  preprocessRgba8,
  readImageHeader,
  resizedSize,
  toRgba8,
} from "../../src/formats/image.ts";
import { readNpy } from "../../src/formats/npy.ts";
import { jpegWithSize, pngBomb } from "./_bombs.ts";
import { assertClose, rng } from "../_util.ts";

const GOLDEN = new URL("../testdata/cogview2-tiny/golden/", import.meta.url).pathname;

function randomRgba(w: number, h: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(4 * w * h);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  return out;
}

Deno.test("image: PNG encode → decode gives the same RGBA bytes (odd sizes)", () => {
  for (const [w, h] of [[1, 1], [37, 61], [129, 3]]) {
    const rgba = randomRgba(w, h, w * 7 + h);
    const png = encodePng(rgba, w, h);
    assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");
    const d = decodeImage(png);
    assert.equal(d.width, w);
    assert.equal(d.height, h);
    assert.deepEqual(d.data, rgba);
  }
});

Deno.test("image: grey, grey+alpha, RGB, 16-bit and 1-bit PNGs decode to RGBA8", () => {
  const w = 5, h = 3;
  const grey = Uint8Array.from({ length: w * h }, (_, i) => i * 17);
  let d = decodeImage(encodePngRaw({ width: w, height: h, data: grey, channels: 1, depth: 8 }));
  for (let i = 0; i < w * h; i++) {
    assert.deepEqual([...d.data.subarray(4 * i, 4 * i + 4)], [i * 17, i * 17, i * 17, 255]);
  }
  const ga = Uint8Array.from({ length: 2 * w * h }, (_, i) => (i * 29) % 256);
  d = decodeImage(encodePngRaw({ width: w, height: h, data: ga, channels: 2, depth: 8 }));
  for (let i = 0; i < w * h; i++) {
    assert.deepEqual([...d.data.subarray(4 * i, 4 * i + 4)], [
      ga[2 * i],
      ga[2 * i],
      ga[2 * i],
      ga[2 * i + 1],
    ]);
  }
  const rgb = Uint8Array.from({ length: 3 * w * h }, (_, i) => (i * 31) % 256);
  d = decodeImage(encodePngRaw({ width: w, height: h, data: rgb, channels: 3, depth: 8 }));
  for (let i = 0; i < w * h; i++) {
    assert.deepEqual([...d.data.subarray(4 * i, 4 * i + 4)], [
      rgb[3 * i],
      rgb[3 * i + 1],
      rgb[3 * i + 2],
      255,
    ]);
  }
  const rgb16 = Uint16Array.from({ length: 3 * w * h }, (_, i) => (i * 4099) % 65536);
  d = decodeImage(encodePngRaw({ width: w, height: h, data: rgb16, channels: 3, depth: 16 }));
  for (let i = 0; i < 3 * w * h; i++) assert.equal(d.data[4 * Math.floor(i / 3) + (i % 3)], rgb16[i] >> 8);
  // 1-bit grey, rows padded to whole bytes: 5 pixels → 1 byte per row.
  const bits = Uint8Array.from([0b10100000, 0b01011000, 0b11111000]);
  d = decodeImage(encodePngRaw({ width: w, height: h, data: bits, channels: 1, depth: 1 }));
  const expect = [1, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1];
  for (let i = 0; i < w * h; i++) assert.equal(d.data[4 * i], expect[i] * 255, `1-bit pixel ${i}`);
});

Deno.test("image: JPEG encode → decode stays close (smooth image, quality 95)", () => {
  const w = 61, h = 37;
  const rgba = new Uint8Array(4 * w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      rgba[i] = 40 + 3 * x, rgba[i + 1] = 200 - 4 * y, rgba[i + 2] = 128 + x - y, rgba[i + 3] = 255;
    }
  }
  const jpg = encodeJpeg(rgba, w, h, 95);
  assert.deepEqual([jpg[0], jpg[1], jpg[2]], [0xff, 0xd8, 0xff]);
  const d = decodeImage(jpg);
  assert.deepEqual([d.width, d.height], [w, h]);
  let maxErr = 0;
  for (let i = 0; i < rgba.length; i++) {
    if (i % 4 === 3) assert.equal(d.data[i], 255);
    else maxErr = Math.max(maxErr, Math.abs(d.data[i] - rgba[i]));
  }
  assert.ok(maxErr <= 8, `JPEG q95 max error ${maxErr}`);
  assert.throws(() => encodeJpeg(rgba, w, h, 0), /quality must be in 1\.\.100/);
});

Deno.test("image: decode errors are named", () => {
  assert.throws(() => decodeImage(new Uint8Array([1, 2, 3, 4])), /not a PNG or JPEG file/);
  assert.throws(() => decodeImage(new Uint8Array(0)), /not a PNG or JPEG file/);
  const png = encodePng(randomRgba(9, 7, 1), 9, 7);
  assert.throws(() => decodeImage(png.subarray(0, 40)), /invalid PNG/);
  const jpg = encodeJpeg(randomRgba(9, 7, 2), 9, 7);
  assert.throws(() => decodeImage(jpg.subarray(0, 30)), /invalid JPEG/);
  assert.throws(() => encodePng(new Uint8Array(10), 3, 3), /encodePng: rgba has 10 bytes, expected 4x3x3/);
  assert.throws(() => encodePng(new Uint8Array(0), 0, 3), /positive integers/);
});

Deno.test("image: toRgba8 is CogView2's save_image rounding (x·255 + 0.5, clamp, truncate)", () => {
  const img = Float32Array.from([-0.5, 0, 0.5, 1.5, 0.004, 0.998, 1, 0.25, 2 / 255]);
  // [3, 1, 3]: channel planes of 3 pixels.
  const out = toRgba8(img, 1, 3);
  const px = (i: number) => [...out.subarray(4 * i, 4 * i + 4)];
  assert.deepEqual(px(0), [0, 255, 255, 255]);
  assert.deepEqual(px(1), [0, 1, 64, 255]);
  assert.deepEqual(px(2), [128, 254, 2, 255]);
  assert.throws(() => toRgba8(img, 2, 2), /expected 3x2x2/);
});

Deno.test("image: torchvision Resize size and CenterCrop offsets (half to even)", () => {
  assert.deepEqual(resizedSize(210, 275, 160), { h: 160, w: 209 });
  assert.deepEqual(resizedSize(300, 221, 160), { h: 217, w: 160 });
  assert.deepEqual(resizedSize(160, 160, 160), { h: 160, w: 160 });
  // (5 − 2)/2 = 1.5 → 2, (7 − 2)/2 = 2.5 → 2.
  const src = Float32Array.from({ length: 5 * 7 }, (_, i) => i);
  const c = centerCrop(src, { c: 1, h: 5, w: 7 }, 2);
  assert.deepEqual([...c], [2 * 7 + 2, 2 * 7 + 3, 3 * 7 + 2, 3 * 7 + 3]);
  assert.throws(() => centerCrop(src, { c: 1, h: 5, w: 7 }, 6), /smaller than the 6 crop/);
});

Deno.test("image: icetk float (torch) preprocessing matches icetk_encode_resize's recorded tensor", async () => {
  const c = JSON.parse(await Deno.readTextFile(GOLDEN + "icetk_encode_resize.json"));
  const img = await readNpy(GOLDEN + "icetk_encode_resize.image.npy");
  const [, , h, w] = img.shape;
  const size = c.expected.preprocessed.shape[1];
  const got = preprocessFloat(img.data as Float32Array, h, w, size);
  const want = await readNpy(GOLDEN + "icetk_encode_resize.preprocessed.npy");
  assertClose("preprocessFloat", got, want.data, { atol: c.expected.preprocessed.atol });
});

Deno.test("image: icetk PIL (uint8) preprocessing matches icetk_encode_pil's recorded tensor", async () => {
  const c = JSON.parse(await Deno.readTextFile(GOLDEN + "icetk_encode_pil.json"));
  const img = await readNpy(GOLDEN + "icetk_encode_pil.image_uint8_hwc.npy");
  const [h, w] = img.shape;
  const rgba = new Uint8Array(4 * h * w);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) rgba[4 * i + k] = img.data[3 * i + k];
    rgba[4 * i + 3] = 255;
  }
  const size = c.expected.preprocessed.shape[1];
  const got = preprocessRgba8(rgba, h, w, size);
  const want = await readNpy(GOLDEN + "icetk_encode_pil.preprocessed.npy");
  assertClose("preprocessRgba8", got, want.data, { atol: c.expected.preprocessed.atol });
  // Through a PNG file too (lossless): the same tensor.
  const back = decodeImage(encodePng(rgba, w, h));
  assertClose("preprocessRgba8 via PNG", preprocessRgba8(back.data, h, w, size), want.data, {
    atol: c.expected.preprocessed.atol,
  });
});

Deno.test("image attack: a PNG/JPEG declaring a huge raster is refused from its header, before any allocation", () => {
  // The attack run's shape: a small PNG declaring 20000×20000 (here 2 rows encoded: 180 bytes; the real attack's full
  // IDAT was 389 KB). Unchecked, decoding allocated 4·20000·20000 bytes and more (7.2 GB RSS on the server).
  const png = pngBomb(20000, 20000, 2);
  const jpg = jpegWithSize(encodeJpeg(randomRgba(16, 16, 3), 16, 16), 20000, 20000);
  const rss0 = Deno.memoryUsage().rss, t0 = performance.now();
  assert.throws(() => decodeImage(png), /PNG: 20000x20000 is too large \(the limit is 16777216 pixels/);
  assert.throws(() => decodeImage(jpg), /JPEG: 20000x20000 is too large/);
  assert.throws(() => readImageHeader(pngBomb(4097, 4096, 1)), /too large/);
  assert.throws(() => readImageHeader(pngBomb(16385, 1, 1)), /too large/);
  assert.deepEqual(readImageHeader(pngBomb(4096, 4096, 1)), { format: "png", width: 4096, height: 4096 });
  const ms = performance.now() - t0, grew = (Deno.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(`oversized PNG + JPEG refused in ${ms.toFixed(1)} ms, RSS +${grew.toFixed(0)} MiB`);
  assert.ok(grew < 64, `RSS grew ${grew} MiB`);
  assert.equal(MAX_IMAGE_PIXELS, 4096 * 4096);
});

Deno.test("image attack: PNG image data inflating past what its header needs is stopped at that budget", () => {
  // A 64×64 RGB header (12352 scanline bytes) whose IDAT inflates to 64 MiB: the IDAT of a 4096×5461 image.
  const big = pngBomb(4096, 5461);
  const small = pngBomb(64, 64);
  const idatOf = (p: Uint8Array) => {
    const v = new DataView(p.buffer, p.byteOffset);
    return { at: 33, len: v.getUint32(33) };
  };
  const b = idatOf(big), s = idatOf(small);
  const lying = new Uint8Array(33 + 12 + b.len + 12);
  lying.set(small.subarray(0, 33));
  lying.set(big.subarray(b.at, b.at + 12 + b.len), 33);
  lying.set(small.subarray(s.at + 12 + s.len), 33 + 12 + b.len); // IEND
  const rss0 = Deno.memoryUsage().rss, t0 = performance.now();
  assert.throws(() => decodeImage(lying), /inflates to more than the 12352 bytes its header needs/);
  const ms = performance.now() - t0, grew = (Deno.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(
    `PNG with a 64 MiB IDAT behind a 64x64 header refused in ${ms.toFixed(1)} ms, RSS +${
      grew.toFixed(0)
    } MiB`,
  );
  assert.ok(grew < 32, `RSS grew ${grew} MiB`);
  // The real thing still decodes.
  assert.equal(decodeImage(small).width, 64);
});

Deno.test("image: decodePreprocessOffThread decodes in a worker (the event loop keeps turning) and matches", async () => {
  const w = 1500, h = 1100;
  const png = encodePng(randomRgba(w, h, 11), w, h);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  const got = await decodePreprocessOffThread(png, 480);
  const ms = performance.now() - t0;
  clearInterval(timer);
  const direct = decodeImage(png);
  assert.deepEqual(got.image, preprocessRgba8(direct.data, h, w, 480));
  assert.equal(got.width, w);
  // A 5 ms timer on a blocked loop would fire about once; on a free one about ms/5 times (loose: a loaded machine).
  console.log(`off-thread decode of ${w}x${h}: ${ms.toFixed(0)} ms, ${ticks} timer ticks meanwhile`);
  assert.ok(ticks >= Math.min(5, ms / 20), `only ${ticks} ticks in ${ms} ms: the loop was blocked`);
  await assert.rejects(decodePreprocessOffThread(new Uint8Array([1, 2, 3]), 480), /not a PNG or JPEG/);
  const ac = new AbortController();
  const p = decodePreprocessOffThread(png, 480, ac.signal);
  ac.abort(new DOMException("stop", "AbortError"));
  await assert.rejects(p, /stop/);
});
