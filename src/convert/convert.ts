// `deno task convert`: official CogView2 downloads (SwissArmyTransformer folders or zips, icetk files, cluster labels)
// → the project's model directory (safetensors per model, config.json, tokenizer, cluster labels, manifest).
// Not a loader: it streams tensors file to file with bounded memory, validates everything and writes nothing partial.
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { parseNpy } from "../formats/npy.ts";
import {
  DTYPE_BYTES,
  type SafetensorsEntry,
  safetensorsHeader,
  writeSafetensors,
} from "../formats/safetensors.ts";
import { openTorchCheckpoint, StreamedTorchCheckpoint, type TorchCheckpoint } from "../formats/torch.ts";
import type { WeightDType, WeightInfo } from "../formats/weights.ts";
import {
  DEFAULT_GROUP,
  floatsOf,
  groupFor,
  isInt8Candidate,
  QSCALE_SUFFIX,
  quantizeInt8,
} from "../formats/int8.ts";
import { crc32, type RandomAccess, ZipArchive } from "../formats/zip.ts";
import { TerminalBar } from "../cli/terminal_bar.ts";
import { inferVqvaeConfig } from "../models/vqvae_config.ts";
import { validateSentencePiece } from "./sentencepiece_check.ts";

export const MODEL_FORMAT = "cogview2-webgpu-model";
export const MODEL_FORMAT_VERSION = 1;
/** Number of image tokens of icetk (codebook entries; text ids start after them). */
export const IMAGE_TOKENS = 20000;

export interface ConvertOptions {
  /** Folder holding coglm, cogview2-dsr, cogview2-itersr (folders or .zip archives). */
  sat: string;
  /** Folder holding ice_text.model and ice_image.pt (and optionally vqvae_config.json). */
  icetk: string;
  /** cluster_label.npy. */
  clusters: string;
  /** Output directory (must not exist unless `overwrite`). */
  out: string;
  /**
   * Storage of floating-point weights: "source" (default: each tensor as the checkpoint stores it, bfloat16
   * widened to f32), or "f16" / "f32" for every tensor (narrowing to f16 is reported, see `narrowing`), or "int8":
   * the linear weights of the three transformers as int8 codes with per-group f32 scales (`<name>.qscale`,
   * src/formats/int8.ts), every other floating-point tensor (embeddings, norms, biases, the VQ-VAE) as f16.
   */
  weights?: WeightsChoice;
  /** int8 only: the scale group along K (default 64; a smaller power of two where K needs one). */
  group?: number;
  /** Alias of `weights` (the CLI's `--dtype`). */
  dtype?: WeightsChoice;
  /** Store values beyond float16's range as ±inf instead of refusing (only with weights "f16"). */
  allowF16Overflow?: boolean;
  /** Number of clusters the labels index (CogView2: 500). */
  numClusters?: number;
  /** Replace an existing output directory. */
  overwrite?: boolean;
  /** Progress lines (bytes, rate, ETA); default: on when stderr is a terminal. */
  progress?: boolean;
  /** Messages (one line each); default: none. */
  log?: (msg: string) => void;
  /** CLI only: on Ctrl-C remove the temporary output and exit with code 130. */
  exitOnInterrupt?: boolean;
}

/** What `--weights`/`--dtype` accepts. */
export const WEIGHTS_CHOICES = ["source", "f16", "f32", "int8"] as const;
export type WeightsChoice = (typeof WEIGHTS_CHOICES)[number];

/** Per model: what narrowing floating-point weights to float16 changed (absent when nothing was narrowed). */
export interface NarrowingReport {
  /** Tensors stored narrower than in the checkpoint. */
  tensors: number;
  /** Values in those tensors. */
  values: number;
  /** Values whose stored float16 differs from the checkpoint's value. */
  changed: number;
  /** Largest |stored − source| over finite results. */
  max_abs_change: number;
  /** The tensor holding that largest change. */
  max_at: string;
  /** Finite values that became ±inf (only with `allowF16Overflow`). */
  overflowed: number;
}

/** Per model, with weights "int8": what the quantisation did (errors over the quantised tensors). */
export interface Int8Report {
  /** The requested group (tensors whose K needs a smaller one are counted in `smaller_group`). */
  group: number;
  tensors: number;
  values: number;
  smaller_group: number;
  /** sqrt(Σ(q·s − w)² / Σw²) over all quantised values. */
  rel_rms_error: number;
  max_abs_error: number;
  max_at: string;
}

/** A tensor's dtype in the checkpoint and as stored in the model directory. */
export interface TensorDTypes {
  source: WeightDType;
  stored: WeightDType;
}

export interface ConvertResult {
  out: string;
  files: Record<string, { bytes: number; sha256: string }>;
  warnings: string[];
  /** Per model ("coglm", "dsr", "itersr", "vqvae"): narrowing done, when any. */
  narrowing: Record<string, NarrowingReport>;
  /** Per SAT model, with weights "int8": the quantisation's errors. */
  int8: Record<string, Int8Report>;
}

/** The three SwissArmyTransformer models: output name, download folder name, model class. */
export const SAT_MODELS = [
  { key: "coglm", folder: "coglm", cls: "CachedAutoregressiveModel", sr: false },
  { key: "dsr", folder: "cogview2-dsr", cls: "DsrModel", sr: true },
  { key: "itersr", folder: "cogview2-itersr", cls: "ItersrModel", sr: true },
] as const;

const SR_DEFAULTS: Record<string, { layout: number[] }> = {
  DsrModel: { layout: [96, 496, 4096] },
  ItersrModel: { layout: [16, 3616] },
};

// ---------------------------------------------------------------------------------------------------------------------
// SAT model folders or archives

/** A SwissArmyTransformer model folder, or the same layout inside a .zip (read in place). */
interface SatModel {
  origin: string;
  readText(rel: string): Promise<string>;
  checkpoint(rel: string): Promise<Checkpoint>;
  close(): void;
}

/** A checkpoint read in place, or streamed once from a compressed archive member. */
type Checkpoint = TorchCheckpoint | StreamedTorchCheckpoint;

async function exists(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function openSatModel(satDir: string, folder: string): Promise<SatModel> {
  const dir = join(satDir, folder);
  const st = await exists(dir);
  if (st?.isDirectory) {
    return {
      origin: dir,
      async readText(rel) {
        const p = join(dir, rel);
        try {
          return await Deno.readTextFile(p);
        } catch (e) {
          throw new Error(`${p}: cannot read (${(e as Error).message})`);
        }
      },
      checkpoint: (rel) => openTorchCheckpoint(join(dir, rel)),
      close() {},
    };
  }
  const zipPath = `${dir}.zip`;
  if (!(await exists(zipPath))) {
    throw new Error(
      `${satDir}: neither the folder "${folder}" nor the archive "${folder}.zip" is there (--sat)`,
    );
  }
  const zip = await ZipArchive.openFile(zipPath);
  try {
    // The archive holds <folder>/latest ...; accept any single top folder (or none).
    const latest = zip.entries.filter((e) => e.name === "latest" || e.name.endsWith("/latest"))
      .sort((a, b) => a.name.length - b.name.length)[0];
    if (!latest) {
      throw new Error(`${zipPath}: no "latest" file inside (not a SwissArmyTransformer model archive)`);
    }
    const prefix = latest.name.slice(0, latest.name.length - "latest".length);
    const nested: RandomAccess[] = [];
    return {
      origin: zipPath,
      async readText(rel) {
        const name = prefix + rel;
        if (!zip.has(name)) throw new Error(`${zipPath}: no entry "${name}"`);
        return new TextDecoder().decode(await zip.read(name));
      },
      checkpoint(rel) {
        const name = prefix + rel;
        if (!zip.has(name)) return Promise.reject(new Error(`${zipPath}: no entry "${name}"`));
        // A compressed member cannot be read in place: stream it once through the inflater.
        if (zip.entry(name).method !== 0) return StreamedTorchCheckpoint.open(zip, name);
        const slice = zip.slice(name);
        nested.push(slice);
        return openTorchCheckpoint(slice);
      },
      close: () => zip.close(),
    };
  } catch (e) {
    zip.close();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Architecture: model_config.json + tensor shapes

type Json = Record<string, unknown>;

function cfgInt(file: string, cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new Error(`${file}: field "${key}" must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  }
  return v;
}

function parseLayout(file: string, v: unknown, fallback: number[]): number[] {
  if (v === undefined || v === null) return fallback;
  const parts = typeof v === "string"
    ? v.split(",").map((s) => Number(s.trim()))
    : Array.isArray(v)
    ? v
    : null;
  if (!parts || !parts.length || !parts.every((x) => Number.isInteger(x) && x > 0)) {
    throw new Error(
      `${file}: field "layout" must be "a,b,c" or a list of positive integers, got ${JSON.stringify(v)}`,
    );
  }
  return parts as number[];
}

/** Expected tensor names and shapes of a SAT transformer of the given architecture. */
export function expectedTransformerTensors(a: {
  num_layers: number;
  hidden_size: number;
  vocab_size: number;
  max_sequence_length: number;
  inner_hidden_size: number;
  layernorm_order: string;
  model_class: string;
  extra_positions?: number;
}): Map<string, number[]> {
  const h = a.hidden_size, inner = a.inner_hidden_size;
  const t = new Map<string, number[]>();
  t.set("transformer.word_embeddings.weight", [a.vocab_size, h]);
  t.set("transformer.position_embeddings.weight", [a.max_sequence_length, h]);
  for (let l = 0; l < a.num_layers; l++) {
    const p = `transformer.layers.${l}.`;
    const ln = (n: string) => (t.set(`${p}${n}.weight`, [h]), t.set(`${p}${n}.bias`, [h]));
    ln("input_layernorm");
    t.set(`${p}attention.query_key_value.weight`, [3 * h, h]);
    t.set(`${p}attention.query_key_value.bias`, [3 * h]);
    t.set(`${p}attention.dense.weight`, [h, h]);
    t.set(`${p}attention.dense.bias`, [h]);
    ln("post_attention_layernorm");
    if (a.layernorm_order === "sandwich") {
      ln("third_layernorm");
      ln("fourth_layernorm");
    }
    t.set(`${p}mlp.dense_h_to_4h.weight`, [inner, h]);
    t.set(`${p}mlp.dense_h_to_4h.bias`, [inner]);
    t.set(`${p}mlp.dense_4h_to_h.weight`, [h, inner]);
    t.set(`${p}mlp.dense_4h_to_h.bias`, [h]);
  }
  t.set("transformer.final_layernorm.weight", [h]);
  t.set("transformer.final_layernorm.bias", [h]);
  if (a.extra_positions !== undefined) {
    t.set("mixins.extra_position_embedding.position_embeddings.weight", [a.extra_positions, h]);
  }
  if (a.model_class === "DsrModel") {
    for (let l = 0; l < a.num_layers; l++) {
      t.set(`mixins.attention_plus.query_key_value.${l}.weight`, [3 * h, h]);
      t.set(`mixins.attention_plus.query_key_value.${l}.bias`, [3 * h]);
      t.set(`mixins.attention_plus.dense.${l}.weight`, [h, h]);
      t.set(`mixins.attention_plus.dense.${l}.bias`, [h]);
    }
  }
  return t;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Normalised config.json section of one SAT model; checks every tensor against model_config.json. */
function transformerConfig(
  origin: string,
  cfgFile: string,
  cfg: Json,
  ck: Checkpoint,
  m: (typeof SAT_MODELS)[number],
): Json {
  // The folder's role fixes the architecture; CogLM may also be saved as the plain SAT BaseModel it is trained as.
  const given = typeof cfg.model_class === "string" ? cfg.model_class : m.cls;
  const accepted: string[] = m.key === "coglm" ? [m.cls, "BaseModel", "InferenceModel"] : [m.cls];
  if (!accepted.includes(given)) {
    throw new Error(`${cfgFile}: field "model_class" is "${given}", expected "${m.cls}" for ${m.folder}`);
  }
  const modelClass = m.cls;
  const num_layers = cfgInt(cfgFile, cfg, "num_layers");
  const hidden_size = cfgInt(cfgFile, cfg, "hidden_size");
  const num_attention_heads = cfgInt(cfgFile, cfg, "num_attention_heads");
  const vocab_size = cfgInt(cfgFile, cfg, "vocab_size");
  const max_sequence_length = cfgInt(cfgFile, cfg, "max_sequence_length");
  if (hidden_size % num_attention_heads) {
    throw new Error(
      `${cfgFile}: hidden_size ${hidden_size} is not a multiple of num_attention_heads ${num_attention_heads}`,
    );
  }
  const mp = cfg.model_parallel_size ?? 1;
  if (mp !== 1) {
    throw new Error(
      `${cfgFile}: field "model_parallel_size" is ${mp}; only unsharded (1) checkpoints are supported`,
    );
  }
  const h4 = ck.has("transformer.layers.0.mlp.dense_h_to_4h.weight")
    ? ck.info("transformer.layers.0.mlp.dense_h_to_4h.weight").shape[0]
    : 4 * hidden_size;
  const inner_hidden_size = cfg.inner_hidden_size == null ? h4 : cfgInt(cfgFile, cfg, "inner_hidden_size");
  const layernorm_order = typeof cfg.layernorm_order === "string" ? cfg.layernorm_order : "pre";
  if (!["pre", "post", "sandwich"].includes(layernorm_order)) {
    throw new Error(
      `${cfgFile}: field "layernorm_order" is ${
        JSON.stringify(layernorm_order)
      } (expected pre, post or sandwich)`,
    );
  }
  const layernorm_epsilon = typeof cfg.layernorm_epsilon === "number" ? cfg.layernorm_epsilon : 1e-5;
  const out: Json = {
    file: `${m.key}.safetensors`,
    model_class: modelClass,
    num_layers,
    hidden_size,
    num_attention_heads,
    vocab_size,
    max_sequence_length,
    inner_hidden_size,
    layernorm_order,
    layernorm_epsilon,
  };
  let extra_positions: number | undefined;
  if (m.sr) {
    const extraName = "mixins.extra_position_embedding.position_embeddings.weight";
    const rows = ck.has(extraName) ? ck.info(extraName).shape[0] : undefined;
    const newLen = cfg.new_sequence_length == null
      ? (rows !== undefined ? max_sequence_length + rows : undefined)
      : cfgInt(cfgFile, cfg, "new_sequence_length");
    if (newLen === undefined || newLen <= max_sequence_length) {
      throw new Error(
        `${cfgFile}: field "new_sequence_length" (${newLen}) must exceed max_sequence_length (${max_sequence_length})`,
      );
    }
    extra_positions = newLen - max_sequence_length;
    out.layout = parseLayout(cfgFile, cfg.layout, SR_DEFAULTS[m.cls].layout);
    out.kernel_size = cfgInt(cfgFile, cfg, "kernel_size", 5);
    out.kernel_size2 = cfgInt(cfgFile, cfg, "kernel_size2", 5);
    out.new_sequence_length = newLen;
  }
  const expected = expectedTransformerTensors({
    num_layers,
    hidden_size,
    vocab_size,
    max_sequence_length,
    inner_hidden_size,
    layernorm_order,
    model_class: modelClass,
    extra_positions,
  });
  const bad = [...ck.nonTensors()];
  if (bad.length) {
    const [k, d] = bad[0];
    throw new Error(
      `${origin}: state dict entry "${k}" is ${d}, not a tensor${
        bad.length > 1 ? ` (and ${bad.length - 1} more)` : ""
      }`,
    );
  }
  const missing = [...expected.keys()].filter((k) => !ck.has(k));
  if (missing.length) {
    throw new Error(
      `${origin}: missing tensor "${missing[0]}"${
        missing.length > 1 ? ` (and ${missing.length - 1} more)` : ""
      } ` +
        `expected by ${cfgFile}`,
    );
  }
  const extra = ck.names().filter((k) => !expected.has(k));
  if (extra.length) {
    throw new Error(
      `${origin}: unexpected tensor "${extra[0]}"${
        extra.length > 1 ? ` (and ${extra.length - 1} more)` : ""
      } ` +
        `for a ${modelClass} as ${cfgFile} describes it`,
    );
  }
  for (const [k, shape] of expected) {
    const s = ck.info(k).shape;
    if (!sameShape(s, shape)) {
      throw new Error(`${origin}: tensor "${k}" has shape [${s}], ${cfgFile} implies [${shape}]`);
    }
  }
  return out;
}

/**
 * VQ-VAE section: the sizes models/vqvae_config.ts infers from ice_image.pt's shapes (the one inferrer, also what
 * the model loads by), cross-checked with vqvae_config.json when present.
 */
function vqvaeConfig(ck: TorchCheckpoint, vqCfg: Json | null, vqCfgFile: string): Json {
  const o = ck.origin;
  const bad = [...ck.nonTensors()];
  if (bad.length) throw new Error(`${o}: state dict entry "${bad[0][0]}" is ${bad[0][1]}, not a tensor`);
  const out: Json = { file: "vqvae.safetensors", ...inferVqvaeConfig(ck) };
  if (vqCfg) {
    const widths = (vqCfg.widths ?? {}) as Json;
    for (const k of ["enc_channels", "dec_channels", "hidden_dim", "embedding_dim"]) {
      if (widths[k] !== undefined && widths[k] !== out[k]) {
        throw new Error(`${vqCfgFile}: field "widths.${k}" is ${widths[k]}, but ${o} has ${out[k]}`);
      }
    }
    if (vqCfg.n_embed !== undefined && vqCfg.n_embed !== out.n_embed) {
      throw new Error(`${vqCfgFile}: field "n_embed" is ${vqCfg.n_embed}, but ${o} has ${out.n_embed}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Streaming tensor copy with dtype conversion, CRC checks and hashing

const CHUNK_ELEMS = 4 * 2 ** 20;
const FLOATS = new Set<WeightDType>(["f16", "bf16", "f32"]);

/** Stored dtype of a tensor: integers as they are; floats per the choice ("source" widens bfloat16 to f32). */
export function storedDType(src: WeightDType, choice: WeightsChoice): WeightDType {
  if (!FLOATS.has(src)) return src;
  if (choice === "source") return src === "bf16" ? "f32" : src;
  if (choice === "int8") return "f16"; // the tensors that are not quantised
  return choice;
}

/** Quantises a stream of float chunks (any sizes) group by group; scales are collected for the .qscale entry. */
class Int8Stream {
  readonly scales: Float32Array;
  #pending = new Float32Array(0);
  #ns = 0;
  sumSq = 0;
  errSq = 0;
  maxErr = 0;
  constructor(readonly values: number, readonly group: number) {
    this.scales = new Float32Array(values / group);
  }
  /** Quantises what whole groups `f` completes; returns their codes. */
  push(f: Float32Array): Uint8Array {
    let all = f;
    if (this.#pending.length) {
      all = new Float32Array(this.#pending.length + f.length);
      all.set(this.#pending);
      all.set(f, this.#pending.length);
    }
    const whole = all.length - (all.length % this.group);
    this.#pending = all.slice(whole);
    if (!whole) return new Uint8Array(0);
    const part = all.subarray(0, whole);
    const { q, scales } = quantizeInt8(part, this.group, this.group);
    this.scales.set(scales, this.#ns);
    this.#ns += scales.length;
    for (let i = 0; i < whole; i++) {
      const w = part[i], e = q[i] * scales[Math.floor(i / this.group)] - w;
      this.sumSq += w * w;
      this.errSq += e * e;
      if (Math.abs(e) > this.maxErr) this.maxErr = Math.abs(e);
    }
    return new Uint8Array(q.buffer);
  }
  finish(name: string): void {
    if (this.#pending.length || this.#ns !== this.scales.length) {
      throw new Error(`int8: tensor "${name}" ended inside a group`);
    }
  }
}

/** Running statistics of one model's narrowing to float16. */
interface NarrowStats extends NarrowingReport {
  /** The tensor being converted (for messages). */
  current: string;
  origin: string;
  allowOverflow: boolean;
}

const F16_MAX = 65504;

/** float16 bit pattern → float32 value, for all 65536 patterns (built on first use). */
let F16_TO_F32: Float32Array | null = null;

function convertChunk(
  bytes: Uint8Array,
  from: WeightDType,
  to: WeightDType,
  stats: NarrowStats,
): Uint8Array {
  if (from === to) return bytes;
  const n = bytes.length / DTYPE_BYTES[from];
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  let f32: Float32Array;
  if (from === "f32") f32 = new Float32Array(aligned.buffer, aligned.byteOffset, n);
  else if (from === "f16") {
    if (!F16_TO_F32) {
      F16_TO_F32 = Float32Array.from(
        new Float16Array(Uint16Array.from({ length: 65536 }, (_, i) => i).buffer),
      );
    }
    const lut = F16_TO_F32, u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    f32 = new Float32Array(n);
    for (let i = 0; i < n; i++) f32[i] = lut[u16[i]];
  } else {
    const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    const u32 = new Uint32Array(n);
    for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
    f32 = new Float32Array(u32.buffer);
  }
  if (to === "f32") return new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  const h = new Float16Array(n);
  h.set(f32);
  // Narrowing: count changed values, the largest change, and values that became ±inf although finite.
  stats.values += n;
  let changed = 0, maxAbs = stats.max_abs_change, maxAt = stats.max_at;
  for (let i = 0; i < n; i++) {
    const a = f32[i], b = h[i];
    if (a === b || (a !== a && b !== b)) continue;
    changed++;
    if (!Number.isFinite(b) && Number.isFinite(a)) {
      if (!stats.allowOverflow) {
        throw new Error(
          `${stats.origin}: tensor "${stats.current}": value ${a} is beyond float16's range (±${F16_MAX}); ` +
            `keep it with --weights source or f32, or pass --allow-f16-overflow to store it as ±inf`,
        );
      }
      stats.overflowed++;
      continue;
    }
    const d = Math.abs(a - b);
    if (d > maxAbs) {
      maxAbs = d;
      maxAt = stats.current;
    }
  }
  stats.changed += changed;
  stats.max_abs_change = maxAbs;
  stats.max_at = maxAt;
  return new Uint8Array(h.buffer);
}

interface Progress {
  add(bytes: number): void;
  done(): void;
}

/** Bytes written of `total`, with rate and ETA, on the tools' terminal line (src/cli/terminal_bar.ts). */
function progressBar(label: string, total: number, enabled: boolean): Progress {
  if (!enabled) return { add() {}, done() {} };
  const bar = new TerminalBar(true);
  const t0 = performance.now();
  let done = 0;
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  return {
    add(b) {
      done += b;
      const s = (performance.now() - t0) / 1000, rate = done / Math.max(s, 1e-3);
      const eta = rate > 0 ? (total - done) / rate : 0;
      const text = `${label} ${mb(done)}/${mb(total)} MiB  ${mb(rate)} MiB/s  ETA ${eta.toFixed(0)} s`;
      bar.update(total ? done / total : 1, text, label);
    },
    done: () => bar.line(`${label} ${mb(total)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`),
  };
}

/** Streams every tensor of `ck` (in `order`) into a safetensors file; returns its size and SHA-256. */
async function writeModel(
  ck: Checkpoint,
  order: string[],
  path: string,
  choice: WeightsChoice,
  allowOverflow: boolean,
  label: string,
  showProgress: boolean,
  warnings: string[],
  /** int8: the requested group, or 0 to quantise nothing (the VQ-VAE). */
  group = 0,
): Promise<{
  bytes: number;
  sha256: string;
  dtypes: Record<string, TensorDTypes>;
  narrowing: NarrowStats;
  int8: Int8Report | null;
}> {
  const infos: WeightInfo[] = order.map((n) => ck.info(n));
  const entries: SafetensorsEntry[] = [];
  const stats: NarrowStats = {
    tensors: 0,
    values: 0,
    changed: 0,
    max_abs_change: 0,
    max_at: "",
    overflowed: 0,
    current: "",
    origin: ck.origin,
    allowOverflow,
  };
  const dtypes: Record<string, TensorDTypes> = {};
  const crcChecked = new Set<string>();
  const total = infos.reduce((a, i) => a + i.byteLength, 0);
  const bar = progressBar(label, total, showProgress);
  const q8: Int8Report = {
    group,
    tensors: 0,
    values: 0,
    smaller_group: 0,
    rel_rms_error: 0,
    max_abs_error: 0,
    max_at: "",
  };
  let sumSq = 0, errSq = 0;
  for (const info of infos) {
    const g = group > 0 && FLOATS.has(info.dtype) && isInt8Candidate(info.name, info.shape, group)
      ? groupFor(info.shape[1], group)!
      : 0;
    if (g > 0) {
      // int8 codes (this entry) and then the scales (the next), filled while the codes stream.
      const n = info.byteLength / DTYPE_BYTES[info.dtype];
      const qs = new Int8Stream(n, g);
      dtypes[info.name] = { source: info.dtype, stored: "i8" };
      q8.tensors++;
      q8.values += n;
      if (g < group) q8.smaller_group++;
      entries.push({
        name: info.name,
        dtype: "i8",
        shape: info.shape,
        write: async (sink) => {
          for await (const raw of readChunks(ck, info, crcChecked)) {
            await sink(qs.push(floatsOf(raw, info.dtype)));
            bar.add(raw.length);
          }
          qs.finish(info.name);
          sumSq += qs.sumSq;
          errSq += qs.errSq;
          if (qs.maxErr > q8.max_abs_error) {
            q8.max_abs_error = qs.maxErr;
            q8.max_at = info.name;
          }
        },
      });
      entries.push({
        name: info.name + QSCALE_SUFFIX,
        dtype: "f32",
        shape: [info.shape[0], info.shape[1] / g],
        write: async (sink) => await sink(new Uint8Array(qs.scales.buffer)),
      });
      continue;
    }
    const to = storedDType(info.dtype, choice);
    dtypes[info.name] = { source: info.dtype, stored: to };
    if (to === "f16" && info.dtype !== "f16") stats.tensors++; // narrowing (from f32 or bfloat16)
    entries.push({
      name: info.name,
      dtype: to,
      shape: info.shape,
      write: async (sink) => {
        stats.current = info.name;
        for await (const raw of readChunks(ck, info, crcChecked)) {
          await sink(convertChunk(raw, info.dtype, to, stats));
          bar.add(raw.length);
        }
      },
    });
  }
  // SHA-256 of the file as written: the header (built as writeSafetensors builds it), then every chunk in order.
  const { header } = safetensorsHeader(entries);
  const fileHash = createHash("sha256");
  fileHash.update(header);
  entries.forEach((e) => {
    const w = e.write!;
    e.write = (sink) => w(async (c) => (fileHash.update(c), await sink(c)));
  });
  await writeSafetensors(path, entries);
  bar.done();
  if (ck instanceof StreamedTorchCheckpoint) await ck.finish();
  // Storages only partly covered by tensors (views): check their CRC with one streaming pass each.
  for (const name of order) {
    if (ck instanceof StreamedTorchCheckpoint) break;
    const l = ck.layout(name);
    if (crcChecked.has(l.entry)) continue;
    crcChecked.add(l.entry);
    const ze = ck.zip.entry(l.entry);
    let crc = 0;
    for (let off = 0; off < ze.size; off += CHUNK_ELEMS) {
      crc = crc32(await ck.zip.source.readAt(ze.offset + off, Math.min(CHUNK_ELEMS, ze.size - off)), crc);
    }
    if (crc !== ze.crc32) {
      throw new Error(
        `${ck.origin}: tensor "${name}": storage ${l.entry} fails its CRC-32 check (corrupt file)`,
      );
    }
  }
  if (stats.overflowed) {
    warnings.push(
      `${label}: ${stats.overflowed} values exceed the float16 range and became ±inf (--allow-f16-overflow)`,
    );
  }
  const bytes = (await Deno.stat(path)).size;
  q8.rel_rms_error = sumSq > 0 ? Math.sqrt(errSq / sumSq) : 0;
  return { bytes, sha256: fileHash.digest("hex"), dtypes, narrowing: stats, int8: q8.tensors ? q8 : null };
}

/**
 * A tensor's bytes in chunks of about CHUNK_ELEMS elements (streamed archives in their own order); a storage the
 * tensor covers whole gets its CRC-32 checked once.
 */
async function* readChunks(
  ck: Checkpoint,
  info: WeightInfo,
  crcChecked: Set<string>,
): AsyncGenerator<Uint8Array> {
  const es = DTYPE_BYTES[info.dtype];
  if (ck instanceof StreamedTorchCheckpoint) {
    yield* ck.chunks(info.name, CHUNK_ELEMS * es);
    return;
  }
  const layout = ck.layout(info.name);
  const checkCrc = layout.coversStorage && !crcChecked.has(layout.entry);
  let crc = 0;
  const n = info.byteLength / es;
  for (let e = 0; e < n; e += CHUNK_ELEMS) {
    const cnt = Math.min(CHUNK_ELEMS, n - e);
    const raw = await ck.readRange(info.name, e * es, cnt * es);
    if (checkCrc) crc = crc32(raw, crc);
    yield raw;
  }
  if (checkCrc) {
    crcChecked.add(layout.entry);
    if (crc !== ck.zip.entry(layout.entry).crc32) {
      throw new Error(
        `${ck.origin}: tensor "${info.name}": storage ${layout.entry} fails its CRC-32 check (corrupt file)`,
      );
    }
  }
}

async function sha256File(path: string): Promise<{ bytes: number; sha256: string }> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  let bytes = 0;
  try {
    const buf = new Uint8Array(8 * 2 ** 20);
    while (true) {
      const n = await f.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    f.close();
  }
  return { bytes, sha256: h.digest("hex") };
}

// ---------------------------------------------------------------------------------------------------------------------
// The conversion

/** Default input folders as the original code uses them ($SAT_HOME or ~/.sat_models, ~/.icetk_models). */
export function defaultPaths(): { sat: string; icetk: string } {
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return {
    sat: Deno.env.get("SAT_HOME") || join(home, ".sat_models"),
    icetk: join(home, ".icetk_models"),
  };
}

async function readJson(path: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
  return parseJson(text, path);
}

function parseJson(text: string, path: string): Json {
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Validates cluster labels: 1-D little-endian int32/int64, length `count`, values in [0, numClusters). */
export function validateClusterLabels(
  bytes: Uint8Array,
  path: string,
  count: number,
  numClusters: number,
): void {
  const npy = parseNpy(bytes, path);
  if (npy.descr !== "<i8" && npy.descr !== "<i4") {
    throw new Error(
      `${path}: dtype '${npy.descr}' is not an integer label array (expected little-endian int64 or int32)`,
    );
  }
  if (npy.shape.length !== 1 || npy.shape[0] !== count) {
    throw new Error(
      `${path}: shape (${npy.shape.join(", ")}) should be (${count},), one label per image token`,
    );
  }
  const d = npy.data as Int32Array;
  for (let i = 0; i < d.length; i++) {
    if (d[i] < 0 || d[i] >= numClusters) {
      throw new Error(
        `${path}: label ${
          d[i]
        } at [${i}] is outside [0, ${numClusters}) (set --num-clusters if the file uses more)`,
      );
    }
  }
}

async function isEmptyDir(dir: string): Promise<boolean> {
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

/**
 * --overwrite only replaces what a conversion made: a directory whose manifest.json lists its files. Anything else
 * (a home directory, a file, a folder of photos) is refused before any work starts.
 */
async function checkReplaceable(out: string): Promise<void> {
  const st = await Deno.lstat(out);
  const refuse = (why: string) =>
    new Error(
      `${out}: --overwrite only replaces a converted model directory, and this ${why}; ` +
        "remove it yourself or choose another --out",
    );
  if (!st.isDirectory) throw refuse(st.isSymlink ? "is a symbolic link" : "is not a directory");
  // An empty directory (made for the output beforehand, e.g. by mktemp) holds nothing to lose.
  if (await isEmptyDir(out)) return;
  let manifest: unknown;
  try {
    manifest = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
  } catch {
    throw refuse("has no readable manifest.json");
  }
  const files = (manifest as { files?: unknown })?.files;
  if (!files || typeof files !== "object" || !("config.json" in files)) {
    throw refuse('has a manifest.json that is not a converted model\'s (no "files" listing config.json)');
  }
}

/**
 * Moves the finished `tmp` to `out` with no moment where `out` is missing or half-written: an existing `out` is
 * renamed aside, the new one renamed in, then the old one deleted (renamed back if the second rename fails).
 */
async function swapIn(tmp: string, out: string): Promise<void> {
  if (!(await exists(out))) return await Deno.rename(tmp, out);
  await checkReplaceable(out); // again: it may have changed during the conversion
  const aside = join(dirname(out), `.${basename(out)}.old-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.rename(out, aside);
  try {
    await Deno.rename(tmp, out);
  } catch (e) {
    await Deno.rename(aside, out);
    throw e;
  }
  await Deno.remove(aside, { recursive: true });
}

/** Converts the official downloads into a model directory at `opts.out` (atomically: temp dir + rename). */
export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  if (opts.weights !== undefined && opts.dtype !== undefined && opts.weights !== opts.dtype) {
    throw new Error(
      `--weights ${opts.weights} and --dtype ${opts.dtype} disagree (--dtype is an alias of --weights)`,
    );
  }
  const choice = opts.weights ?? opts.dtype ?? "source";
  if (!(WEIGHTS_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`--weights must be one of ${WEIGHTS_CHOICES.join(", ")}, got ${JSON.stringify(choice)}`);
  }
  const allowOverflow = opts.allowF16Overflow ?? false;
  const group = opts.group ?? DEFAULT_GROUP;
  if (opts.group !== undefined && choice !== "int8") {
    throw new Error("--group only applies to --weights int8");
  }
  if (![16, 32, 64, 128, 256].includes(group)) {
    throw new Error(`--group must be 16, 32, 64, 128 or 256, got ${JSON.stringify(opts.group)}`);
  }
  const numClusters = opts.numClusters ?? 500;
  const log = opts.log ?? (() => {});
  const showProgress = opts.progress ?? Deno.stderr.isTerminal();
  const out = resolve(opts.out);
  if ((await exists(out)) && !opts.overwrite) {
    throw new Error(`${out} already exists (remove it or pass --overwrite)`);
  }
  if (await exists(out)) await checkReplaceable(out);
  const parent = dirname(out);
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${basename(out)}.tmp-` });
  const warnings: string[] = [];
  const files: Record<string, { bytes: number; sha256: string }> = {};
  const tensorDTypes: Record<string, Record<string, TensorDTypes>> = {};
  const narrowing: Record<string, NarrowingReport> = {};
  const int8: Record<string, Int8Report> = {};
  /** Writes one model and records its dtypes and narrowing. */
  const write = async (ck: Checkpoint, order: string[], key: string, quantize: boolean) => {
    const file = `${key}.safetensors`;
    const r = await writeModel(
      ck,
      order,
      join(tmp, file),
      choice,
      allowOverflow,
      key,
      showProgress,
      warnings,
      quantize && choice === "int8" ? group : 0,
    );
    files[file] = { bytes: r.bytes, sha256: r.sha256 };
    if (r.int8) {
      int8[key] = r.int8;
      log(
        `${key}: ${r.int8.tensors} linear weights to int8 (group ${group}` +
          (r.int8.smaller_group ? `, ${r.int8.smaller_group} with a smaller group` : "") +
          `): relative RMS error ${r.int8.rel_rms_error.toExponential(3)}, largest absolute error ` +
          `${r.int8.max_abs_error.toExponential(3)} (${r.int8.max_at})`,
      );
    }
    tensorDTypes[file] = r.dtypes;
    if (r.narrowing.tensors) {
      const { current: _c, origin: _o, allowOverflow: _a, ...rep } = r.narrowing;
      narrowing[key] = rep;
      log(
        `${key}: narrowed ${rep.tensors} tensors to float16: ${rep.changed} of ${rep.values} values changed, ` +
          `largest absolute change ${rep.max_abs_change.toExponential(3)}` +
          (rep.max_at ? ` (${rep.max_at})` : "") +
          (rep.overflowed ? `, ${rep.overflowed} became ±inf` : ""),
      );
    }
  };
  // Ctrl-C in the CLI: remove the temporary directory before exiting.
  const onInterrupt = () => {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* already gone */ }
    Deno.exit(130);
  };
  const trap = opts.exitOnInterrupt && Deno.build.os !== "windows";
  if (trap) Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    // Cheap inputs first, so a wrong path fails before gigabytes are copied.
    const tokPath = join(opts.icetk, "ice_text.model");
    let tokBytes: Uint8Array;
    try {
      tokBytes = await Deno.readFile(tokPath);
    } catch (e) {
      throw new Error(`${tokPath}: cannot read the tokenizer (${(e as Error).message}) (--icetk)`);
    }
    const tok = validateSentencePiece(tokBytes, tokPath);
    let clusterBytes: Uint8Array;
    try {
      clusterBytes = await Deno.readFile(opts.clusters);
    } catch (e) {
      throw new Error(
        `${opts.clusters}: cannot read the cluster labels (${(e as Error).message}) (--clusters)`,
      );
    }
    validateClusterLabels(clusterBytes, opts.clusters, IMAGE_TOKENS, numClusters);

    const config: Json = {
      format: MODEL_FORMAT,
      version: MODEL_FORMAT_VERSION,
      dtype: "f16", // replaced below by what was stored
      image_tokens: IMAGE_TOKENS,
    };
    // VQ-VAE
    const vqPath = join(opts.icetk, "ice_image.pt");
    const vqCfgFile = join(opts.icetk, "vqvae_config.json");
    const vqCfg = (await exists(vqCfgFile)) ? await readJson(vqCfgFile, "the VQ-VAE config") : null;
    const vq = await openTorchCheckpoint(vqPath);
    let vqSection: Json;
    try {
      vqSection = vqvaeConfig(vq, vqCfg, vqCfgFile);
      if (vqSection.n_embed !== IMAGE_TOKENS) {
        throw new Error(
          `${vqPath}: codebook has ${vqSection.n_embed} entries; CogView2 uses ${IMAGE_TOKENS} image tokens`,
        );
      }
      // SAT models, validated before anything large is written.
      const sats: { m: (typeof SAT_MODELS)[number]; sat: SatModel; ck: Checkpoint; section: Json }[] = [];
      try {
        for (const m of SAT_MODELS) {
          const sat = await openSatModel(opts.sat, m.folder);
          try {
            const iter = (await sat.readText("latest")).trim();
            if (!/^[\w.-]+$/.test(iter) || iter === "." || iter === "..") {
              throw new Error(
                `${join(sat.origin, "latest")}: does not name an iteration folder (${
                  JSON.stringify(iter.slice(0, 40))
                })`,
              );
            }
            const cfgFile = join(sat.origin, "model_config.json");
            const cfg = parseJson(await sat.readText("model_config.json"), cfgFile);
            const ck = await sat.checkpoint(`${iter}/mp_rank_00_model_states.pt`);
            try {
              const section = transformerConfig(ck.origin, cfgFile, cfg, ck, m);
              if ((section.vocab_size as number) < IMAGE_TOKENS + tok.pieces) {
                throw new Error(
                  `${cfgFile}: field "vocab_size" (${section.vocab_size}) is smaller than ${IMAGE_TOKENS} image tokens + ` +
                    `${tok.pieces} text pieces of ${tokPath}`,
                );
              }
              sats.push({ m, sat, ck, section });
            } catch (e) {
              ck.close();
              throw e;
            }
          } catch (e) {
            sat.close();
            throw e;
          }
        }
        for (const { m, ck, section } of sats) {
          log(`${m.key}: ${ck.origin} → ${m.key}.safetensors`);
          // In checkpoint order, or in archive order when streaming a compressed checkpoint.
          const order = ck instanceof StreamedTorchCheckpoint ? ck.order() : ck.names();
          await write(ck, order, m.key, true);
          config[m.key] = section;
        }
      } finally {
        for (const s of sats) {
          s.ck.close();
          s.sat.close();
        }
      }
      log(`vqvae: ${vqPath} → vqvae.safetensors`);
      await write(vq, vq.names(), "vqvae", false);
      config.vqvae = vqSection;
    } finally {
      vq.close();
    }
    // "f16" or "f32" when every floating-point tensor is stored so, else "mixed" (each tensor's is in the manifest).
    const floats = new Set(
      Object.values(tensorDTypes).flatMap((t) => Object.values(t).map((d) => d.stored))
        .filter((d) => FLOATS.has(d)),
    );
    const hasInt8 = Object.keys(int8).length > 0;
    config.dtype = hasInt8 ? "mixed" : floats.size === 1 ? [...floats][0] : floats.size ? "mixed" : choice;
    config.tokenizer = { file: "ice_text.model", type: tok.type, pieces: tok.pieces };
    config.clusters = { file: "cluster_label.npy", num_clusters: numClusters, count: IMAGE_TOKENS };
    // Key order as the demo writer uses.
    const ordered: Json = {};
    for (
      const k of [
        "format",
        "version",
        "dtype",
        "image_tokens",
        "coglm",
        "dsr",
        "itersr",
        "vqvae",
        "tokenizer",
        "clusters",
      ]
    ) {
      ordered[k] = config[k];
    }
    await Deno.writeFile(join(tmp, "ice_text.model"), tokBytes);
    files["ice_text.model"] = await sha256File(join(tmp, "ice_text.model"));
    await Deno.writeFile(join(tmp, "cluster_label.npy"), clusterBytes);
    files["cluster_label.npy"] = await sha256File(join(tmp, "cluster_label.npy"));
    await Deno.writeTextFile(join(tmp, "config.json"), JSON.stringify(ordered, null, 2) + "\n");
    files["config.json"] = await sha256File(join(tmp, "config.json"));
    const manifest = {
      files,
      weights: choice,
      narrowing,
      ...(hasInt8
        ? {
          int8: {
            scheme:
              "symmetric absmax per group of `group` consecutive elements along K; int8 codes under the " +
              "weight's name, f32 scales [N, K/group] under <name>.qscale",
            group,
            models: int8,
          },
        }
        : {}),
      tensors: tensorDTypes,
    };
    await Deno.writeTextFile(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    await swapIn(tmp, out);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  } finally {
    if (trap) Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  for (const w of warnings) log(`warning: ${w}`);
  return { out, files, warnings, narrowing, int8 };
}

/** Re-reads a converted directory and checks every file of its manifest (size and SHA-256). */
export async function verifyModelDir(dir: string): Promise<{ files: number; bytes: number }> {
  const manifestPath = join(dir, "manifest.json");
  const manifest = await readJson(manifestPath, "the manifest");
  const entries = manifest.files as Record<string, { bytes: number; sha256: string }> | undefined;
  if (!entries || typeof entries !== "object") throw new Error(`${manifestPath}: field "files" is missing`);
  let bytes = 0;
  for (const [name, want] of Object.entries(entries)) {
    if (name.includes("/") || name.includes("\\") || name === "..") {
      throw new Error(`${manifestPath}: bad file name "${name}"`);
    }
    const p = join(dir, name);
    if (!(await exists(p))) throw new Error(`${p}: listed in the manifest but missing`);
    const got = await sha256File(p);
    if (got.bytes !== want.bytes) {
      throw new Error(`${p}: ${got.bytes} bytes, the manifest says ${want.bytes}`);
    }
    if (got.sha256 !== want.sha256) {
      throw new Error(`${p}: SHA-256 differs from the manifest (file changed or corrupt)`);
    }
    bytes += got.bytes;
  }
  const { openModelDir } = await import("../models/config.ts");
  await openModelDir(dir);
  return { files: Object.keys(entries).length, bytes };
}
