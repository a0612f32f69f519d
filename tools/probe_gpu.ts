// Exits 0 when a WebGPU adapter can be acquired, 1 otherwise; prints what it found.
// Used by tools/run.sh to decide whether Mesa's lavapipe must be installed.
import { acquireGpu, closeGpu, describeGpu } from "../src/gpu/device.ts";

try {
  const gpu = await acquireGpu();
  console.log(describeGpu(gpu));
  closeGpu(gpu);
} catch (e) {
  console.error((e as Error).message);
  Deno.exit(1);
}
