// convert --weights int8: linear weights of the three transformers as int8 + .qscale, everything else f16; the
// stored codes dequantise to within half a step of the checkpoint's values; the manifest reports the errors; the
// CLI takes --weights int8 [--group N] and rejects bad groups.
import assert from "node:assert/strict";
import { join } from "node:path";
import { convert, verifyModelDir } from "../../src/convert/convert.ts";
import { openTorchCheckpoint } from "../../src/formats/torch.ts";
import { openModelDir } from "../../src/models/config.ts";
import { QSCALE_SUFFIX } from "../../src/formats/int8.ts";
import { dequantizeInt8Ref } from "../../src/reference/int8.ts";

const FIX = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;
const paths = { sat: join(FIX, "sat"), icetk: join(FIX, "icetk"), clusters: join(FIX, "cluster_label.npy") };

for (const group of [64, 32]) {
  Deno.test(`convert --weights int8 (group ${group}): codes + scales within half a step, the rest f16`, async () => {
    const tmp = await Deno.makeTempDir({ prefix: "convert-int8-" });
    try {
      const out = join(tmp, "m");
      const r = await convert({ ...paths, out, weights: "int8", group, progress: false });
      assert.deepEqual(Object.keys(r.int8).sort(), ["coglm", "dsr", "itersr"]);
      await verifyModelDir(out);
      const md = await openModelDir(out);
      assert.equal(md.config.dtype, "mixed");
      const manifest = JSON.parse(await Deno.readTextFile(join(out, "manifest.json")));
      assert.equal(manifest.weights, "int8");
      assert.equal(manifest.int8.group, group);
      for (const [key, folder] of [["coglm", "coglm"], ["dsr", "cogview2-dsr"]]) {
        const st = await md.weights(key as "coglm" | "dsr");
        const ck = await openTorchCheckpoint(join(FIX, `sat/${folder}/1/mp_rank_00_model_states.pt`));
        let quantised = 0;
        for (const n of ck.names()) {
          const { shape } = ck.info(n);
          const src = Float32Array.from(new Float16Array((await ck.read(n)).slice().buffer));
          const info = st.info(n);
          if (info.dtype === "i8") {
            quantised++;
            assert.ok(n.endsWith(".weight") && shape.length === 2 && !n.includes("embedding"), n);
            const s = st.info(n + QSCALE_SUFFIX);
            assert.deepEqual(s.shape, [shape[0], shape[1] / group]);
            const scales = new Float32Array((await st.read(n + QSCALE_SUFFIX)).slice().buffer);
            const q = new Int8Array((await st.read(n)).slice().buffer);
            const back = dequantizeInt8Ref(q, scales, group);
            for (let i = 0; i < src.length; i++) {
              const sc = scales[Math.floor(i / group)];
              // half a step, plus the f32 rounding of q·scale
              assert.ok(Math.abs(back[i] - src[i]) <= sc / 2 + Math.abs(src[i]) * 2e-7, `${n}[${i}]`);
            }
          } else {
            assert.equal(info.dtype, "f16", n);
            assert.deepEqual(Float32Array.from(new Float16Array((await st.read(n)).slice().buffer)), src, n);
          }
        }
        assert.equal(quantised, r.int8[key].tensors);
        assert.ok(quantised >= 8, `${key}: ${quantised} int8 tensors`);
        assert.ok(r.int8[key].rel_rms_error > 0 && r.int8[key].rel_rms_error < 0.02);
        st.close();
        ck.close();
      }
      const vq = await md.weights("vqvae");
      assert.ok(vq.names().every((n) => vq.info(n).dtype !== "i8"));
      vq.close();
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

Deno.test("convert: --group needs --weights int8 and a supported size (API and CLI)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convert-int8-" });
  try {
    await assert.rejects(
      () => convert({ ...paths, out: join(tmp, "a"), weights: "f16", group: 64, progress: false }),
      /--group only applies to --weights int8/,
    );
    await assert.rejects(
      () => convert({ ...paths, out: join(tmp, "b"), weights: "int8", group: 48, progress: false }),
      /--group must be/,
    );
    const cli = new URL("../../tools/convert.ts", import.meta.url).pathname;
    const run = async (...a: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          cli,
          "--clusters",
          paths.clusters,
          "--sat",
          paths.sat,
          "--icetk",
          paths.icetk,
          ...a,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: o.code, err: new TextDecoder().decode(o.stderr) };
    };
    const bad = await run("--out", join(tmp, "c"), "--weights", "int8", "--group", "100");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--group must be 64 or 128/);
    const ok = await run("--out", join(tmp, "d"), "--weights", "int8", "--group", "128");
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.err, /coglm: \d+ linear weights to int8 \(group 128/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
