// The built-in demo model: CogView2's architecture at a tiny size with seeded random weights, written once into the
// cache in the converted-model format, so the server runs on a fresh machine. Not a real model: its images are noise.

import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { encodeNpy } from "../formats/npy.ts";
import { writeSafetensors } from "../formats/safetensors.ts";
import { f32ToF16Bits } from "../gpu/f16.ts";
import vqvaeShapes from "../../assets/demo/vqvae_shapes.json" with { type: "json" };

/** Bump when the generated files change: an older cache is then rebuilt. */
export const DEMO_VERSION = 2;
export const DEMO_SEED = 20220428;

/** Sizes of the demo transformers (the fixture's tiny CogView2: 2 layers, hidden 64, 4 heads). */
export const DEMO_SIZES = { numLayers: 2, hidden: 64, heads: 4, maxSequenceLength: 1024 } as const;

const TOKENIZER_ASSET = new URL("../../assets/demo/ice_text.model", import.meta.url);

/** $COGVIEW2_CACHE, else $XDG_CACHE_HOME/cogview2-webgpu, else ~/.cache/cogview2-webgpu; the demo lives in demo/. */
export function demoDir(): string {
  const explicit = Deno.env.get("COGVIEW2_CACHE");
  if (explicit) return join(explicit, "demo");
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  return join(xdg && xdg.trim() ? xdg : join(homedir(), ".cache"), "cogview2-webgpu", "demo");
}

/** mulberry32 uniforms and Box–Muller normals: the same seed gives the same model on every machine. */
function seeded(seed: number) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const randn = (n: number, std: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))), th = 2 * Math.PI * u();
      out[i] = std * r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = std * r * Math.sin(th);
    }
    return out;
  };
  return { uniform: u, randn };
}

interface DemoTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Initial values by role: norms 1/0, biases small, weights N(0, 1/fan_in) so activations stay O(1). */
function init(name: string, shape: number[], randn: (n: number, std: number) => Float32Array): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const isNorm = /norm|layernorm/.test(name);
  if (isNorm && name.endsWith(".weight")) return new Float32Array(n).fill(1);
  if (name.endsWith(".bias")) return isNorm ? new Float32Array(n) : randn(n, 0.02);
  if (name.endsWith("cluster_size")) return new Float32Array(n).fill(1);
  if (/embeddings?\.weight$|embed_avg$|embed\.weight$/.test(name)) {
    return randn(n, name.includes("position") ? 0.5 : 1);
  }
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return randn(n, 1 / Math.sqrt(fanIn));
}

function transformerTensors(vocab: number, kind: "coglm" | "dsr" | "itersr"): Array<[string, number[]]> {
  const { numLayers, hidden, maxSequenceLength } = DEMO_SIZES;
  const t: Array<[string, number[]]> = [];
  if (kind !== "coglm") {
    t.push(["mixins.extra_position_embedding.position_embeddings.weight", [3600, hidden]]);
  }
  if (kind === "dsr") {
    for (let l = 0; l < numLayers; l++) {
      t.push([`mixins.attention_plus.query_key_value.${l}.weight`, [3 * hidden, hidden]]);
      t.push([`mixins.attention_plus.query_key_value.${l}.bias`, [3 * hidden]]);
      t.push([`mixins.attention_plus.dense.${l}.weight`, [hidden, hidden]]);
      t.push([`mixins.attention_plus.dense.${l}.bias`, [hidden]]);
    }
  }
  t.push(["transformer.word_embeddings.weight", [vocab, hidden]]);
  t.push(["transformer.position_embeddings.weight", [maxSequenceLength, hidden]]);
  for (let l = 0; l < numLayers; l++) {
    const p = `transformer.layers.${l}.`;
    const ln = (n: string) => t.push([`${p}${n}.weight`, [hidden]], [`${p}${n}.bias`, [hidden]]);
    ln("input_layernorm");
    t.push([`${p}attention.query_key_value.weight`, [3 * hidden, hidden]], [
      `${p}attention.query_key_value.bias`,
      [
        3 * hidden,
      ],
    ]);
    t.push([`${p}attention.dense.weight`, [hidden, hidden]], [`${p}attention.dense.bias`, [hidden]]);
    ln("post_attention_layernorm");
    ln("third_layernorm");
    ln("fourth_layernorm");
    t.push([`${p}mlp.dense_h_to_4h.weight`, [4 * hidden, hidden]], [`${p}mlp.dense_h_to_4h.bias`, [
      4 * hidden,
    ]]);
    t.push([`${p}mlp.dense_4h_to_h.weight`, [hidden, 4 * hidden]], [`${p}mlp.dense_4h_to_h.bias`, [hidden]]);
  }
  t.push(["transformer.final_layernorm.weight", [hidden]], ["transformer.final_layernorm.bias", [hidden]]);
  return t;
}

function modelCfg(file: string, modelClass: string, vocab: number, extra: Record<string, unknown> = {}) {
  const { numLayers, hidden, heads, maxSequenceLength } = DEMO_SIZES;
  return {
    file,
    model_class: modelClass,
    num_layers: numLayers,
    hidden_size: hidden,
    num_attention_heads: heads,
    vocab_size: vocab,
    max_sequence_length: maxSequenceLength,
    inner_hidden_size: 4 * hidden,
    layernorm_order: "sandwich",
    layernorm_epsilon: 1e-5,
    ...extra,
  };
}

/**
 * The demo VQ-VAE: the fixture's HVQVAE state dict (assets/demo/vqvae_shapes.json) with every decoder at the base
 * width (32 channels at all levels, so no nin_shortcut), which makes decoding ~2× cheaper on a CPU adapter. The encoder
 * and the quantizer keep the fixture's widths. 32 is the narrowest width icetk's GroupNorm(32) allows.
 */
export function demoVqvaeShapes(): Array<[string, number[]]> {
  const base = vqvaeShapes.widths.dec_channels;
  const out: Array<[string, number[]]> = [];
  for (const [name, shape] of Object.entries(vqvaeShapes.shapes as Record<string, number[]>)) {
    if (!name.startsWith("decs.")) {
      out.push([name, shape]);
      continue;
    }
    if (name.includes(".nin_shortcut.")) continue;
    const narrowed = [...shape];
    // Output (dim 0) and input (dim 1) channels: every decoder width becomes the base; RGB (3) and the code
    // embedding (conv_in's input) stay.
    if (narrowed[0] > base) narrowed[0] = base;
    if (narrowed.length === 4 && narrowed[1] > base && !name.endsWith("conv_in.weight")) narrowed[1] = base;
    out.push([name, narrowed]);
  }
  return out;
}

/** Number of pieces of a SentencePiece model (counts field 1 entries of the ModelProto). */
export function countPieces(model: Uint8Array): number {
  let i = 0, n = 0;
  const varint = () => {
    let v = 0, shift = 0, b;
    do {
      b = model[i++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (i < model.length) {
    const key = varint(), field = Math.floor(key / 8), wire = key & 7;
    if (wire === 2) {
      const len = varint();
      if (field === 1) n++;
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 5) i += 4;
    else if (wire === 1) i += 8;
    else throw new Error(`countPieces: unsupported wire type ${wire} in the tokenizer asset`);
  }
  return n;
}

/** Writes the demo model into `dir` (which must be empty or absent); returns the files written. */
export async function writeDemoModel(dir: string, log: (msg: string) => void = () => {}): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const { uniform, randn } = seeded(DEMO_SEED);
  const tokenizer = await Deno.readFile(TOKENIZER_ASSET);
  const pieces = countPieces(tokenizer);
  // Image codes, text pieces and the three special tokens, padded to a multiple of 8 like SwissArmyTransformer.
  const vocab = Math.ceil((20000 + pieces + 3) / 8) * 8;
  const files: string[] = [];
  const write = async (file: string, tensors: DemoTensor[]) => {
    await writeSafetensors(
      join(dir, file),
      tensors.map((t) => ({
        name: t.name,
        dtype: "f16" as const,
        shape: t.shape,
        data: f32ToF16Bits(t.data),
      })),
    );
    files.push(file);
  };
  for (const kind of ["coglm", "dsr", "itersr"] as const) {
    await write(
      `${kind}.safetensors`,
      transformerTensors(vocab, kind).map(([name, shape]) => ({
        name,
        shape,
        data: init(name, shape, randn),
      })),
    );
    log(`demo model: wrote ${kind}.safetensors`);
  }
  const vq = demoVqvaeShapes();
  await write(
    "vqvae.safetensors",
    vq.map(([name, shape]) => ({ name, shape, data: init(name, shape, randn) })),
  );
  log("demo model: wrote vqvae.safetensors");
  await Deno.writeFile(join(dir, "ice_text.model"), tokenizer);
  files.push("ice_text.model");
  // Cluster labels: 20000 codes into 500 clusters, drawn with the same seeded generator.
  const labels = Int32Array.from({ length: 20000 }, () => Math.floor(uniform() * 500));
  await Deno.writeFile(join(dir, "cluster_label.npy"), encodeNpy(labels, [20000], { int64: true }));
  files.push("cluster_label.npy");
  const config = {
    format: "cogview2-webgpu-model",
    version: 1,
    dtype: "f16",
    image_tokens: 20000,
    coglm: modelCfg("coglm.safetensors", "CachedAutoregressiveModel", vocab),
    dsr: modelCfg("dsr.safetensors", "DsrModel", vocab, {
      layout: [96, 496, 4096],
      kernel_size: 5,
      kernel_size2: 5,
      new_sequence_length: 4624,
    }),
    itersr: modelCfg("itersr.safetensors", "ItersrModel", vocab, {
      layout: [16, 3616],
      kernel_size: 5,
      kernel_size2: 5,
      new_sequence_length: 4624,
    }),
    vqvae: { file: "vqvae.safetensors", n_embed: vqvaeShapes.n_embed, ...vqvaeShapes.widths },
    tokenizer: { file: "ice_text.model", type: "unigram", pieces },
    clusters: { file: "cluster_label.npy", num_clusters: 500, count: 20000 },
    demo: { version: DEMO_VERSION, seed: DEMO_SEED, note: "random weights: images are noise" },
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  const manifest: Record<string, { bytes: number; sha256: string }> = {};
  for (const f of [...files, "config.json"]) {
    const bytes = await Deno.readFile(join(dir, f));
    manifest[f] = { bytes: bytes.byteLength, sha256: createHash("sha256").update(bytes).digest("hex") };
  }
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({ files: manifest }, null, 2) + "\n");
  return files;
}

async function isCurrent(dir: string): Promise<boolean> {
  try {
    const cfg = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    if (cfg?.demo?.version !== DEMO_VERSION) return false;
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    for (const [f, m] of Object.entries(manifest.files as Record<string, { bytes: number }>)) {
      if ((await Deno.stat(join(dir, f))).size !== m.bytes) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the demo model directory, creating it on first use (a few seconds). Written to a temporary sibling and
 * renamed into place, so a half-written model is never used and two processes starting together do not clash.
 */
export async function ensureDemoModel(
  options: { dir?: string; log?: (msg: string) => void } = {},
): Promise<string> {
  const dir = options.dir ?? demoDir();
  const log = options.log ?? (() => {});
  if (await isCurrent(dir)) return dir;
  log(`creating the demo model (tiny CogView2, random weights) in ${dir}`);
  const parent = join(dir, "..");
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: ".demo-tmp-" });
  try {
    await writeDemoModel(tmp, log);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      await Deno.rename(tmp, dir);
    } catch (e) {
      if (!(await isCurrent(dir))) throw e; // another process won the race with the same content
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return dir;
}
