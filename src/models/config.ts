// The converted model directory (written by `deno task convert` or the demo writer) and its config.json.
// Not a loader of weights: it validates the config and opens each model's safetensors file on demand.
import { join, resolve } from "node:path";
import { openSafetensors, type SafetensorsFile } from "../formats/safetensors.ts";

export const MODEL_FORMAT = "cogview2-webgpu-model";
export const MODEL_FORMAT_VERSION = 1;

/** A SwissArmyTransformer model's architecture, normalised from its model_config.json and tensor shapes. */
export interface TransformerConfig {
  file: string;
  model_class: string;
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  vocab_size: number;
  max_sequence_length: number;
  inner_hidden_size: number;
  /** SAT layer-norm order: "sandwich" for CogView2 ("pre" for plain pre-LN models). */
  layernorm_order: string;
  layernorm_epsilon: number;
}

/** DSR / iterative SR add their sequence layout, local-attention kernel sizes and the extended position table. */
export interface SrConfig extends TransformerConfig {
  layout: number[];
  kernel_size: number;
  kernel_size2: number;
  new_sequence_length: number;
}

export interface VqvaeFileConfig {
  file: string;
  n_embed: number;
  [key: string]: unknown;
}

export interface ModelConfig {
  format: string;
  version: number;
  /** Storage dtype of the floating-point weights: "f16", "f32" or "mixed" (each tensor's own: see the manifest). */
  dtype: string;
  image_tokens: number;
  coglm: TransformerConfig;
  dsr: SrConfig;
  itersr: SrConfig;
  vqvae: VqvaeFileConfig;
  tokenizer: { file: string; type: string; pieces: number };
  clusters: { file: string; num_clusters: number; count: number };
  /** Present only on the built-in demo model. */
  demo?: { version: number; seed: number; note: string };
}

export type ModelName = "coglm" | "dsr" | "itersr" | "vqvae";

export interface ModelDir {
  /** Absolute path of the directory. */
  dir: string;
  config: ModelConfig;
  /** Opens the safetensors file of one model (the caller closes it). */
  weights(name: ModelName): Promise<SafetensorsFile>;
  /** Absolute path of a file named in the config. */
  path(file: string): string;
}

function fail(file: string, field: string, msg: string): never {
  throw new Error(`${file}: field "${field}" ${msg}`);
}

function posInt(file: string, obj: Record<string, unknown>, key: string, prefix: string): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    fail(file, `${prefix}${key}`, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(file: string, obj: Record<string, unknown>, key: string, prefix: string): string {
  const v = obj[key];
  if (typeof v !== "string" || !v) {
    fail(file, `${prefix}${key}`, `must be a non-empty string, got ${JSON.stringify(v)}`);
  }
  return v;
}

function section(file: string, cfg: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = cfg[key];
  if (!v || typeof v !== "object" || Array.isArray(v)) fail(file, key, "is missing or not an object");
  return v as Record<string, unknown>;
}

/** A file name from the config: a plain name inside the directory, never a path out of it. */
function safeFile(file: string, obj: Record<string, unknown>, prefix: string): string {
  const f = str(file, obj, "file", prefix);
  if (f.includes("/") || f.includes("\\") || f === "." || f === "..") {
    fail(file, `${prefix}file`, `must be a file name inside the model directory, got "${f}"`);
  }
  return f;
}

function transformer(file: string, cfg: Record<string, unknown>, key: string, sr: boolean): void {
  const s = section(file, cfg, key);
  const p = `${key}.`;
  safeFile(file, s, p);
  str(file, s, "model_class", p);
  for (
    const k of [
      "num_layers",
      "hidden_size",
      "num_attention_heads",
      "vocab_size",
      "max_sequence_length",
      "inner_hidden_size",
    ]
  ) {
    posInt(file, s, k, p);
  }
  if ((s.hidden_size as number) % (s.num_attention_heads as number) !== 0) {
    fail(
      file,
      `${p}hidden_size`,
      `(${s.hidden_size}) is not a multiple of num_attention_heads (${s.num_attention_heads})`,
    );
  }
  str(file, s, "layernorm_order", p);
  if (typeof s.layernorm_epsilon !== "number" || !(s.layernorm_epsilon > 0)) {
    fail(file, `${p}layernorm_epsilon`, "must be a positive number");
  }
  if (sr) {
    if (!Array.isArray(s.layout) || !s.layout.every((v) => Number.isInteger(v) && v > 0)) {
      fail(file, `${p}layout`, `must be an array of positive integers, got ${JSON.stringify(s.layout)}`);
    }
    posInt(file, s, "kernel_size", p);
    posInt(file, s, "kernel_size2", p);
    posInt(file, s, "new_sequence_length", p);
  }
}

/** Checks a parsed config.json; throws an Error naming the file and the field. */
export function validateConfig(cfg: unknown, file = "config.json"): ModelConfig {
  if (!cfg || typeof cfg !== "object") throw new Error(`${file}: not a JSON object`);
  const c = cfg as Record<string, unknown>;
  if (c.format !== MODEL_FORMAT) {
    fail(
      file,
      "format",
      `must be "${MODEL_FORMAT}", got ${
        JSON.stringify(c.format)
      } (convert the weights with deno task convert)`,
    );
  }
  if (c.version !== MODEL_FORMAT_VERSION) {
    fail(
      file,
      "version",
      `is ${
        JSON.stringify(c.version)
      }; this program reads version ${MODEL_FORMAT_VERSION} (re-run deno task convert)`,
    );
  }
  if (c.dtype !== "f16" && c.dtype !== "f32" && c.dtype !== "mixed") {
    fail(file, "dtype", `must be "f16", "f32" or "mixed", got ${JSON.stringify(c.dtype)}`);
  }
  posInt(file, c, "image_tokens", "");
  transformer(file, c, "coglm", false);
  transformer(file, c, "dsr", true);
  transformer(file, c, "itersr", true);
  const vq = section(file, c, "vqvae");
  safeFile(file, vq, "vqvae.");
  posInt(file, vq, "n_embed", "vqvae.");
  const tok = section(file, c, "tokenizer");
  safeFile(file, tok, "tokenizer.");
  const cl = section(file, c, "clusters");
  safeFile(file, cl, "clusters.");
  posInt(file, cl, "num_clusters", "clusters.");
  posInt(file, cl, "count", "clusters.");
  return c as unknown as ModelConfig;
}

/** Opens a converted model directory: reads and validates config.json; weights are opened on demand. */
export async function openModelDir(dir: string): Promise<ModelDir> {
  const abs = resolve(dir);
  const file = join(abs, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `${abs} is not a converted model directory (no config.json); create one with deno task convert`,
      );
    }
    throw new Error(`Cannot read ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const config = validateConfig(parsed, file);
  return {
    dir: abs,
    config,
    path: (f: string) => join(abs, f),
    weights: (name: ModelName) => openSafetensors(join(abs, config[name].file)),
  };
}
