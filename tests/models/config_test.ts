// config.json of a converted model directory: a valid config opens, each broken field is named in the error.
import assert from "node:assert/strict";
import { join } from "node:path";
import { openModelDir, validateConfig } from "../../src/models/config.ts";

function tf(extra: Record<string, unknown> = {}) {
  return {
    file: "m.safetensors",
    model_class: "X",
    num_layers: 3,
    hidden_size: 96,
    num_attention_heads: 3,
    vocab_size: 20100,
    max_sequence_length: 1024,
    inner_hidden_size: 384,
    layernorm_order: "sandwich",
    layernorm_epsilon: 1e-5,
    ...extra,
  };
}
const sr = { layout: [16, 3616], kernel_size: 5, kernel_size2: 5, new_sequence_length: 4624 };
function config() {
  return {
    format: "cogview2-webgpu-model",
    version: 1,
    dtype: "f16",
    image_tokens: 20000,
    coglm: tf(),
    dsr: tf(sr),
    itersr: tf(sr),
    vqvae: { file: "vqvae.safetensors", n_embed: 20000 },
    tokenizer: { file: "ice_text.model", type: "unigram", pieces: 100 },
    clusters: { file: "cluster_label.npy", num_clusters: 500, count: 20000 },
  };
}

Deno.test("config: a valid config passes; broken fields are named", () => {
  validateConfig(config());
  const cases: Array<[(c: ReturnType<typeof config>) => void, RegExp]> = [
    [(c) => (c.format = "other"), /field "format"/],
    [(c) => (c.version = 2), /field "version"/],
    [(c) => (c.dtype = "f8"), /field "dtype"/],
    [(c) => (c.coglm.num_layers = 0), /field "coglm\.num_layers"/],
    [(c) => (c.dsr.num_attention_heads = 5), /field "dsr\.hidden_size"/],
    [(c) => ((c.itersr as Record<string, unknown>).layout = "x"), /field "itersr\.layout"/],
    [(c) => (c.vqvae.file = "../etc/passwd"), /field "vqvae\.file" must be a file name inside/],
    [(c) => delete (c as Record<string, unknown>).clusters, /field "clusters" is missing/],
  ];
  for (const [mutate, re] of cases) {
    const c = config();
    mutate(c);
    assert.throws(() => validateConfig(c, "dir/config.json"), re);
  }
});

Deno.test("config: openModelDir names the directory when config.json is absent or broken", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(openModelDir(dir), /not a converted model directory \(no config\.json\)/);
    await Deno.writeTextFile(join(dir, "config.json"), "{oops");
    await assert.rejects(openModelDir(dir), /config\.json: not valid JSON/);
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config()));
    const md = await openModelDir(dir);
    assert.equal(md.config.coglm.hidden_size, 96);
    await assert.rejects(md.weights("coglm"), /Cannot open weights .*m\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
