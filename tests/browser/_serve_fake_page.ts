// Serves the page on the scriptable pipeline (real PNGs, slow steps) for the page's UI test; prints its URL.
// Not the product: page_test.ts's end-to-end case runs main.ts on the demo model.

import { createApp, startServer } from "../../src/server/app.ts";
import { exitOnSignals } from "../../src/server/signals.ts";
import { FakePipeline } from "../server/_fake_pipeline.ts";

// `--token T` serves with a token (the page test's token case).
const ti = Deno.args.indexOf("--token");
const app = createApp({
  pipeline: new FakePipeline({ stepMs: 60, steps: 8, realImages: true }),
  token: ti >= 0 ? Deno.args[ti + 1] : undefined,
});
const server = await startServer(app, { port: 0, host: "127.0.0.1" });
exitOnSignals(server, { graceMs: 1000, log: (m) => console.error(m) });
console.error(`listening on ${server.url}`);
