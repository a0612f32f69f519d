// Conformance handlers for icetk's image tokenizer: kinds icetk_decode, icetk_encode and icetk_roundtrip, through the
// Vqvae model loaded from the converted fixture and the icetk preprocessing of src/formats/image.ts.
// Sizes, compress rate and tolerances come from each case file; near-tie codes are excused only where the case records
// a gap below its per-position tolerance (and the code is the recorded runner-up).

import type { GpuContext } from "../gpu/context.ts";
import type { NpyArray } from "../formats/npy.ts";
import { preprocessFloat, preprocessRgba8 } from "../formats/image.ts";
import { type Activations, Vqvae } from "../models/vqvae.ts";
import { compareArrays } from "../reference/compare.ts";
import type { CaseContext, CaseResult, GoldenCase } from "./types.ts";

/** One model per compress rate, kept while cases of the same converted directory and GPU context follow; plus the
 * encodes (icetk_roundtrip re-encodes icetk_encode's image: same model, same input, same codes). */
let cache: {
  ctx: GpuContext;
  dir: string;
  models: Map<number, Promise<Vqvae>>;
  encoded: Map<string, Awaited<ReturnType<Vqvae["encodeDetailed"]>>>;
} | null = null;

/** m.encodeDetailed, memoised on (rate, input array, preprocessing size) for the cases of one run. */
async function encodeMemo(
  m: Vqvae,
  key: string,
  img: Float32Array,
  h: number,
  w: number,
  debug?: Activations,
) {
  const hit = cache?.encoded.get(key);
  if (hit) return hit;
  const result = await m.encodeDetailed(img, h, w, { debug });
  cache?.encoded.set(key, result);
  return result;
}

async function vqvaeFor(cx: CaseContext, rate: number): Promise<Vqvae> {
  const dir = await cx.modelDir();
  if (!cache || cache.ctx !== cx.gpu || cache.dir !== dir) {
    if (cache) { for (const m of cache.models.values()) m.then((v) => v.release(), () => {}); }
    cache = { ctx: cx.gpu, dir, models: new Map(), encoded: new Map() };
  }
  let m = cache.models.get(rate);
  if (!m) {
    m = Vqvae.load(cx.gpu, dir, { compressRate: rate });
    cache.models.set(rate, m);
    m.catch(() => cache?.models.delete(rate));
  }
  return m;
}

function rateOf(c: GoldenCase): number {
  const r = Number(c.inputs.compress_rate ?? 8);
  if (!Number.isInteger(r) || r < 1) {
    throw new Error(`${c.case}: inputs.compress_rate ${c.inputs.compress_rate} is not a rate`);
  }
  return r;
}

function atolOf(c: GoldenCase, spec: { atol?: number }, what: string): number {
  const a = Number(spec?.atol);
  if (!(a >= 0)) throw new Error(`${c.case}: ${what}.atol missing`);
  return a;
}

function asF32(a: NpyArray): Float32Array {
  return a.data instanceof Float32Array ? a.data : Float32Array.from(a.data);
}

/** Codes [s, s] (int64 as int32) → their side; the grid must be square (icetk reshapes to s×s). */
function squareSide(c: GoldenCase, codes: NpyArray): number {
  const n = codes.data.length;
  const s = Math.round(Math.sqrt(n));
  if (s * s !== n) throw new Error(`${c.case}: ${n} codes do not form a square grid`);
  return s;
}

function fmt(x: number): string {
  return x.toExponential(2);
}

/** Image comparison line: "image max abs 1.0e-5 ≤ atol 1.5e-4" (or the worst element when over). */
function imageLine(
  name: string,
  got: Float32Array,
  want: NpyArray,
  atol: number,
): { ok: boolean; line: string } {
  if (got.length !== want.data.length) {
    return { ok: false, line: `${name}: ${got.length} values, expected ${want.data.length} [${want.shape}]` };
  }
  const r = compareArrays(got, want.data, { atol });
  return {
    ok: r.ok,
    line: r.ok ? `${name} max abs ${fmt(r.maxAbs)} <= atol ${fmt(atol)}` : `${name} ${r.summary}`,
  };
}

/** kind icetk_decode: codes → decs[·] → ·std + mean, against the image (and, on failure, the first activation off). */
export async function icetkDecode(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const m = await vqvaeFor(cx, rateOf(c));
  const codes = await cx.npy(c.inputs.codes);
  const side = squareSide(c, codes);
  const want = await cx.npy(c.expected.image);
  const extra = c as unknown as {
    debug_activations?: { items?: { name: string; npy: string; atol: number }[] };
  };
  const items = extra.debug_activations?.items ?? [];
  const debug: Activations | undefined = items.length ? new Map() : undefined;
  const got = await m.decode(codes.data as Int32Array, side, { debug });
  const r = imageLine("image", got, want, atolOf(c, c.expected.image, "expected.image"));
  let detail = `${side}x${side} codes → ${r.line}`;
  if (!r.ok && debug) {
    for (const it of items) {
      const a = debug.get(it.name);
      if (!a) continue;
      const ar = compareArrays(a, (await cx.npy(it)).data, { atol: Number(it.atol) });
      if (!ar.ok) {
        detail += `; first activation off: ${it.name} ${ar.summary}`;
        break;
      }
    }
  }
  return { pass: r.ok, detail };
}

/** The float [3, size, size] image icetk hands to ImageTokenizer.encode, from the case's inputs. */
function preprocessed(
  c: GoldenCase,
  input: NpyArray,
  size: number | null,
): { img: Float32Array; h: number; w: number } {
  if (c.inputs.image_uint8_hwc) {
    // PIL route: pil_to_tensor (uint8), Resize + CenterCrop on uint8 when image_size is given, then / 255.
    const [h, w, ch] = input.shape;
    if (ch !== 3) throw new Error(`${c.case}: image_uint8_hwc has ${ch} channels, expected 3`);
    const rgba = new Uint8Array(4 * h * w);
    for (let i = 0; i < h * w; i++) {
      for (let k = 0; k < 3; k++) rgba[4 * i + k] = input.data[3 * i + k];
      rgba[4 * i + 3] = 255;
    }
    if (size !== null) return { img: preprocessRgba8(rgba, h, w, size), h: size, w: size };
    const img = new Float32Array(3 * h * w);
    for (let i = 0; i < h * w; i++) {
      for (let k = 0; k < 3; k++) img[k * h * w + i] = Math.fround(rgba[4 * i + k] / 255);
    }
    return { img, h, w };
  }
  // torch route: [3, H, W] or [1, 3, H, W] float, resized when image_size is given; no / 255.
  const shape = input.shape.length === 4 && input.shape[0] === 1 ? input.shape.slice(1) : input.shape;
  if (shape.length !== 3 || shape[0] !== 3) {
    throw new Error(`${c.case}: image has shape [${input.shape}], expected [(1,) 3, H, W]`);
  }
  const [, h, w] = shape;
  const src = asF32(input);
  if (size !== null) return { img: preprocessFloat(src, h, w, size), h: size, w: size };
  return { img: src, h, w };
}

/** kind icetk_encode: image → (preprocess) → codes, z_e; codes exact except recorded near-ties. */
export async function icetkEncode(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const m = await vqvaeFor(cx, rateOf(c));
  const e = c.expected;
  const input = await cx.npy(c.inputs.image_uint8_hwc ?? c.inputs.image);
  // image_size: explicit, or the side of the recorded preprocessed tensor (cases that resize record it).
  const sizeRaw = c.inputs.image_size ?? e.preprocessed?.shape?.[1] ?? null;
  const size = sizeRaw === null ? null : Number(sizeRaw);
  const pre = preprocessed(c, input, size);
  const lines: string[] = [];
  let pass = true;
  if (e.preprocessed) {
    const r = imageLine(
      "preprocessed",
      pre.img,
      await cx.npy(e.preprocessed),
      atolOf(c, e.preprocessed, "preprocessed"),
    );
    pass &&= r.ok;
    lines.push(r.line);
  }
  const src = c.inputs.image_uint8_hwc ?? c.inputs.image;
  const debug: Activations = new Map();
  const got = await encodeMemo(
    m,
    `${rateOf(c)}|${typeof src === "string" ? src : src.npy}|${size}`,
    pre.img,
    pre.h,
    pre.w,
    debug,
  );
  const [codes, second, gap, gapTol] = await Promise.all([
    cx.npy(e.codes),
    cx.npy(e.second_best),
    cx.npy(e.gap),
    cx.npy(e.gap_tolerance),
  ]);
  if (got.best.length !== codes.data.length) {
    return {
      pass: false,
      detail: `${got.best.length} codes (${got.h}x${got.w}), expected ${codes.data.length} [${codes.shape}]`,
    };
  }
  let exact = 0, excused = 0;
  const wrong: string[] = [];
  for (let p = 0; p < got.best.length; p++) {
    if (got.best[p] === codes.data[p]) exact++;
    else if (gap.data[p] < gapTol.data[p] && got.best[p] === second.data[p]) excused++;
    else {
      wrong.push(
        `[${p}] ${got.best[p]} vs ${codes.data[p]} (gap ${fmt(gap.data[p])}, tol ${fmt(gapTol.data[p])})`,
      );
    }
  }
  pass &&= wrong.length === 0;
  lines.push(
    `codes ${exact}/${codes.data.length} exact, ${excused} near-tie runner-ups` +
      (wrong.length ? `, ${wrong.length} wrong: ${wrong.slice(0, 4).join(", ")}` : ""),
  );
  if (e.z_e) {
    const r = imageLine("z_e", got.ze, await cx.npy(e.z_e), atolOf(c, e.z_e, "z_e"));
    pass &&= r.ok;
    lines.push(r.line);
  }
  // On failure, say whether the encoder already differs before the quantizer's proj (the case's act.quant_in).
  const extra = c as unknown as { debug_activations?: { items?: { name: string; npy: string }[] } };
  const qi = extra.debug_activations?.items?.find((it) => it.npy.endsWith("quant_in.npy"));
  if (!pass && qi && debug.has("quant_in") && e.z_e) {
    const r = compareArrays(debug.get("quant_in")!, (await cx.npy(qi)).data, {
      atol: atolOf(c, e.z_e, "z_e"),
    });
    lines.push(`${qi.name}: ${r.summary} (z_e's atol)`);
  }
  return { pass, detail: lines.join("; ") };
}

/** kind icetk_roundtrip: decode(encode(image)); against decode(expected codes) when our codes differ (near-ties). */
export async function icetkRoundtrip(c: GoldenCase, cx: CaseContext): Promise<CaseResult> {
  const m = await vqvaeFor(cx, rateOf(c));
  const src = c.inputs.image_npy ?? c.inputs.image;
  const input = await cx.npy(src);
  const size = c.inputs.image_size ?? null;
  const pre = preprocessed(c, input, size);
  const key = `${rateOf(c)}|${typeof src === "string" ? src : src.npy}|${size}`;
  const codes = (await encodeMemo(m, key, pre.img, pre.h, pre.w)).best;
  const expCodes = await cx.npy(c.expected.codes_npy);
  const same = codes.length === expCodes.data.length && codes.every((v, i) => v === expCodes.data[i]);
  const side = Math.round(Math.sqrt(codes.length));
  if (pre.h !== pre.w || side * side !== codes.length) {
    throw new Error(
      `${c.case}: a ${pre.h}x${pre.w} image gives a non-square code grid; icetk decodes squares only`,
    );
  }
  const img = await m.decode(same ? codes : (expCodes.data as Int32Array), side);
  const r = imageLine(
    "image",
    img,
    await cx.npy(c.expected.image),
    atolOf(c, c.expected.image, "expected.image"),
  );
  return {
    pass: r.ok,
    detail: `${
      same ? "codes equal icetk_encode's" : "codes differ (near-ties): decoded the expected codes"
    }; ${r.line}`,
  };
}
