// Architecture of an icetk hierarchical VQ-VAE (HVQVAE) read from its tensor names and shapes: the real ice_image.pt
// has no config file. Pure metadata (no GPU): the model (vqvae.ts) and the converter's config.json both use it.

import type { WeightSource } from "../formats/weights.ts";

/** Architecture of one HVQVAE checkpoint, as read from its tensor names and shapes. */
export interface VqvaeArch {
  /** Encoder base width (enc.conv_in.weight [C_enc, 3, 3, 3]), e.g. 128. */
  encChannels: number;
  /** Encoder widths per level (C_enc·mult[i]), e.g. [128, 256, 512]. */
  encLevels: number[];
  /** ResnetBlocks per encoder level, e.g. 2. */
  encBlocks: number;
  /** Spatial reduction of the encoder alone: 2^(levels with a downsample), e.g. 4. */
  encFactor: number;
  /** hidden_dim (enc.conv_out.weight [H, …]), e.g. 256. */
  hidden: number;
  /** embedding_dim D (quantize.proj.weight [D, H, 1, 1]), e.g. 256. */
  embedDim: number;
  /** Codebook size (quantize.embed.weight [n, D]), e.g. 20000. */
  nEmbed: number;
  /** Decoder base width (decs.k.up.0.block.0.conv1.weight [C_dec·mult[0] = C_dec, …]), e.g. 128. */
  decChannels: number;
  /** Number of decoders (decs.{k}), e.g. 3. */
  decoders: number;
  /** Upsampling factor of each decoder decs.{k} (2^(upsample convs)), e.g. [16, 8, 4]. */
  decFactors: number[];
  /** Number of ResidualDownSamples (down_samplers.{i}), e.g. 2. */
  downSamplers: number;
}

/** Indices i such that `${prefix}.{i}.…` names a tensor; throws unless they are 0..n-1. */
export function weightIndices(names: string[], prefix: string, origin = "weights"): number[] {
  const set = new Set<number>();
  const p = prefix + ".";
  for (const n of names) {
    if (!n.startsWith(p)) continue;
    const m = /^(\d+)\./.exec(n.slice(p.length));
    if (m) set.add(Number(m[1]));
  }
  const out = [...set].sort((a, b) => a - b);
  out.forEach((v, i) => {
    if (v !== i) {
      throw new Error(`${origin}: ${prefix}.{i} indices are not 0..${out.length - 1} (found ${out})`);
    }
  });
  return out;
}

/** Shape of a tensor that must exist, with an error naming the checkpoint. */
export function requiredShape(src: WeightSource, name: string): number[] {
  if (!src.has(name)) {
    throw new Error(`${src.origin}: missing tensor ${name} (not an icetk ice_image.pt state dict?)`);
  }
  return src.info(name).shape;
}

/** Reads the architecture from tensor names/shapes (the fixture's README-icetk.md, "Shapes → hyper-parameters"). */
export function inferVqvaeArch(src: WeightSource): VqvaeArch {
  const names = src.names();
  const o = src.origin;
  const encLevelIdx = weightIndices(names, "enc.down", o);
  if (!encLevelIdx.length) throw new Error(`${o}: no enc.down.{i} tensors (not an icetk VQ-VAE)`);
  const encBlocks = weightIndices(names, "enc.down.0.block", o).length;
  const [nEmbed, embedDim] = requiredShape(src, "quantize.embed.weight");
  const proj = requiredShape(src, "quantize.proj.weight");
  if (proj.length !== 4 || proj[0] !== embedDim) {
    throw new Error(`${o}: quantize.proj.weight has shape [${proj}], expected [${embedDim}, H, 1, 1]`);
  }
  const encDowns = encLevelIdx.filter((i) => src.has(`enc.down.${i}.downsample.conv.weight`)).length;
  const decIdx = weightIndices(names, "decs", o);
  if (!decIdx.length) throw new Error(`${o}: no decs.{k} tensors (not an icetk VQ-VAE)`);
  const decFactors = decIdx.map((k) => {
    const ups = weightIndices(names, `decs.${k}.up`, o);
    return 2 ** ups.filter((i) => src.has(`decs.${k}.up.${i}.upsample.conv.weight`)).length;
  });
  // Consistency of the widths the layers pass to each other (a wrong file fails here, not inside a kernel).
  const encChannels = requiredShape(src, "enc.conv_in.weight")[0];
  const encLevels = encLevelIdx.map((i) => {
    const c = requiredShape(src, `enc.down.${i}.block.0.conv1.weight`)[0];
    if (c % encChannels) {
      throw new Error(`${o}: enc.down.${i} has ${c} channels, not a multiple of ${encChannels}`);
    }
    return c;
  });
  const encOut = requiredShape(src, "enc.conv_out.weight")[0];
  if (encOut !== proj[1]) {
    throw new Error(
      `${o}: enc.conv_out.weight gives ${encOut} channels, quantize.proj.weight expects ${proj[1]}`,
    );
  }
  for (const k of decIdx) {
    const ci = requiredShape(src, `decs.${k}.conv_in.weight`)[1];
    if (ci !== embedDim) {
      throw new Error(`${o}: decs.${k}.conv_in.weight takes ${ci} channels, embedding_dim is ${embedDim}`);
    }
  }
  return {
    encChannels,
    encLevels,
    encBlocks,
    encFactor: 2 ** encDowns,
    hidden: proj[1],
    embedDim,
    nEmbed,
    decChannels: requiredShape(src, `decs.${decIdx.length - 1}.up.0.block.0.conv1.weight`)[0],
    decoders: decIdx.length,
    decFactors,
    downSamplers: weightIndices(names, "down_samplers", o).length,
  };
}

/**
 * The compress rates a checkpoint supports: level l (0 = finest) encodes with the encoder then l ResidualDownSamples
 * (rate encFactor·2^l) and decodes with decs[decoders−1−l], as icetk's single_encode / single_decode_code.
 */
export function vqvaeLevels(arch: VqvaeArch): { level: number; rate: number; decoder: number }[] {
  const out = [];
  for (let l = 0; l < arch.decoders && l <= arch.downSamplers; l++) {
    const decoder = arch.decoders - 1 - l;
    const rate = arch.encFactor * 2 ** l;
    if (arch.decFactors[decoder] === rate) out.push({ level: l, rate, decoder });
  }
  return out;
}

/** The vqvae section of a converted model's config.json (besides `file`): widths and supported compress rates. */
export interface VqvaeConfigSection {
  n_embed: number;
  enc_channels: number;
  dec_channels: number;
  hidden_dim: number;
  embedding_dim: number;
  levels: number;
  compress_rates: number[];
}

/** config.json's vqvae section for the checkpoint in `src` (the caller adds `file`). */
export function inferVqvaeConfig(src: WeightSource): VqvaeConfigSection {
  const a = inferVqvaeArch(src);
  return {
    n_embed: a.nEmbed,
    enc_channels: a.encChannels,
    dec_channels: a.decChannels,
    hidden_dim: a.hidden,
    embedding_dim: a.embedDim,
    levels: a.decoders,
    compress_rates: vqvaeLevels(a).map((l) => l.rate),
  };
}
