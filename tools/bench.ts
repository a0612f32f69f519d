// `deno task bench [--json] [--quick] [--only a,b] [--model DIR]`: runs every suite in tools/bench/mod.ts on the
// adapter, prints a table (or, with --json, one JSON array of {name, params, value, unit}) and writes out/bench.json.
// --model: a converted model directory for the coglm and sr suites instead of converting tests/testdata.
import { sharedContext } from "../src/gpu/context.ts";
import { describeGpu } from "../src/gpu/device.ts";
import type { BenchResult } from "./bench/_types.ts";
import { suites } from "./bench/mod.ts";

const args = Deno.args;
const json = args.includes("--json");
const quick = args.includes("--quick");
const modelIdx = args.indexOf("--model");
const model = modelIdx >= 0 ? args[modelIdx + 1] : undefined;
if (modelIdx >= 0 && !model) {
  console.error("--model needs a converted model directory (deno task convert --out DIR)");
  Deno.exit(2);
}
const onlyIdx = args.indexOf("--only");
const only = onlyIdx >= 0 ? new Set(args[onlyIdx + 1].split(",")) : null;
const unknown = only ? [...only].filter((n) => !suites.some((s) => s.name === n)) : [];
if (unknown.length) {
  console.error(
    `Unknown suite(s) for --only: ${unknown.join(", ")}. Suites: ${suites.map((s) => s.name).join(", ")}`,
  );
  Deno.exit(2);
}

const ctx = await sharedContext();
const results: BenchResult[] = [];
const log = (s: string) => json ? console.error(s) : console.log(s);
log(`# adapter: ${describeGpu(ctx.gpu)}`);
for (const suite of suites) {
  if (only && !only.has(suite.name)) continue;
  log(`\n## ${suite.name}: ${suite.description}`);
  log(`${"name".padEnd(34)} ${"params".padEnd(44)} ${"value".padStart(12)} unit`);
  await suite.run(ctx, (r) => {
    results.push(r);
    const p = Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(" ");
    log(
      `${r.name.padEnd(34)} ${p.padEnd(44)} ${fmt(r.value).padStart(12)} ${r.unit}${
        r.baseline ? ` (vs ${r.baseline})` : ""
      }`,
    );
  }, { quick, model });
}
await Deno.mkdir("out", { recursive: true });
const record = { adapter: describeGpu(ctx.gpu), date: new Date().toISOString(), results };
await Deno.writeTextFile("out/bench.json", JSON.stringify(record, null, 2));
if (json) console.log(JSON.stringify(results));
else console.log(`\nwrote out/bench.json (${results.length} results)`);

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
