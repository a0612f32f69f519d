// The built-in demo model writer: deterministic bytes, a config.json that openModelDir accepts, tensor names and shapes
// of the original checkpoints at the fixture's size, cache reuse and rebuild. Not a numerics test (it has random weights).

import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { DEMO_SIZES, DEMO_VERSION, ensureDemoModel, writeDemoModel } from "../../src/demo/model.ts";
import { openModelDir } from "../../src/models/config.ts";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { verifyModelDir } from "../../src/convert/convert.ts";

const fixture = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

async function manifest(dir: string): Promise<Record<string, { bytes: number; sha256: string }>> {
  return JSON.parse(await Deno.readTextFile(join(dir, "manifest.json"))).files;
}

Deno.test("demo model: same bytes on every run; config.json validates; sizes match the fixture's tiny CogView2", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  try {
    await writeDemoModel(a);
    await writeDemoModel(b);
    nodeAssert.deepEqual(
      await manifest(a),
      await manifest(b),
      "deterministic: identical sha256 of every file",
    );
    const md = await openModelDir(a);
    const c = md.config;
    nodeAssert.equal(c.demo?.version, DEMO_VERSION);
    nodeAssert.match(c.demo?.note ?? "", /noise/);
    // The fixture's SAT configs (same architecture and vocabulary as the demo).
    for (
      const [key, sat] of [["coglm", "coglm"], ["dsr", "cogview2-dsr"], [
        "itersr",
        "cogview2-itersr",
      ]] as const
    ) {
      const ref = JSON.parse(await Deno.readTextFile(`${fixture}sat/${sat}/model_config.json`));
      const got = c[key] as unknown as Record<string, unknown>;
      for (const f of ["model_class", "num_layers", "hidden_size", "num_attention_heads", "vocab_size"]) {
        nodeAssert.equal(got[f], ref[f], `${key}.${f}`);
      }
      nodeAssert.equal(got.max_sequence_length, ref.max_sequence_length);
      if (ref.layout) {
        nodeAssert.deepEqual(got.layout, String(ref.layout).split(",").map(Number), `${key}.layout`);
      }
      if (ref.kernel_size) nodeAssert.equal(got.kernel_size, ref.kernel_size);
    }
    nodeAssert.equal(
      c.tokenizer.pieces + 20000 + 3 <= c.coglm.vocab_size,
      true,
      "every token has an embedding row",
    );
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("demo model: tensor names and shapes are the original checkpoints' (SAT keys, icetk HVQVAE state dict)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeDemoModel(dir);
    const md = await openModelDir(dir);
    const { hidden, numLayers } = DEMO_SIZES;
    const vocab = md.config.coglm.vocab_size;
    const shapes = async (name: "coglm" | "dsr" | "itersr" | "vqvae") => {
      const w = await md.weights(name);
      try {
        return new Map(w.names().map((n) => [n, w.info(n).shape]));
      } finally {
        w.close();
      }
    };
    const coglm = await shapes("coglm");
    nodeAssert.deepEqual(coglm.get("transformer.word_embeddings.weight"), [vocab, hidden]);
    nodeAssert.deepEqual(coglm.get(`transformer.layers.${numLayers - 1}.attention.query_key_value.weight`), [
      3 * hidden,
      hidden,
    ]);
    nodeAssert.deepEqual(coglm.get("transformer.layers.0.fourth_layernorm.weight"), [hidden]);
    nodeAssert.ok(![...coglm.keys()].some((k) => k.startsWith("mixins.")), "CogLM has no mixins");
    const dsr = await shapes("dsr");
    nodeAssert.deepEqual(dsr.get("mixins.extra_position_embedding.position_embeddings.weight"), [
      3600,
      hidden,
    ]);
    nodeAssert.deepEqual(dsr.get(`mixins.attention_plus.query_key_value.${numLayers - 1}.weight`), [
      3 * hidden,
      hidden,
    ]);
    const itersr = await shapes("itersr");
    nodeAssert.ok(itersr.has("mixins.extra_position_embedding.position_embeddings.weight"));
    nodeAssert.ok(
      ![...itersr.keys()].some((k) => k.startsWith("mixins.attention_plus")),
      "no attention_plus in LoPAR",
    );
    // The VQ-VAE: the fixture's ice_image.pt state dict; decoders narrowed to the base width (no nin_shortcut).
    const ref = JSON.parse(await Deno.readTextFile(`${fixture}icetk/vqvae_config.json`))
      .state_dict_shapes as Record<
        string,
        number[]
      >;
    const vq = await shapes("vqvae");
    nodeAssert.deepEqual(
      [...vq.keys()].sort(),
      Object.keys(ref).filter((n) => !/^decs\..*nin_shortcut/.test(n)).sort(),
    );
    for (const [name, shape] of vq) {
      if (!name.startsWith("decs.")) nodeAssert.deepEqual(shape, ref[name], name);
      else {
        nodeAssert.equal(shape.length, ref[name].length, name);
        nodeAssert.ok(shape.every((d, i) => d <= ref[name][i] && (d === ref[name][i] || d === 32)), name);
      }
    }
    nodeAssert.deepEqual(vq.get("decs.1.conv_in.weight"), [32, 48, 3, 3]);
    nodeAssert.deepEqual(vq.get("decs.1.up.3.block.0.conv1.weight"), [32, 32, 3, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo model: ensureDemoModel creates once, reuses the cache, rebuilds a damaged one", async () => {
  const parent = await Deno.makeTempDir();
  const dir = join(parent, "demo");
  try {
    const logs: string[] = [];
    nodeAssert.equal(await ensureDemoModel({ dir, log: (m) => logs.push(m) }), dir);
    nodeAssert.ok(logs.some((l) => /creating the demo model/.test(l)));
    const first = await manifest(dir);
    logs.length = 0;
    await ensureDemoModel({ dir, log: (m) => logs.push(m) });
    nodeAssert.equal(logs.length, 0, `second start reuses the cache silently: ${logs}`);
    // A truncated weight file (an interrupted copy, a full disk) is noticed and the model rebuilt.
    await Deno.truncate(join(dir, "dsr.safetensors"), 100);
    await ensureDemoModel({ dir, log: (m) => logs.push(m) });
    nodeAssert.ok(logs.some((l) => /creating the demo model/.test(l)));
    nodeAssert.deepEqual(await manifest(dir), first);
    // No temporary directories left behind.
    const left = [];
    for await (const e of Deno.readDir(parent)) left.push(e.name);
    nodeAssert.deepEqual(left, ["demo"]);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("demo model: the same format as `deno task convert` output (the fixture converted): config, tensors, manifest", async () => {
  const demo = await Deno.makeTempDir(), conv = await Deno.makeTempDir();
  try {
    await writeDemoModel(demo);
    await convertFixtureSet(fixture.replace(/\/$/, ""), conv);
    // The converter's own check (every manifest entry's size and SHA-256, then config.json) accepts the demo.
    await verifyModelDir(demo);
    const a = await openModelDir(demo), b = await openModelDir(conv);
    for (
      const k of [
        "format",
        "version",
        "dtype",
        "image_tokens",
        "coglm",
        "dsr",
        "itersr",
        "tokenizer",
        "clusters",
      ]
    ) {
      nodeAssert.deepEqual(
        (a.config as unknown as Record<string, unknown>)[k],
        (b.config as unknown as Record<string, unknown>)[k],
        k,
      );
    }
    nodeAssert.equal(a.config.vqvae.n_embed, b.config.vqvae.n_embed);
    for (const m of ["coglm", "dsr", "itersr", "vqvae"] as const) {
      const wa = await a.weights(m), wb = await b.weights(m);
      try {
        const names = m === "vqvae" ? wa.names() : [...new Set([...wa.names(), ...wb.names()])];
        for (const n of names) {
          nodeAssert.ok(wb.has(n), `${m}: ${n} is in the converted checkpoint`);
          nodeAssert.equal(wa.info(n).dtype, wb.info(n).dtype, `${m}: ${n} dtype`);
          if (m !== "vqvae" || !n.startsWith("decs.")) {
            nodeAssert.deepEqual(wa.info(n).shape, wb.info(n).shape, `${m}: ${n} shape`);
          }
        }
      } finally {
        wa.close();
        wb.close();
      }
    }
  } finally {
    await Deno.remove(demo, { recursive: true });
    await Deno.remove(conv, { recursive: true });
  }
});
