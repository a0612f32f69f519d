// Child process of peak_rss_test.ts: runs one conversion (narrowing to f16, the path that converts every value)
// and prints its peak resident set size (VmHWM) as JSON.
import { convert } from "../../src/convert/convert.ts";

const [sat, icetk, clusters, out] = Deno.args;
const t0 = performance.now();
await convert({ sat, icetk, clusters, out, weights: "f16", progress: false });
const status = await Deno.readTextFile("/proc/self/status");
const kb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1]);
console.log(JSON.stringify({ peakBytes: kb * 1024, seconds: (performance.now() - t0) / 1000 }));
