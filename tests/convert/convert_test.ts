import assert from "node:assert/strict";
import { join } from "node:path";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { convert, verifyModelDir } from "../../src/convert/convert.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { openModelDir } from "../../src/models/config.ts";

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
