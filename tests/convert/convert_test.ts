import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { convert, verifyModelDir } from "../../src/convert/convert.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { openModelDir } from "../../src/models/config.ts";
import { encodeNpy } from "../../src/formats/npy.ts";
import { BytesAccess, writeZip, ZipArchive } from "../../src/formats/zip.ts";
import { type FakeStorage, type FakeTensor, writeTorchCheckpoint } from "../formats/_torch_writer.ts";
import { writeF32Checkpoint } from "./_f32_checkpoint.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;

Deno.test("convert: fixture set → model directory; tensors equal the .pt bit for bit", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const out = join(tmp, "model");
    await convertFixtureSet(FIX, out);
    const md = await openModelDir(out);
    assert.equal(md.config.dtype, "f16");
    assert.equal(md.config.coglm.num_layers, 2);
    assert.deepEqual(md.config.dsr.layout, [96, 496, 4096]);
    assert.deepEqual(md.config.itersr.layout, [16, 3616]);
    assert.equal(md.config.vqvae.n_embed, 20000);
    assert.equal(md.config.clusters.count, 20000);
    const pairs: [string, string][] = [
      ["coglm", "sat/coglm/1/mp_rank_00_model_states.pt"],
      ["dsr", "sat/cogview2-dsr/1/mp_rank_00_model_states.pt"],
      ["itersr", "sat/cogview2-itersr/1/mp_rank_00_model_states.pt"],
      ["vqvae", "icetk/ice_image.pt"],
    ];
    for (const [name, pt] of pairs) {
      const st = await md.weights(name as "coglm");
      const ck = await openTorchCheckpoint(join(FIX, pt));
      try {
        assert.deepEqual(st.names(), ck.names(), `${name}: tensor names in checkpoint order`);
        for (const n of ck.names()) {
          assert.deepEqual(st.info(n).shape, ck.info(n).shape, `${name} ${n} shape`);
          assert.deepEqual(await st.read(n), await ck.read(n), `${name} ${n} bytes`);
        }
      } finally {
        st.close();
        ck.close();
      }
    }
    const v = await verifyModelDir(out);
    assert.equal(v.files, 7);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: --dtype f32 widens float16 exactly", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const out = join(tmp, "model32");
    await convertFixtureSet(FIX, out, { dtype: "f32" });
    const md = await openModelDir(out);
    assert.equal(md.config.dtype, "f32");
    const st = await md.weights("coglm");
    const ck = await openTorchCheckpoint(join(FIX, "sat/coglm/1/mp_rank_00_model_states.pt"));
    const n = "transformer.layers.1.attention.query_key_value.weight";
    assert.equal(st.info(n).dtype, "f32");
    const a = new Float32Array((await st.read(n)).slice().buffer);
    const b = Float32Array.from(new Float16Array((await ck.read(n)).slice().buffer));
    assert.deepEqual(a, b);
    st.close();
    ck.close();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: a missing input fails naming it and leaves nothing behind", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    await assert.rejects(
      convert({
        sat: join(tmp, "nope"),
        icetk: join(FIX, "icetk"),
        clusters: join(FIX, "cluster_label.npy"),
        out: join(tmp, "o"),
      }),
      /nope: neither the folder "coglm" nor the archive "coglm\.zip"/,
    );
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Independent cross-check, zip inputs, corrupt inputs

/** Copies the fixture's official files into `dir` (sat/, icetk/, cluster_label.npy) for mutation. */
async function copySet(dir: string): Promise<{ sat: string; icetk: string; clusters: string }> {
  for (const m of ["coglm", "cogview2-dsr", "cogview2-itersr"]) {
    await Deno.mkdir(join(dir, "sat", m, "1"), { recursive: true });
    for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
      await Deno.copyFile(join(FIX, "sat", m, f), join(dir, "sat", m, f));
    }
  }
  await Deno.mkdir(join(dir, "icetk"));
  for (const f of ["ice_image.pt", "ice_text.model", "vqvae_config.json"]) {
    await Deno.copyFile(join(FIX, "icetk", f), join(dir, "icetk", f));
  }
  await Deno.copyFile(join(FIX, "cluster_label.npy"), join(dir, "cluster_label.npy"));
  return { sat: join(dir, "sat"), icetk: join(dir, "icetk"), clusters: join(dir, "cluster_label.npy") };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("convert: every tensor matches Python's own zipfile+pickle reading (committed SHA-256s)", async () => {
  const expected = JSON.parse(
    await Deno.readTextFile(new URL("./testdata/fixture_tensors.json", import.meta.url)),
  ) as Record<
    string,
    Record<string, { dtype: string; shape: number[]; sha256: string }>
  >;
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const out = join(tmp, "model");
    await convertFixtureSet(FIX, out);
    const md = await openModelDir(out);
    for (const [model, tensors] of Object.entries(expected)) {
      const st = await md.weights(model as "coglm");
      try {
        assert.deepEqual(st.names(), Object.keys(tensors), `${model}: names and order`);
        for (const [name, t] of Object.entries(tensors)) {
          assert.equal(t.dtype, "float16");
          assert.deepEqual(st.info(name).shape, t.shape, `${model} ${name}`);
          assert.equal(await sha256(await st.read(name)), t.sha256, `${model} ${name}`);
        }
      } finally {
        st.close();
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: SAT models given as .zip archives are read in place, with the same result", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const set = await copySet(tmp);
    const ref = join(tmp, "ref");
    await convert({ ...set, out: ref, progress: false });
    // coglm and dsr as archives (with and without a top folder), itersr stays a folder.
    for (const [m, top] of [["coglm", "coglm/"], ["cogview2-dsr", ""]]) {
      const entries = [];
      for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
        entries.push({ name: top + f, data: await Deno.readFile(join(set.sat, m, f)) });
      }
      await writeZip(join(set.sat, `${m}.zip`), entries);
      await Deno.remove(join(set.sat, m), { recursive: true });
    }
    const out = join(tmp, "fromzip");
    await convert({ ...set, out, progress: false });
    const a = JSON.parse(await Deno.readTextFile(join(ref, "manifest.json")));
    const b = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
    assert.deepEqual(b, a);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Rewrites a checkpoint with its data.pkl transformed (re-zipped, so CRCs are valid). */
async function patchPickle(path: string, fn: (pkl: Uint8Array) => Uint8Array) {
  const z = await ZipArchive.openFile(path);
  const parts = await Promise.all(z.entries.map(async (e) => ({ name: e.name, data: await z.read(e.name) })));
  z.close();
  for (const p of parts) if (p.name.endsWith("data.pkl")) p.data = fn(p.data);
  await writeZip(path, parts);
}

function replaceBytes(b: Uint8Array, from: string, to: string): Uint8Array {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  assert.ok(s.includes(from), `pattern ${from}`);
  return Uint8Array.from(s.replace(from, to), (c) => c.charCodeAt(0));
}

Deno.test("convert: corrupt or inconsistent inputs fail with one error naming the file and key; nothing is written", async () => {
  const COGLM = "sat/coglm/1/mp_rank_00_model_states.pt";
  const cases: [
    string,
    (set: { sat: string; icetk: string; clusters: string }, dir: string) => Promise<void>,
    RegExp,
  ][] = [
    ["truncated checkpoint", async (_s, d) => {
      const p = join(d, COGLM);
      const b = await Deno.readFile(p);
      await Deno.writeFile(p, b.subarray(0, b.length - 3000));
    }, /mp_rank_00_model_states\.pt: .*(truncated|end-of-central-directory|beyond the end)/],
    [
      "flipped byte in tensor data",
      async (_s, d) => {
        const p = join(d, COGLM);
        const b = await Deno.readFile(p);
        const z = await ZipArchive.open(new BytesAccess(b, p));
        b[z.entry("mp_rank_00_model_states/data/0").offset + 1000] ^= 0x40;
        await Deno.writeFile(p, b);
      },
      /mp_rank_00_model_states\.pt: tensor "transformer\.word_embeddings\.weight": storage .* fails its CRC-32 check/,
    ],
    ["flipped byte in the pickle", async (_s, d) => {
      const p = join(d, COGLM);
      const b = await Deno.readFile(p);
      const z = await ZipArchive.open(new BytesAccess(b, p));
      b[z.entry("mp_rank_00_model_states/data.pkl").offset + 50] ^= 0x01;
      await Deno.writeFile(p, b);
    }, /data\.pkl: CRC-32 mismatch/],
    [
      "swapped global name",
      (_s, d) =>
        patchPickle(join(d, COGLM), (b) => replaceBytes(b, "_rebuild_tensor_v2", "_rebuild_tensor_v9")),
      /state dict entry "transformer\.word_embeddings\.weight" is an object of class torch\._utils\._rebuild_tensor_v9/,
    ],
    [
      "unknown storage type",
      (_s, d) =>
        patchPickle(join(d, COGLM), (b) => replaceBytes(b, "torch\nHalfStorage", "torch\nHaltStorage")),
      /data\.pkl: storage of unsupported type torch\.HaltStorage/,
    ],
    [
      "unknown opcode",
      (_s, d) => patchPickle(join(d, COGLM), (b) => (b[2] = 0xfe, b)),
      /data\.pkl: unknown or unsupported pickle opcode \(opcode 0xfe at byte 2\)/,
    ],
    [
      "missing tensors",
      async (s) => {
        const p = join(s.sat, "coglm/model_config.json");
        await Deno.writeTextFile(
          p,
          (await Deno.readTextFile(p)).replace('"num_layers": 2', '"num_layers": 3'),
        );
      },
      /mp_rank_00_model_states\.pt: missing tensor "transformer\.layers\.2\.input_layernorm\.weight" .* expected by .*model_config\.json/,
    ],
    [
      "extra tensors",
      async (s) => {
        const p = join(s.sat, "cogview2-dsr/model_config.json");
        await Deno.writeTextFile(
          p,
          (await Deno.readTextFile(p)).replace('"num_layers": 2', '"num_layers": 1'),
        );
      },
      /cogview2-dsr.*: unexpected tensor "mixins\.attention_plus\.query_key_value\.1\.weight" \(and 19 more\)/,
    ],
    [
      "shape disagrees with model_config.json",
      async (s) => {
        const p = join(s.sat, "cogview2-itersr/model_config.json");
        await Deno.writeTextFile(
          p,
          (await Deno.readTextFile(p)).replace('"vocab_size": 26008', '"vocab_size": 26016'),
        );
      },
      /cogview2-itersr.*: tensor "transformer\.word_embeddings\.weight" has shape \[26008,64\], .*model_config\.json implies \[26016,64\]/,
    ],
    [
      "wrong model class",
      async (s) => {
        const p = join(s.sat, "cogview2-dsr/model_config.json");
        await Deno.writeTextFile(p, (await Deno.readTextFile(p)).replace('"DsrModel"', '"ItersrModel"'));
      },
      /cogview2-dsr\/model_config\.json: field "model_class" is "ItersrModel", expected "DsrModel"/,
    ],
    [
      "bad latest",
      (s) => Deno.writeTextFile(join(s.sat, "coglm/latest"), "../../etc"),
      /coglm\/latest: does not name an iteration/,
    ],
    ["missing model_config field", async (s) => {
      const p = join(s.sat, "coglm/model_config.json");
      await Deno.writeTextFile(p, (await Deno.readTextFile(p)).replace('"hidden_size": 64,', ""));
    }, /coglm\/model_config\.json: field "hidden_size" must be a positive integer/],
    [
      "cluster labels of the wrong dtype",
      (s) => Deno.writeFile(s.clusters, encodeNpy(new Float32Array(20000), [20000])),
      /cluster_label\.npy: dtype '<f4' is not an integer label array/,
    ],
    [
      "cluster labels of the wrong length",
      (s) => Deno.writeFile(s.clusters, encodeNpy(new Int32Array(19999), [19999], { int64: true })),
      /cluster_label\.npy: shape \(19999\) should be \(20000,\)/,
    ],
    ["cluster label out of range", (s) => {
      const l = new Int32Array(20000);
      l[123] = 500;
      return Deno.writeFile(s.clusters, encodeNpy(l, [20000], { int64: true }));
    }, /cluster_label\.npy: label 500 at \[123\] is outside \[0, 500\)/],
    [
      "tokenizer not a SentencePiece model",
      (s) =>
        Deno.writeFile(join(s.icetk, "ice_text.model"), new TextEncoder().encode("<html>not found</html>")),
      /ice_text\.model: not a SentencePiece model/,
    ],
    ["VQ-VAE config disagrees with the weights", async (s) => {
      const p = join(s.icetk, "vqvae_config.json");
      await Deno.writeTextFile(
        p,
        (await Deno.readTextFile(p)).replace('"embedding_dim": 48\n }', '"embedding_dim": 40\n }'),
      );
    }, /vqvae_config\.json: field "widths\.embedding_dim" is 40, but .*ice_image\.pt has 48/],
    ["VQ-VAE checkpoint missing", (s) => Deno.remove(join(s.icetk, "ice_image.pt")), /ice_image\.pt/],
  ];
  const tmp = await Deno.makeTempDir({ prefix: "convert-bad-" });
  try {
    for (const [what, mutate, re] of cases) {
      const dir = join(tmp, "case");
      await Deno.mkdir(dir);
      const s = await copySet(dir);
      await mutate(s, dir);
      const outParent = join(dir, "outdir");
      await Deno.mkdir(outParent);
      await assert.rejects(convert({ ...s, out: join(outParent, "model"), progress: false }), (e: Error) => {
        assert.match(e.message, re, `${what}: ${e.message}`);
        return true;
      }, what);
      assert.deepEqual([...Deno.readDirSync(outParent)], [], `${what}: nothing written`);
      await Deno.remove(dir, { recursive: true });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: the CLI exits 1 with one line naming the file, 2 on usage errors; --verify catches tampering", async () => {
  const tool = new URL("../../tools/convert.ts", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", tool, ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
  };
  const tmp = await Deno.makeTempDir({ prefix: "convert-cli-" });
  try {
    const bad = await run(
      "--sat",
      join(FIX, "sat"),
      "--icetk",
      join(FIX, "icetk"),
      "--clusters",
      join(tmp, "none.npy"),
      "--out",
      join(tmp, "o"),
    );
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^convert: .*none\.npy: cannot read the cluster labels/m);
    assert.equal((await run("--out", join(tmp, "o"))).code, 2);
    assert.equal((await run("--bogus", "1")).code, 2);
    const clusters = join(FIX, "cluster_label.npy");
    const wrongW = await run("--clusters", clusters, "--out", join(tmp, "o"), "--weights", "f8");
    assert.equal(wrongW.code, 2);
    assert.match(wrongW.err, /--weights must be one of source, f16, f32, int8, got "f8"/);
    const clash = await run(
      "--clusters",
      clusters,
      "--out",
      join(tmp, "o"),
      "--weights",
      "f16",
      "--dtype",
      "f32",
    );
    assert.equal(clash.code, 2);
    assert.match(clash.err, /--dtype is an alias of --weights/);
    const ov = await run("--clusters", clusters, "--out", join(tmp, "o"), "--allow-f16-overflow");
    assert.equal(ov.code, 2);
    assert.match(ov.err, /--allow-f16-overflow only applies to --weights f16/);
    const out = join(tmp, "m");
    const ok = await run(
      "--sat",
      join(FIX, "sat"),
      "--icetk",
      join(FIX, "icetk"),
      "--clusters",
      join(FIX, "cluster_label.npy"),
      "--out",
      out,
    );
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /7 files/);
    const v = await run("--verify", out);
    assert.equal(v.code, 0, v.err);
    const f = join(out, "itersr.safetensors");
    const b = await Deno.readFile(f);
    b[b.length - 1] ^= 1;
    await Deno.writeFile(f, b);
    const v2 = await run("--verify", out);
    assert.equal(v2.code, 1);
    assert.match(v2.err, /itersr\.safetensors: SHA-256 differs from the manifest/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: float32 and bfloat16 checkpoints with transposed and shared-storage views: source keeps them exactly, f16 narrows", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const set = await copySet(tmp);
    const ref = join(tmp, "ref");
    await convert({ ...set, out: ref, progress: false });
    // Rewrite coglm as float32 (every 2-D weight stored transposed, read through a stride view) and dsr as bfloat16
    // (all tensors packed into one shared storage at offsets). Fixture values are float16-representable, and the
    // dsr values are checked against bfloat16 rounding, so the f16 output must equal the original for coglm.
    const src = await openTorchCheckpoint(join(FIX, "sat/coglm/1/mp_rank_00_model_states.pt"));
    const storages: FakeStorage[] = [];
    const tensors: FakeTensor[] = [];
    for (const n of src.names()) {
      const { shape } = src.info(n);
      const v = new Float16Array((await src.read(n)).slice().buffer);
      const key = String(storages.length);
      if (shape.length === 2) {
        const [r, c] = shape;
        const t = new Float32Array(r * c);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = v[i * c + j];
        storages.push({ key, dtype: "f32", numel: r * c, data: new Uint8Array(t.buffer) });
        tensors.push({ name: n, storage: key, shape, stride: [1, r] });
      } else {
        storages.push({
          key,
          dtype: "f32",
          numel: v.length,
          data: new Uint8Array(Float32Array.from(v).buffer),
        });
        tensors.push({ name: n, storage: key, shape });
      }
    }
    src.close();
    await writeTorchCheckpoint(join(set.sat, "coglm/1/mp_rank_00_model_states.pt"), {
      storages,
      tensors,
      archive: "mp_rank_00_model_states",
    });
    const dsrSrc = await openTorchCheckpoint(join(FIX, "sat/cogview2-dsr/1/mp_rank_00_model_states.pt"));
    const parts: { name: string; shape: number[]; bf: Uint16Array }[] = [];
    for (const n of dsrSrc.names()) {
      const f = Float32Array.from(new Float16Array((await dsrSrc.read(n)).slice().buffer));
      const u = new Uint32Array(f.buffer);
      parts.push({ name: n, shape: dsrSrc.info(n).shape, bf: Uint16Array.from(u, (x) => x >>> 16) }); // truncation
    }
    dsrSrc.close();
    const total = parts.reduce((a, p) => a + p.bf.length, 0);
    const shared = new Uint16Array(total + 3);
    let off = 3;
    const dsrTensors: FakeTensor[] = [];
    for (const p of parts) {
      shared.set(p.bf, off);
      dsrTensors.push({ name: p.name, storage: "s", shape: p.shape, offset: off });
      off += p.bf.length;
    }
    await writeTorchCheckpoint(join(set.sat, "cogview2-dsr/1/mp_rank_00_model_states.pt"), {
      storages: [{ key: "s", dtype: "bf16", numel: shared.length, data: new Uint8Array(shared.buffer) }],
      tensors: dsrTensors,
      archive: "mp_rank_00_model_states",
    });
    // Default (--weights source): coglm stays f32 (the f16 values widened), dsr's bfloat16 is widened to f32.
    const outSrc = join(tmp, "outsrc");
    const rs = await convert({ ...set, out: outSrc, progress: false });
    assert.deepEqual(rs.narrowing, {});
    const ms = await openModelDir(outSrc);
    assert.equal(ms.config.dtype, "mixed"); // itersr and vqvae are f16 in the fixture
    const ss = await ms.weights("coglm"), sr = await (await openModelDir(ref)).weights("coglm");
    for (const n of ss.names()) {
      assert.equal(ss.info(n).dtype, "f32", `coglm ${n} kept f32`);
      const want = Float32Array.from(new Float16Array((await sr.read(n)).slice().buffer));
      assert.deepEqual(new Float32Array((await ss.read(n)).slice().buffer), want, `coglm ${n}`);
    }
    ss.close();
    sr.close();
    const ds = await ms.weights("dsr");
    for (const p of parts) {
      assert.equal(ds.info(p.name).dtype, "f32", `dsr ${p.name} widened`);
      const want = new Float32Array(Uint32Array.from(p.bf, (x) => x << 16).buffer);
      assert.deepEqual(new Float32Array((await ds.read(p.name)).slice().buffer), want, `dsr bf16 ${p.name}`);
    }
    ds.close();
    const manSrc = JSON.parse(await Deno.readTextFile(join(outSrc, "manifest.json")));
    assert.deepEqual(manSrc.tensors["dsr.safetensors"][parts[0].name], { source: "bf16", stored: "f32" });
    assert.deepEqual(manSrc.tensors["coglm.safetensors"]["transformer.word_embeddings.weight"], {
      source: "f32",
      stored: "f32",
    });
    // --weights f16 narrows both: coglm's values are f16-representable (nothing changes), dsr's bf16 values change.
    const out = join(tmp, "out");
    const r16 = await convert({ ...set, out, weights: "f16", progress: false });
    const a = await openModelDir(ref), b = await openModelDir(out);
    const sa = await a.weights("coglm"), sb = await b.weights("coglm");
    for (const n of sa.names()) assert.deepEqual(await sb.read(n), await sa.read(n), `coglm ${n}`);
    sa.close();
    sb.close();
    assert.equal(r16.narrowing.coglm.changed, 0);
    assert.equal(r16.narrowing.coglm.values, storages.reduce((x, st) => x + st.numel, 0));
    let changed = 0, maxAbs = 0;
    for (const p of parts) {
      const w = new Float32Array(Uint32Array.from(p.bf, (x) => x << 16).buffer);
      const h = Float32Array.from(new Float16Array(w));
      for (let i = 0; i < w.length; i++) {
        if (h[i] !== w[i]) changed++, maxAbs = Math.max(maxAbs, Math.abs(h[i] - w[i]));
      }
    }
    assert.equal(r16.narrowing.dsr.changed, changed);
    assert.equal(r16.narrowing.dsr.max_abs_change, maxAbs);
    assert.equal(r16.narrowing.dsr.values, total);
    const da = await b.weights("dsr");
    for (const p of parts) {
      const got = new Float16Array((await da.read(p.name)).slice().buffer);
      const want = new Float32Array(Uint32Array.from(p.bf, (x) => x << 16).buffer);
      assert.deepEqual(Float32Array.from(got), Float32Array.from(new Float16Array(want)), `dsr ${p.name}`);
    }
    da.close();
    // --dtype f32 keeps bfloat16 values exactly.
    const out32 = join(tmp, "out32");
    await convert({ ...set, out: out32, dtype: "f32", progress: false });
    const d32 = await (await openModelDir(out32)).weights("dsr");
    for (const p of parts.slice(0, 5)) {
      const got = new Float32Array((await d32.read(p.name)).slice().buffer);
      assert.deepEqual(
        got,
        new Float32Array(Uint32Array.from(p.bf, (x) => x << 16).buffer),
        `dsr f32 ${p.name}`,
      );
    }
    d32.close();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: SAT archives whose checkpoint is deflated are streamed (no unpacking), with the same tensors", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const set = await copySet(tmp);
    // dsr rewritten with views: every tensor in one shared storage, 2-D weights transposed (held and gathered).
    const src = await openTorchCheckpoint(join(FIX, "sat/cogview2-dsr/1/mp_rank_00_model_states.pt"));
    const chunks: Uint16Array[] = [];
    const tensors: FakeTensor[] = [];
    let off = 5;
    for (const n of src.names()) {
      const { shape } = src.info(n);
      const v = new Uint16Array((await src.read(n)).slice().buffer);
      if (shape.length === 2) {
        const [r, c] = shape;
        const t = new Uint16Array(r * c);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = v[i * c + j];
        chunks.push(t);
        tensors.push({ name: n, storage: "shared", shape, stride: [1, r], offset: off });
      } else {
        chunks.push(v);
        tensors.push({ name: n, storage: "shared", shape, offset: off });
      }
      off += v.length;
    }
    src.close();
    const shared = new Uint16Array(off);
    let o = 5;
    for (const c of chunks) shared.set(c, (o += c.length) - c.length);
    await writeTorchCheckpoint(join(set.sat, "cogview2-dsr/1/mp_rank_00_model_states.pt"), {
      storages: [{ key: "shared", dtype: "f16", numel: off, data: new Uint8Array(shared.buffer) }],
      tensors,
      archive: "mp_rank_00_model_states",
    });
    const ref = join(tmp, "ref");
    await convert({ ...set, out: ref, progress: false });
    for (const m of ["coglm", "cogview2-dsr"]) {
      const entries = [];
      for (const f of ["latest", "model_config.json", "1/mp_rank_00_model_states.pt"]) {
        entries.push({ name: `${m}/${f}`, data: await Deno.readFile(join(set.sat, m, f)), deflate: true });
      }
      await writeZip(join(set.sat, `${m}.zip`), entries);
      await Deno.remove(join(set.sat, m), { recursive: true });
    }
    const z = await ZipArchive.openFile(join(set.sat, "coglm.zip"));
    assert.equal(z.entry("coglm/1/mp_rank_00_model_states.pt").method, 8);
    z.close();
    const out = join(tmp, "out");
    await convert({ ...set, out, progress: false });
    const a = await openModelDir(ref), b = await openModelDir(out);
    for (const model of ["coglm", "dsr"] as const) {
      const sa = await a.weights(model), sb = await b.weights(model);
      assert.deepEqual(sb.names().sort(), sa.names().sort());
      for (const n of sa.names()) assert.deepEqual(await sb.read(n), await sa.read(n), `${model} ${n}`);
      sa.close();
      sb.close();
    }
    // A corrupt byte in the compressed stream is caught (inflate error or CRC), and nothing is written.
    const zp = join(set.sat, "coglm.zip");
    const bytes = await Deno.readFile(zp);
    const zz = await ZipArchive.open(new BytesAccess(bytes, zp));
    const e = zz.entry("coglm/1/mp_rank_00_model_states.pt");
    bytes[e.offset + Math.floor(e.size * 0.6)] ^= 0x10;
    await Deno.writeFile(zp, bytes);
    await assert.rejects(
      convert({ ...set, out: join(tmp, "bad"), progress: false }),
      /coglm\.zip!coglm\/1\/mp_rank_00_model_states\.pt.*(corrupt|CRC)/,
    );
    assert.ok(!(await Deno.stat(join(tmp, "bad")).catch(() => null)));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert: float32 weights that float16 cannot hold are kept exactly by default; --weights f16 reports the narrowing and refuses overflow unless allowed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-test-" });
  try {
    const set = await copySet(tmp);
    const vqPt = join(set.icetk, "ice_image.pt");
    const planted = "quantize.proj.bias";
    let plantedOk = false;
    await writeF32Checkpoint(join(FIX, "icetk/ice_image.pt"), vqPt, { wrap: false });
    // Independent expectation: the values as written, and their float16 rounding.
    const ck = await openTorchCheckpoint(vqPt);
    let values = 0, changed = 0, maxAbs = 0;
    const want = new Map<string, Float32Array>();
    for (const n of ck.names()) {
      if (ck.info(n).dtype !== "f32") continue;
      const v = new Float32Array((await ck.read(n)).slice().buffer);
      want.set(n, v);
      const h = Float32Array.from(new Float16Array(v));
      values += v.length;
      for (let i = 0; i < v.length; i++) {
        if (h[i] !== v[i]) changed++, maxAbs = Math.max(maxAbs, Math.abs(h[i] - v[i]));
      }
    }
    ck.close();
    assert.ok(changed > values / 2, `most perturbed values are not f16-representable (${changed}/${values})`);

    const outSrc = join(tmp, "src");
    const rs = await convert({ ...set, out: outSrc, progress: false });
    assert.deepEqual(rs.narrowing, {});
    const md = await openModelDir(outSrc);
    assert.equal(md.config.dtype, "mixed");
    const st = await md.weights("vqvae");
    for (const [n, v] of want) {
      assert.equal(st.info(n).dtype, "f32");
      assert.deepEqual(new Float32Array((await st.read(n)).slice().buffer), v, `vqvae ${n} bit-exact`);
    }
    st.close();
    const man = JSON.parse(await Deno.readTextFile(join(outSrc, "manifest.json")));
    assert.equal(man.weights, "source");
    assert.deepEqual(man.tensors["vqvae.safetensors"]["enc.conv_in.weight"], {
      source: "f32",
      stored: "f32",
    });
    assert.deepEqual(man.tensors["coglm.safetensors"]["transformer.word_embeddings.weight"], {
      source: "f16",
      stored: "f16",
    });

    const out16 = join(tmp, "f16");
    const logs: string[] = [];
    const r16 = await convert({
      ...set,
      out: out16,
      weights: "f16",
      progress: false,
      log: (m) => logs.push(m),
    });
    assert.equal(r16.narrowing.vqvae.values, values);
    assert.equal(r16.narrowing.vqvae.changed, changed);
    assert.equal(r16.narrowing.vqvae.max_abs_change, maxAbs);
    assert.equal(r16.narrowing.vqvae.overflowed, 0);
    assert.equal(r16.narrowing.coglm, undefined, "f16 sources are not narrowed");
    assert.ok(
      logs.some((l) =>
        l.startsWith(`vqvae: narrowed `) && l.includes(`${changed} of ${values} values changed`)
      ),
    );
    const man16 = JSON.parse(await Deno.readTextFile(join(out16, "manifest.json")));
    assert.deepEqual(man16.tensors["vqvae.safetensors"]["enc.conv_in.weight"], {
      source: "f32",
      stored: "f16",
    });
    assert.equal(man16.narrowing.vqvae.changed, changed);

    // A value beyond float16's range: refused (naming the tensor and the flag), nothing written; allowed → ±inf.
    await writeF32Checkpoint(join(FIX, "icetk/ice_image.pt"), vqPt, {
      wrap: false,
      edit: (n, v) => {
        if (n === planted) v[1] = -1e5, plantedOk = true;
      },
    });
    assert.ok(plantedOk);
    await assert.rejects(
      convert({ ...set, out: join(tmp, "bad"), weights: "f16", progress: false }),
      /ice_image\.pt: tensor "quantize\.proj\.bias": value -100000 is beyond float16's range.*--allow-f16-overflow/,
    );
    assert.ok(!(await Deno.stat(join(tmp, "bad")).catch(() => null)));
    const outOv = join(tmp, "ov");
    const ro = await convert({ ...set, out: outOv, weights: "f16", allowF16Overflow: true, progress: false });
    assert.equal(ro.narrowing.vqvae.overflowed, 1);
    const so = await (await openModelDir(outOv)).weights("vqvae");
    assert.equal(new Float16Array((await so.read(planted)).slice().buffer)[1], -Infinity);
    so.close();
    // The default keeps the value.
    const outKeep = join(tmp, "keep");
    await convert({ ...set, out: outKeep, progress: false });
    const sk = await (await openModelDir(outKeep)).weights("vqvae");
    assert.equal(new Float32Array((await sk.read(planted)).slice().buffer)[1], -1e5);
    sk.close();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("convert attack: --overwrite refuses anything but a converted model; replaces one by rename-aside, never half-deleted", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-ow-" });
  const inputs = {
    sat: join(FIX, "sat"),
    icetk: join(FIX, "icetk"),
    clusters: join(FIX, "cluster_label.npy"),
  };
  try {
    // Before: `--out ~ --overwrite` deleted the home directory recursively. Now refused before any work.
    const home = join(tmp, "home");
    await Deno.mkdir(home);
    await Deno.writeTextFile(join(home, "notes.txt"), "mine");
    await assert.rejects(
      convert({ ...inputs, out: home, overwrite: true }),
      /home: --overwrite only replaces a converted model directory, and this has no readable manifest\.json/,
    );
    await Deno.writeTextFile(join(home, "manifest.json"), '{"files": {"photo.jpg": {}}}');
    await assert.rejects(convert({ ...inputs, out: home, overwrite: true }), /not a converted model's/);
    assert.equal(await Deno.readTextFile(join(home, "notes.txt")), "mine");
    // An empty directory (made beforehand, as mktemp does) holds nothing to lose: it is replaced.
    const empty = join(tmp, "empty");
    await Deno.mkdir(empty);
    await convert({ ...inputs, out: empty, overwrite: true });
    assert.ok((await Deno.stat(join(empty, "manifest.json"))).isFile);
    await Deno.writeTextFile(join(tmp, "file"), "x");
    await assert.rejects(
      convert({ ...inputs, out: join(tmp, "file"), overwrite: true }),
      /is not a directory/,
    );
    // A converted model is replaced; a worker thread lists it the whole time (the old code deleted
    // the directory, then renamed: a window with no model).
    const out = join(tmp, "model");
    await convert({ ...inputs, out });
    const flags = new Int32Array(new SharedArrayBuffer(12)); // [stop, misses, checks]
    const watcher = new Worker(
      `data:application/javascript,${
        encodeURIComponent(`
        self.onmessage = (e) => {
          const [f, dir, whole] = e.data;
          while (Atomics.load(f, 0) === 0) {
            let n = -1;
            try { n = 0; for (const _ of Deno.readDirSync(dir)) n++; } catch { n = -1; /* between the renames */ }
            if (n >= 0 && !whole.includes(n)) Atomics.add(f, 1, 1);
            Atomics.add(f, 2, 1);
          }
          self.postMessage("stopped");
        };`)
      }`,
      { type: "module" },
    );
    const stopped = new Promise((r) => watcher.onmessage = r);
    // The old output carries 1500 extra files, so deleting it in place takes a while and shows partial listings;
    // renamed aside, the path only ever lists the old whole (8 + 1500), nothing (between the renames) or the new 8.
    const files = [...Deno.readDirSync(out)].length;
    for (let i = 0; i < 1500; i++) Deno.writeTextFileSync(join(out, `extra-${i}`), "x");
    watcher.postMessage([flags, out, [files, files + 1500]]);
    await convert({ ...inputs, out, overwrite: true });
    Atomics.store(flags, 0, 1);
    await stopped;
    watcher.terminate();
    console.log(`overwrite: ${flags[2]} listings of the output during the conversion, ${flags[1]} partial`);
    assert.ok(flags[2] > 100, `the watcher ran (${flags[2]} checks)`);
    assert.equal(flags[1], 0, "the output was never seen half-deleted");
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), [
      "empty",
      "file",
      "home",
      "model",
    ]);
    assert.equal((await verifyModelDir(out)).files, 7);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
