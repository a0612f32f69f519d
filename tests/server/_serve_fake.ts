// A served process with the fake pipeline, for the SIGTERM test: prints "listening on URL" and logs to stderr.
// Not a product entry point: main.ts serves the real pipeline.

import { createApp, startServer } from "../../src/server/app.ts";
import { exitOnSignals } from "../../src/server/signals.ts";
import { FakePipeline } from "./_fake_pipeline.ts";

const log = (m: string) => console.error(m);
const app = createApp({ pipeline: new FakePipeline({ stepMs: 40, steps: 4 }), log });
const server = await startServer(app, {
  port: 0,
  host: "127.0.0.1",
  onListen: (url) => console.log(`listening on ${url}`),
});
exitOnSignals(server, { graceMs: 5000, log });
