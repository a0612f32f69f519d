// The import-rule check of `deno task check` (tools/check_layers.ts): it must flag an upward import, a reference/
// import from the engine, a pipeline dispatching kernels and a file cycle, ignore imports inside comments, and pass on
// this repository as it is.
import assert from "node:assert/strict";
import { checkImports, importsOf, layerOf } from "../../tools/check_layers.ts";

Deno.test("check_layers: flags upward / reference / pipeline→kernels imports and cycles; passes legal edges", () => {
  const bad = checkImports([
    ...importsOf(
      "src/kernels/a.ts",
      `import { x } from "../models/m.ts";\nimport { y } from "../gpu/context.ts";`,
    ),
    ...importsOf(
      "src/models/b.ts",
      `// import { z } from "../reference/r.ts";\nexport { w } from "../reference/r.ts";`,
    ),
    ...importsOf("src/pipeline/c.ts", `const k = await import("../kernels/k.ts");`),
    ...importsOf("src/pipeline/d.ts", `import type { T } from "./e.ts";`),
    ...importsOf("src/pipeline/e.ts", `import {\n  f,\n} from "./d.ts";`),
    ...importsOf("tests/t.ts", `import { r } from "../src/reference/r.ts";`),
  ]);
  assert.deepEqual(bad.map((b) => b.split(": ")[0]), [
    "src/kernels/a.ts:1",
    "src/models/b.ts:2",
    "src/pipeline/c.ts:1",
    "src/pipeline/d.ts",
  ]);
  assert.match(bad[0], /kernels may not import models/);
  assert.match(bad[1], /models may not import reference/);
  assert.match(bad[3], /import cycle src\/pipeline\/d\.ts → src\/pipeline\/e\.ts → src\/pipeline\/d\.ts/);
  assert.equal(layerOf("main.ts"), "tools");
  assert.equal(layerOf("src/geometry/sr.ts"), "geometry");
});

Deno.test("check_layers: this repository has no violation", async () => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", new URL("../../tools/check_layers.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, err);
  assert.match(new TextDecoder().decode(r.stdout), / 0 violation/);
});
