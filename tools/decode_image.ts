// `deno task decode-image [--model PATH] [--rate 8] [--quality Q] codes.npy out.png|out.jpg`: icetk image codes
// (a .npy of s·s integers: 400 → 160×160, 3600 → 480×480 at compress rate 8) through the VQ-VAE decoder on the GPU,
// saved as CogView2 saves images (x·255 + 0.5, clamped). PATH is a converted model directory or an icetk
// ice_image.pt; default COGVIEW2_MODEL, then the demo model (random weights: noise). Not a generator.

import { resolve } from "node:path";
import { sharedContext } from "../src/gpu/context.ts";
import { takeGpuFlag } from "../src/gpu/backends.ts";
import { gpuLine } from "../src/gpu/device.ts";
import type { GpuContext } from "../src/gpu/context.ts";
import { readNpy } from "../src/formats/npy.ts";
import { encodeJpeg, encodePng, toRgba8 } from "../src/formats/image.ts";
import { openTorchCheckpoint } from "../src/formats/torch.ts";
import { Vqvae } from "../src/models/vqvae.ts";

const USAGE =
  `usage: deno task decode-image [--model PATH] [--rate 8] [--quality 95] [--gpu dawn|wgpu|auto] codes.npy out.png|out.jpg
  codes.npy   s*s image codes (any integer dtype; shape [n], [s, s], [1, n] or [1, s, s])
  --model     converted model directory or icetk ice_image.pt (default: COGVIEW2_MODEL, else the demo model)
  --rate      icetk compress rate (default 8: 20x20 codes -> 160x160 pixels)
  --quality   JPEG quality 1..100 (default 95; .jpg/.jpeg outputs only)
  --gpu       WebGPU backend (default: COGVIEW2_GPU, else auto)`;

export interface DecodeImageOptions {
  codesPath: string;
  outPath: string;
  /** Converted model directory or ice_image.pt; default COGVIEW2_MODEL, then the demo model. */
  model?: string;
  rate?: number;
  quality?: number;
  ctx?: GpuContext;
  log?: (msg: string) => void;
}

/** Reads the codes of a .npy file and checks they form a square grid. */
export async function readCodes(path: string): Promise<{ codes: Int32Array; side: number }> {
  const a = await readNpy(path);
  if (a.data instanceof Float32Array || a.data instanceof Float64Array) {
    throw new Error(`${path}: codes must be integers, got dtype ${a.descr}`);
  }
  const n = a.data.length;
  const side = Math.round(Math.sqrt(n));
  if (n === 0 || side * side !== n) {
    throw new Error(
      `${path}: ${n} codes (shape [${a.shape}]) do not form a square grid (400 or 3600 for CogView2)`,
    );
  }
  return { codes: Int32Array.from(a.data), side };
}

async function openVqvae(ctx: GpuContext, model: string | undefined, rate: number, log: (m: string) => void) {
  const given = model ?? Deno.env.get("COGVIEW2_MODEL");
  if (!given) {
    const { ensureDemoModel } = await import("../src/demo/model.ts");
    log(
      "No model given (--model PATH or COGVIEW2_MODEL): using the DEMO model, random weights, the image is noise.",
    );
    return await Vqvae.load(ctx, await ensureDemoModel({ log }), { compressRate: rate });
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(given);
  } catch {
    throw new Error(`Model path ${given} does not exist`);
  }
  if (info.isDirectory) return await Vqvae.load(ctx, given, { compressRate: rate });
  const src = await openTorchCheckpoint(given);
  try {
    return await Vqvae.fromWeights(ctx, src, { compressRate: rate });
  } finally {
    src.close();
  }
}

/** Decodes the codes of `codesPath` and writes the image; returns its size and the decode time. */
export async function decodeImageFile(
  o: DecodeImageOptions,
): Promise<{ width: number; height: number; ms: number }> {
  const log = o.log ?? ((m: string) => console.error(m));
  const rate = o.rate ?? 8;
  const ext = o.outPath.toLowerCase().split(".").pop();
  if (ext !== "png" && ext !== "jpg" && ext !== "jpeg") {
    throw new Error(`Output ${o.outPath}: the name must end in .png, .jpg or .jpeg`);
  }
  const { codes, side } = await readCodes(o.codesPath);
  const ctx = o.ctx ?? await sharedContext();
  const vq = await openVqvae(ctx, o.model, rate, log);
  try {
    const t0 = performance.now();
    const chw = await vq.decode(codes, side);
    const ms = performance.now() - t0;
    const px = side * vq.rate;
    const rgba = toRgba8(chw, px, px);
    const bytes = ext === "png" ? encodePng(rgba, px, px) : encodeJpeg(rgba, px, px, o.quality ?? 95);
    await Deno.writeFile(o.outPath, bytes);
    return { width: px, height: px, ms };
  } finally {
    vq.release();
  }
}

export async function main(args: string[]): Promise<number> {
  let argv: string[];
  try {
    argv = takeGpuFlag(args);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const pos: string[] = [];
  let model: string | undefined, rate = 8, quality = 95;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    }
    if (a === "--model" || a === "--rate" || a === "--quality") {
      const v = argv[++i];
      if (v === undefined) {
        console.error(`${a} needs a value\n${USAGE}`);
        return 2;
      }
      if (a === "--model") model = v;
      else {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) {
          console.error(`${a} must be a positive integer, got ${v}\n${USAGE}`);
          return 2;
        }
        if (a === "--rate") rate = n;
        else quality = n;
      }
    } else if (a.startsWith("--")) {
      console.error(`Unknown flag ${a}\n${USAGE}`);
      return 2;
    } else pos.push(a);
  }
  if (pos.length !== 2) {
    console.error(USAGE);
    return 2;
  }
  try {
    const ctx = await sharedContext();
    console.error(gpuLine(ctx.gpu));
    const r = await decodeImageFile({ codesPath: pos[0], outPath: pos[1], model, rate, quality, ctx });
    console.log(`${resolve(pos[1])}: ${r.width}x${r.height} (decode ${r.ms.toFixed(0)} ms)`);
    return 0;
  } catch (e) {
    console.error(`decode-image: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
