// `main.ts generate --model DIR` on a converted model directory (the fixture through the converter, i.e. the official
// layout at test size): the non-demo path of the command line end to end on the GPU. Not numerics (conformance has
// those); first stage only to stay short on CPU adapters.

import nodeAssert from "node:assert/strict";
import { convertFixtureSet } from "../../src/convert/fixture.ts";
import { decodeImage } from "../../src/formats/image.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "main.ts generate --model DIR (converted fixture): no demo banner, a 480×480 PNG per image",
  sanitizeResources: false,
  async fn() {
    const model = await Deno.makeTempDir(), out = await Deno.makeTempDir();
    try {
      await convertFixtureSet(`${root}tests/testdata/cogview2-tiny`, model);
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "main.ts",
          "generate",
          "a cat",
          "--model",
          model,
          "--only-first-stage",
          "--seed",
          "8",
        ] //
          .concat(["--style", "none", "--out", out]),
        cwd: root,
        env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(r.stdout), stderr = new TextDecoder().decode(r.stderr);
      nodeAssert.equal(r.code, 0, stderr);
      nodeAssert.match(stderr, new RegExp(`model: ${model}`));
      nodeAssert.doesNotMatch(stderr, /DEMO|demo/);
      nodeAssert.match(stderr, /generating 1 image\(s\), style none, seed 8/);
      nodeAssert.deepEqual(stdout.trim().split("\n"), [`${out}/cogview2-8-0.png`]);
      const img = decodeImage(await Deno.readFile(`${out}/cogview2-8-0.png`));
      nodeAssert.deepEqual([img.width, img.height], [480, 480]);
    } finally {
      await Deno.remove(model, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  },
});
