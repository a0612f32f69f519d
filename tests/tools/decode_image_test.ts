// deno task decode-image: as a function on the fixture's ice_image.pt (the icetk_decode_20 codes, checked against the
// golden image saved the CogView2 way) and as a subprocess for its argument and input errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage, toRgba8 } from "../../src/formats/image.ts";
import { encodeNpy, readNpy } from "../../src/formats/npy.ts";
import { decodeImageFile } from "../../tools/decode_image.ts";
import { sharedContext } from "../_util.ts";

const ROOT = new URL("../testdata/cogview2-tiny/", import.meta.url).pathname;
const TOOL = new URL("../../tools/decode_image.ts", import.meta.url).pathname;

Deno.test({
  name: "decode-image: icetk_decode_20 codes → PNG equal to the golden image saved as CogView2 saves it (±1)",
  sanitizeResources: false,
  async fn() {
    const ctx = await sharedContext();
    const dir = await Deno.makeTempDir({ prefix: "decode-image-test-" });
    try {
      const out = join(dir, "out.png");
      const r = await decodeImageFile({
        codesPath: join(ROOT, "golden/icetk_decode_20.codes.npy"),
        outPath: out,
        model: join(ROOT, "icetk/ice_image.pt"),
        ctx,
        log: () => {},
      });
      assert.deepEqual([r.width, r.height], [160, 160]);
      const png = decodeImage(await Deno.readFile(out));
      assert.deepEqual([png.width, png.height], [160, 160]);
      const want = toRgba8(
        (await readNpy(join(ROOT, "golden/icetk_decode_20.image.npy"))).data as Float32Array,
        160,
        160,
      );
      let off = 0, maxDiff = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(png.data[i] - want[i]);
        if (d) off++;
        maxDiff = Math.max(maxDiff, d);
      }
      // Float error ~1e-5 moves a value across a rounding boundary only rarely.
      assert.ok(maxDiff <= 1 && off < 50, `PNG differs from the golden image: ${off} bytes, max ${maxDiff}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("decode-image: the command line reports usage and bad inputs with exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "decode-image-cli-" });
  try {
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--unstable-webgpu", TOOL, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
    };
    let r = await run();
    assert.equal(r.code, 2);
    assert.match(r.out, /usage: deno task decode-image/);
    r = await run("--rate", "x", "a.npy", "b.png");
    assert.equal(r.code, 2);
    assert.match(r.out, /--rate must be a positive integer/);
    const bad = join(dir, "bad.npy");
    await Deno.writeFile(bad, encodeNpy(new Int32Array(10), [10]));
    r = await run("--model", join(ROOT, "icetk/ice_image.pt"), bad, join(dir, "o.png"));
    assert.equal(r.code, 1);
    assert.match(r.out, /10 codes \(shape \[10\]\) do not form a square grid/);
    r = await run("--model", join(ROOT, "icetk/ice_image.pt"), bad, join(dir, "o.gif"));
    assert.equal(r.code, 1);
    assert.match(r.out, /must end in \.png, \.jpg or \.jpeg/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
