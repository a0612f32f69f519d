// main.ts's command line with the scriptable pipeline instead of the model: lets main_test.ts check flags, serve and
// generate wiring, logs and exit codes without a GPU. Not a product entry point.

import { runProcess } from "../../main.ts";
import { FakePipeline } from "./_fake_pipeline.ts";

await runProcess(Deno.args, () => Promise.resolve(new FakePipeline({ stepMs: 30, steps: 4 })));
